"""Wire protocols: bytes in, calls on an ASGI stream out, and back.

Modules here never build ASGI messages; they call a stream's methods.
"""

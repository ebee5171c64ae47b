"""The ASGI side of the server, shared by every wire protocol.

Modules here build scopes and ASGI messages and never touch bytes on the wire.
"""

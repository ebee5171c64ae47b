"""The ASGI side of the server, shared by every wire protocol.

Modules here build scopes and ASGI messages and never touch bytes on the wire.
"""

# The ASGI spec version every scope of ours declares (HTTP and WebSocket).
ASGI_SPEC_VERSION = "2.4"

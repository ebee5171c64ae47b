# Compiled layout of request_head.py (Cython, pure Python mode): the entry every
# protocol calls per request head, a C call from HTTP/1.1.  The .py file turns
# annotation typing off (its hints say `X | None`, which Cython would read as
# C tuples or exact types): the types below are the compiled ones.
cimport cython

from qactuar.asgi.router cimport Mount
from qactuar.limits cimport Limits
from qactuar.server_state cimport ServerState


@cython.locals(limits=Limits, view=object, raw_path=bytes, query=bytes, path=str, root_path=str,
               scope=dict, mount=Mount)
cpdef tuple request_scope(ServerState state, str method, bytes target, str http_version,
                          list headers, bytes host, object content_length, str scheme,
                          object client, object server, dict extensions,
                          object forwarded=*)

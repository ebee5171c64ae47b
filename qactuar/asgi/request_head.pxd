# Compiled layout of request_head.py (Cython, pure Python mode): the entry every
# protocol calls per request head, a C call from HTTP/1.1.  The .py file turns
# annotation typing off (its hints say `X | None`, which Cython would read as
# C tuples or exact types): the types below are the compiled ones.
cimport cython

from qactuar.asgi.router cimport Mount
from qactuar.limits cimport Limits
from qactuar.server_state cimport ServerState

# Module constants read per request: C globals (on Python 3.12+ a module global
# costs a dict look-up at each use).
cdef int _PERCENT, _QUERY, _FRAGMENT
cdef dict _VALID_HOSTS
cdef Py_ssize_t _VALID_HOSTS_LIMIT


@cython.locals(limits=Limits, view=object, raw_path=bytes, query=bytes, path=str, root_path=str,
               scope=dict, mount=Mount)
cpdef tuple request_scope(ServerState state, str method, bytes target, str http_version,
                          list headers, bytes host, object content_length, str scheme,
                          object client, object server, dict extensions,
                          object forwarded=*)

# Compiled layout of server_state.py (Cython, pure Python mode): the fields the
# protocols read per request become C struct members.  `in_flight` is left in
# the instance dict: prefork and postfork subclasses watch it with a property.
from qactuar.admin.stats cimport ProcessStats
from qactuar.asgi.router cimport Router


cdef class ServerState:
    cdef dict __dict__
    cdef public object config, loop
    cdef public ProcessStats stats  # the admin plane's counters, or None
    cdef public Router router
    cdef public str scheme, root_path
    cdef public bint access_log, websocket, shutting_down
    cdef public double request_timeout, keep_alive_timeout, header_timeout
    cdef public object max_url_size, max_body_size, limit_concurrency, recv_bytes
    cdef public bytes server_header, date_line, date_and_server_lines
    cdef public set connections, tasks
    cdef public dict _server_addresses, status_lines, http_scope

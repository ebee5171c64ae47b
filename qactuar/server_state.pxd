# Compiled layout of server_state.py (Cython, pure Python mode): the fields the
# protocols read per request become C struct members.  (Models watch requests
# through `observer`, not by overriding fields.)
from qactuar.admin.stats cimport ProcessStats
from qactuar.asgi.router cimport Router
from qactuar.limits cimport Limits


cdef class ServerState:
    cdef public object config, loop
    cdef public ProcessStats stats  # the admin plane's counters, or None
    cdef public Router router
    cdef public str scheme, root_path
    cdef public bint access_log, websocket, shutting_down
    cdef public Limits limits
    cdef public Py_ssize_t in_flight
    cdef public object observer, protocols, proxy
    cdef public bytes server_header, date_line, date_and_server_lines, alt_svc_line
    cdef public object timer_context, deadlines
    cdef public object datagram_counters  # udp/counters.py, made when datagrams are served
    cdef public set connections, tasks
    cdef public list pass_end_writers, pending_starts
    cdef public dict parser_holders  # HTTP/1.1 connections holding a parser (http1.py)
    cdef public object parser_sweep
    cdef public dict _server_addresses, status_lines, http_scope

    cpdef write_at_pass_end(self, object connection)
    cpdef write_pass_end_now(self)

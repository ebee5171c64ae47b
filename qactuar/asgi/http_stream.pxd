# Compiled layout of http_stream.py (Cython, pure Python mode): typed fields
# instead of slots.  Every field stays `public`: HTTP/2 and the tests read them.
from qactuar.server_state cimport ServerState


# The response phases: module-level C ints.
cdef int _AWAITING_START, _STARTED, _SENDING_BODY, _AWAITING_TRAILERS, _COMPLETE, _UNANSWERED
# The module's other constants read per request, C globals too: on Python 3.12+ a
# module global costs a dict look-up at each use (3.11 caches it by dict version).
cdef int _PLAIN, _CONTENT_LENGTH, _DROPPED, _CONNECTION, _DATE, _SERVER
cdef dict _SPECIAL_HEADERS, _CHECKED_PAIRS, _CONTENT_LENGTHS
cdef Py_ssize_t _CHECKED_PAIRS_LIMIT, _CHECKED_PAIR_SIZE
cdef object _Task
cdef str _TASK_NAME
cdef bint EAGER_START, _eager_step_running


cdef class HTTPStream


# The calls a stream makes per response are C calls for HTTP/1.1 (HTTP/2's
# sink is a Python subclass: Cython dispatches to its methods).
cdef class ResponseSink:
    cpdef send_head(self, HTTPStream stream, bytes body, bint end)
    cpdef send_body(self, bytes body, bint end)
    cpdef abort(self)
    cpdef request_body(self)
    cpdef response_done(self, HTTPStream stream)


cdef class HTTPStream:
    cdef public ResponseSink sink
    cdef public object app, task, status, _content_length, _trailers
    cdef public dict scope
    cdef public ServerState _host
    cdef public list _body_chunks, _waiters, headers
    cdef public Py_ssize_t _body_size, _sent_bytes
    cdef public double _started_at
    cdef public int _phase
    cdef public bint _body_complete, _final_body_sent, disconnected, _input_closed
    cdef public bint _app_running, _trailers_expected, _body_discarded, _slot_held
    cdef public bint has_date, has_server, has_length, close_connection, _start_cancelled

    cdef setup(self, ResponseSink sink, dict scope, object app, ServerState host)
    cpdef start(self, bint in_place=*)
    cpdef _start_eagerly(self, object loop)
    cdef _keep_task(self, object task)
    cpdef end_body(self)
    cpdef _complete(self)
    cpdef _finish(self)
    cpdef _wake(self)
    cpdef _accept_start(self, dict message)

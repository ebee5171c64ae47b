# Compiled layout of http1_engine.py (Cython, pure Python mode): typed fields, and what the
# response scan calls per response C methods (the stats are typed: `answered` and `start`
# are vtable calls too).  `fill` and `send_one` stay overridable from Python subclasses.
cimport cython

from qactuar.load.flow cimport Flow
from qactuar.load.stats cimport RunStats

cdef int LENGTH, CHUNKED, UNTIL_CLOSE, NO_BODY
cdef int HEAD, BODY, CHUNK_SIZE, CHUNK_DATA, CHUNK_END, TRAILERS, CLOSE_BODY
cdef Py_ssize_t MAX_HEAD, MAX_CHUNK_LINE, MAX_CHUNK_DIGITS, MAX_LENGTH_DIGITS, _HEADS_LIMIT
cdef dict _HEADS


cdef class H1Connection:
    cdef public Flow run
    cdef public object transport, sent
    cdef public RunStats stats
    cdef public bytes request, buffer, last_head
    cdef public int depth, state, status, last_status, last_framing
    cdef public bint head_only, close_after, first_byte, closed, last_close
    cdef public Py_ssize_t head_bytes, body_bytes, answered
    cdef public long long left, last_length
    cdef public long long connect_started_ns, connected_ns, activity_ns

    @cython.locals(count=Py_ssize_t, room=Py_ssize_t, start=cython.longlong)
    cpdef fill(self, long long now)
    cpdef send_one(self, long long start)
    @cython.locals(finished=Py_ssize_t, position=Py_ssize_t, size=Py_ssize_t,
                   end=Py_ssize_t, head_size=Py_ssize_t, state=int, status=int,
                   length=cython.longlong, framing=int, close=bint, take=cython.longlong,
                   chunk=cython.longlong)
    cpdef Py_ssize_t scan(self, bytes data, long long now) except -1
    @cython.locals(start=cython.longlong)
    cpdef finish(self, long long now)

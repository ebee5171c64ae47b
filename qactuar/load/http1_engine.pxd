# Compiled layout of http1_engine.py (Cython, pure Python mode): typed fields and
# C calls for what the response scan calls per response.
cdef int LENGTH, CHUNKED, UNTIL_CLOSE, NO_BODY
cdef int HEAD, BODY, CHUNK_SIZE, CHUNK_DATA, CHUNK_END, TRAILERS, CLOSE_BODY
cdef Py_ssize_t MAX_HEAD, MAX_CHUNK_LINE, _HEADS_LIMIT
cdef dict _HEADS


cdef class H1Connection:
    cdef public object run, stats, transport, sent, left
    cdef public bytes request, buffer
    cdef public int depth, state, status
    cdef public bint head_only, close_after, first_byte, closed
    cdef public Py_ssize_t head_bytes, body_bytes, answered
    cdef public long long connect_started_ns, connected_ns, activity_ns


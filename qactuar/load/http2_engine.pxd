# Compiled layout of http2_engine.py (Cython, pure Python mode).
from qactuar.load.flow cimport Flow

cdef int DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY
cdef int WINDOW_UPDATE, CONTINUATION
cdef int END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG
cdef long long MAX_WINDOW, WINDOW_REFILL, LAST_STREAM_ID
cdef Py_ssize_t MAX_FRAME


cdef class H2Connection:
    cdef public Flow run
    cdef public object transport, decoder, pending
    cdef public bytes body, headers_prefix, header_block, buffer, block
    cdef public int streams_wanted, limit, header_flags
    cdef public dict open, stream_windows
    cdef public long long unacked, send_window, peer_window, next_id
    cdef public long long block_stream
    cdef public bint block_ends, first_byte, closed, going_away
    cdef public long long connect_started_ns, connected_ns, activity_ns
    cdef public Py_ssize_t answered


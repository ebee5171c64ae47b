# Compiled layout of h2_connection.py (Cython, pure Python mode): typed fields
# instead of slots, C ints for frame heads and windows, C calls for the frame
# handlers.  The error codes stay Python ints (http2.py imports them).
cimport cython

cdef int DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY
cdef int WINDOW_UPDATE, CONTINUATION
cdef int END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG
cdef int HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE
cdef int MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE, ENABLE_CONNECT_PROTOCOL
cdef long long DEFAULT_WINDOW, DEFAULT_FRAME_SIZE, MAX_WINDOW, LARGEST_FRAME_SIZE
cdef int CONTINUATION_LIMIT, CLOSED_MEMORY
cdef long long _UNLIMITED


cdef object _FRAME_HEAD

cpdef bytes frame_head(long long length, int kind, int flags, long long stream_id)


cdef class H2Stream:
    cdef public long long stream_id, send_window, receive_window, content_length, received
    cdef public bint client_closed, server_closed, pushed, trailers


cdef class H2Connection:
    cdef public object handler, encoder, decoder
    cdef public long long max_header_size, max_concurrent_streams
    cdef public bint connect_protocol, enable_push, stopped
    cdef public dict streams
    cdef public long long open_inbound, open_pushed, highest_inbound_stream_id, next_push_id
    cdef public long long send_window, receive_window, remote_initial_window
    cdef public long long max_outbound_frame_size, remote_max_concurrent_streams
    cdef public list _out
    cdef public bytes _buffer
    cdef public long long _preface_left
    cdef public bint _settings_seen
    cdef public dict _closed_streams
    cdef public long long _block_stream, _block_size
    cdef public int _block_flags, _block_frames
    cdef public list _block_parts

    @cython.locals(at=Py_ssize_t, size=Py_ssize_t, end=Py_ssize_t, take=Py_ssize_t,
                   start=Py_ssize_t, length=Py_ssize_t, kind=int, flags=int,
                   stream_id=cython.longlong)
    cpdef receive(self, bytes data)
    cdef _fail(self, long long code, str message)
    cdef _deny(self, str message)
    cdef _stream_error(self, long long stream_id, long long code, str message)
    cdef bytes _unpad(self, int flags, bytes payload)
    @cython.locals(depends_on=cython.longlong)
    cdef _headers(self, int flags, long long stream_id, bytes payload)
    cdef _continuation(self, int flags, bytes payload)
    cdef list _decode(self, bytes block)
    @cython.locals(stream=H2Stream, ended=bint)
    cdef _header_block(self, int flags, long long stream_id, bytes block)
    cdef _note_content_length(self, H2Stream stream, list fields)
    @cython.locals(stream=H2Stream)
    cdef H2Stream _open_stream(self, long long stream_id)
    cdef _client_ended(self, H2Stream stream)
    cdef _close_stream(self, H2Stream stream, bint reset_by_us)
    @cython.locals(stream=H2Stream, flow_length=cython.longlong, ended=bint,
                   expected=cython.longlong)
    cdef _data(self, int flags, long long stream_id, bytes payload)
    @cython.locals(stream=H2Stream, increment=cython.longlong)
    cdef _window_update(self, long long stream_id, bytes payload)
    cdef bint _is_idle(self, long long stream_id)
    cdef _settings(self, int flags, long long stream_id, bytes payload)
    @cython.locals(stream=H2Stream, at=Py_ssize_t, code=int, value=cython.longlong,
                   delta=cython.longlong)
    cdef _apply_settings(self, bytes payload)
    cdef _ping(self, int flags, long long stream_id, bytes payload)
    @cython.locals(stream=H2Stream)
    cdef _rst_stream(self, long long stream_id, bytes payload)
    @cython.locals(depends_on=cython.longlong)
    cdef _priority(self, long long stream_id, bytes payload)
    cpdef bytes data_to_send(self)
    @cython.locals(stream=H2Stream)
    cpdef long long send_window_of(self, long long stream_id) except? -1
    @cython.locals(size=Py_ssize_t, start=Py_ssize_t)
    cdef _block_frames_for(self, int kind, int flags, long long stream_id, bytes block)
    @cython.locals(stream=H2Stream)
    cpdef send_headers(self, long long stream_id, list fields, bint end_stream)
    @cython.locals(stream=H2Stream, size=Py_ssize_t)
    cpdef send_data(self, long long stream_id, bytes data, bint end_stream)
    cdef _server_ended(self, H2Stream stream)
    @cython.locals(stream=H2Stream)
    cpdef bint may_push(self, long long stream_id)
    @cython.locals(stream=H2Stream)
    cpdef reset_stream(self, long long stream_id, long long code)
    @cython.locals(stream=H2Stream)
    cpdef acknowledge(self, long long stream_id, long long size)
    cpdef goaway(self, long long code, long long last_stream_id=*)

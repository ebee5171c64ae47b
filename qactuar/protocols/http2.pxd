# Compiled layout of http2.py (Cython, pure Python mode): typed fields instead of
# slots, and C calls for what a stream's sink and the connection call on each
# other per request.  Whatever H2Connection, the WebSocket seam or a timer calls
# stays a Python-callable method (def or cpdef).
cimport cython
from qactuar.asgi.http_stream cimport HTTPStream, ResponseSink
from qactuar.asgi.request_head cimport request_scope
from qactuar.protocols.h2_connection cimport H2Connection
from qactuar.server_state cimport ServerState

# Module constants read per stream: C globals (on Python 3.12+ a module global costs a
# dict look-up at each use).
cdef bytes _SERVER_VALUE
cdef dict _STATUS_BYTES, _EXTENSIONS


cdef class _FloodMeter:
    cdef public long long count, limit
    cdef public double window_start

    cpdef bint over(self, double now)


cdef class _StreamSink(ResponseSink):
    cdef public H2Protocol connection
    cdef public long long stream_id, received, received_unacked
    cdef public bint head_only, out_end, ended, request_ended
    cdef public HTTPStream stream
    cdef public bytearray out
    cdef public object trailers, waiters, websocket
    cdef public double deadline

    cpdef send_head(self, HTTPStream stream, bytes body, bint end)
    cpdef send_body(self, bytes body, bint end)
    cpdef abort(self)
    cpdef request_body(self)
    cpdef response_done(self, HTTPStream stream)
    cpdef release_writers(self)


cdef class H2Protocol:
    cdef public ServerState state
    cdef public object config, loop, transport, client, server, _tls
    cdef public bint writing_paused, _write_scheduled, _closed, _goaway_sent, _push_allowed
    cdef public object _opening
    cdef public long long _last_stream_id
    cdef public dict sinks
    cdef public object _idle_timer, _answer_timer
    cdef public double _idle_deadline
    cdef public _FloodMeter _resets, _settings, _pings, _empty_frames
    cdef public H2Connection conn

    cpdef on_request(self, long long stream_id, object fields, bint ended)
    cpdef on_data(self, long long stream_id, bytes data, long long flow_length, bint ended)
    cpdef _malformed(self, long long stream_id, object problem)
    @cython.locals(stream=HTTPStream)
    cpdef _start_stream(self, long long stream_id, tuple head, bint ended)
    cpdef _on_data(self, long long stream_id, bytes data, long long flow_length)
    cpdef _on_request_end(self, long long stream_id)
    cpdef _on_reset(self, long long stream_id)
    cpdef send_head(self, _StreamSink sink, HTTPStream stream, bytes body, bint end)
    cpdef flush_stream(self, _StreamSink sink, bint write=*)
    cpdef _end_of_response(self, _StreamSink sink)
    cpdef reset_stream(self, _StreamSink sink, long long code)
    cpdef stream_finished(self, _StreamSink sink)
    cpdef acknowledge(self, long long stream_id, long long size)
    cpdef _flush_blocked(self)
    cpdef _forget(self, _StreamSink sink)
    cpdef _write(self)
    cpdef _arm_idle_timer(self)
    cpdef _cancel_idle_timer(self)

# Compiled layout of http1.py (Cython, pure Python mode): typed fields instead
# of slots, and C calls for the methods the request path calls on itself.
# Numbers that come from a client (Content-Length) stay Python ints.
from qactuar.asgi.http_stream cimport HTTPStream, ResponseSink
from qactuar.asgi.request_head cimport request_scope
from qactuar.limits cimport Limits
from qactuar.server_state cimport ServerState


# The parse phases: module-level C ints.
cdef int _IDLE, _HEAD, _BODY, _STOPPED
# The module's other constants read per request, C globals too: on Python 3.12+ a
# module global costs a dict look-up at each use (3.11 caches it by dict version).
cdef int _HOST, _CONNECTION, _TRANSFER_ENCODING, _CONTENT_LENGTH, _EXPECT, _FORWARDED, _UPGRADE
cdef dict _LENGTH_LINES, _HEADER_LINES, _FIELD_NAMES, _METHODS, _FILE_EXTENSIONS, _REQUEST_HEADER_KINDS
cdef list _NO_HEADERS
cdef Py_ssize_t _GATHER_LIMIT, _FIELD_NAMES_LIMIT, _HEADER_LINES_LIMIT, _HEADER_LINE_SIZE


cdef class _Request(HTTPStream):
    cdef public bint continue_sent, expect_continue, head_only, http10, keep_alive
    cdef public bint message_complete


cdef class HTTP1Protocol(ResponseSink):
    cdef public ServerState state
    cdef public object config, loop, transport, parser, client, server
    cdef public bint writing_paused, _upgrade_field  # two: no padding
    cdef public object _write_waiters, _deferred_error, _timer, _timed_stream
    cdef public object _transfer_encoding, _content_length, _expect, _upgrade_body_left
    cdef public object _websocket, _websocket_rest, _tls, _h2c_upgrade, _parser_target
    cdef public _Request _parsing
    cdef public list _queue, _unsent, _headers
    cdef public bytes _url, _connection_tokens
    cdef public int _phase
    cdef public bint _parsed_since_sweep  # beside _phase: fills its padding
    cdef public Limits _limits
    cdef public object _host_value
    cdef public bint _reading_paused, _closed, _chunked, _no_body
    cdef public bint _completed_in_feed, _body_in_feed, _forwarded, _feeding
    cdef public str _scheme
    cdef public bytes _opening
    cdef public double _timer_at, _client_deadline, _answer_deadline
    cdef public Py_ssize_t _unsent_size
    cdef public Py_ssize_t _header_bytes, _host_count, _body_received, _head_bytes
    cdef public Py_ssize_t _framing_bytes

    cpdef send_head(self, HTTPStream stream, bytes body, bint end)
    cpdef send_body(self, bytes body, bint end)
    cpdef abort(self)
    cpdef request_body(self)
    cpdef response_done(self, HTTPStream stream)
    cpdef _write_unsent(self)
    cpdef _write_in_order(self, bytes data)
    cpdef _close(self)
    cpdef _pause_reading(self)
    cpdef _resume_reading(self)
    cpdef _cancel_timer(self)
    cpdef _start_response_cycle(self, _Request stream)
    cpdef _give_back_parser(self)
    # The parser's callbacks, called in C by _ParserTarget.
    cpdef on_url(self, bytes url)
    cpdef on_header(self, bytes name, bytes value)
    cpdef on_headers_complete(self)
    cpdef on_body(self, bytes body)
    cpdef on_message_complete(self)


cdef class _ParserTarget:
    cdef public HTTP1Protocol conn
    cdef public object parser

# Compiled layout of limits.py (Cython, pure Python mode): every limit a C struct
# member, read-only from Python (one Limits per server, built once).
cdef class Limits:
    cdef readonly Py_ssize_t max_url_size, max_header_size, max_header_count, max_body_size
    cdef readonly Py_ssize_t recv_bytes, limit_concurrency, h2_max_concurrent_streams
    cdef readonly Py_ssize_t ws_max_size
    cdef readonly double header_timeout, keep_alive_timeout, request_timeout, send_timeout

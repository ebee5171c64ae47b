# Compiled layout of stats.py (Cython, pure Python mode): typed counters, and the calls the
# engines make once per request (`start`, `answered`) C methods they call through the vtable.
cimport cython

from qactuar.load.histogram cimport Histogram


cdef class RunStats:
    cdef public long long measure_from_ns, started, succeeded, failed, errored
    cdef public long long bytes_total, bytes_headers, bytes_data, late, unsent
    cdef public long long second_errors
    cdef public list status_classes, series, connect_ns, first_byte_ns, rows
    cdef public list connections_per_worker
    cdef public dict errors
    cdef public Histogram latency, second_start
    cdef public double duration_s, cpu_s

    cpdef bint start(self, long long start_ns)
    @cython.locals(latency=cython.longlong)
    cpdef answered(self, long long start_ns, long long end_ns, int status,
                   Py_ssize_t head_bytes, Py_ssize_t body_bytes)
    cpdef errored_request(self, long long start_ns, long long end_ns, str kind)

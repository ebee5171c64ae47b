# Compiled layout of stats.py (Cython, pure Python mode): typed counters.
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

# Compiled layout of flow.py (Cython, pure Python mode): the counters every request touches
# as C fields, and the engines' per-request calls as C methods (`runner.Run` subclasses it).
from qactuar.load.stats cimport RunStats


cdef class Flow:
    cdef public RunStats stats
    cdef public long long remaining, in_flight
    cdef public bint stopping
    cdef public object scheduler

    cpdef long long take(self, long long now) except? -2
    cpdef begin_request(self, long long start)
    cpdef answered(self, long long start, long long now, int status, Py_ssize_t head_bytes,
                   Py_ssize_t body_bytes)
    cpdef errored(self, long long start, long long now, str kind)
    cpdef bint all_sent(self) except -1

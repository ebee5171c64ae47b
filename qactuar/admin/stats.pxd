# Compiled layout of stats.py (Cython, pure Python mode): `record` runs once per
# response while the admin plane is on, so it is a C method on C arrays
# (ServerState.stats is typed, so the HTTP stream calls it through the vtable).
cimport cython


cdef class ProcessStats:
    cdef long long responses[18]
    cdef long long buckets[14]
    cdef public double duration_sum
    cdef public long long bytes_in, bytes_out

    @cython.locals(duration=double, bound=double, index=long, bucket=Py_ssize_t)
    cpdef record(self, long status, str http_version, Py_ssize_t sent, double started_at)

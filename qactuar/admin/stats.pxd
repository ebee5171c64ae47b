# Compiled layout of stats.py (Cython, pure Python mode): `record` runs once per
# response while the admin plane is on, so it is a C method (ServerState.stats is
# typed, so the HTTP stream calls it through the vtable) with typed locals.
cimport cython


cdef class ProcessStats:
    cdef public list responses, buckets
    cdef public double duration_sum
    cdef public long long bytes_in, bytes_out

    @cython.locals(duration=double, bound=double, index=long, bucket=Py_ssize_t)
    cpdef record(self, object status, str http_version, object sent, double started_at)

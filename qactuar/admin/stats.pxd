# Compiled layout of stats.py (Cython, pure Python mode): `record` runs once per
# response while the admin plane is on, so it is a C method with typed locals.
cimport cython

from qactuar.asgi.http_stream cimport HTTPStream


cdef class ProcessStats:
    cdef public list responses, buckets
    cdef public double duration_sum
    cdef public long long bytes_in, bytes_out

    @cython.locals(duration=double, bound=double, index=Py_ssize_t, bucket=Py_ssize_t,
                   status=long)
    cpdef record(self, HTTPStream stream)

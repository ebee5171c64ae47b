# Compiled layout of histogram.py (Cython, pure Python mode): typed fields, and `record`
# (once per request) a C method the stats call through the vtable.
# The sums stay Python ints (a sum of squares of nanoseconds outgrows 64 bits).
cimport cython



cdef class Histogram:
    cdef public list counts
    cdef public long long count, minimum, maximum
    cdef public object total, total_squares

    @cython.locals(index=Py_ssize_t, shift=Py_ssize_t, rest=cython.ulonglong, big=object)
    cpdef record(self, long long value)

# Compiled layout of histogram.py (Cython, pure Python mode): typed fields, and `record`
# (once per request) a C method the stats call through the vtable.  The sums are Python
# ints (a sum of squares of nanoseconds outgrows 64 bits) fed from two 64-bit counters.
cimport cython

cdef long long PENDING_LIMIT
cdef unsigned long long PENDING_ROOM


cdef class Histogram:
    cdef public list counts
    cdef public long long count, minimum, maximum
    cdef object _total, _squares
    cdef unsigned long long _pending_total, _pending_squares

    cdef _fold(self)
    @cython.locals(index=Py_ssize_t, shift=Py_ssize_t, rest=cython.ulonglong,
                   square=cython.ulonglong, big=object)
    cpdef record(self, long long value)

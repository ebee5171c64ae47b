# Compiled layout of histogram.py (Cython, pure Python mode): typed fields.
# The sums stay Python ints (a sum of squares of nanoseconds outgrows 64 bits).


cdef class Histogram:
    cdef public list counts
    cdef public object count, total, total_squares, minimum, maximum

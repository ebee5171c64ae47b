# Compiled layout of router.py (Cython, pure Python mode): the protocols read a
# request's mount (its app, prefix and lifespan state) as C struct members.
cdef class Mount:
    cdef public str prefix
    cdef public object app, lifespan
    cdef public dict state


cdef class Router:
    cdef public list mounts
    cdef public Mount only

    cpdef Mount resolve(self, str path)

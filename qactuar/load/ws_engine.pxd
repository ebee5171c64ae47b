# Compiled layout of ws_engine.py (Cython, pure Python mode): typed fields, and what each
# echoed message calls C methods (the run is a `Flow`: `take` and `answered` are vtable
# calls).  `fill` and `send_one` stay overridable from Python subclasses.
cimport cython

from qactuar.load.flow cimport Flow


cdef class WSConnection:
    cdef public Flow run
    cdef public object transport, write, payload_bits, repeater, all_ones
    cdef public bytes key, expected_accept, upgrade, head, payload, masks, buffer
    cdef public Py_ssize_t depth, message_bytes, answered, size, mask_at, oldest, waiting
    cdef long long[::1] starts
    cdef public bint upgraded, first_byte, closed
    cdef public long long connect_started_ns, connected_ns, activity_ns

    cpdef Py_ssize_t room(self)
    @cython.locals(room=Py_ssize_t, count=Py_ssize_t, start=cython.longlong)
    cpdef fill(self, long long now)
    cpdef send_one(self, long long start)
    @cython.locals(index=Py_ssize_t)
    cdef void push(self, long long start)
    @cython.locals(start=cython.longlong)
    cdef long long pop(self)
    @cython.locals(at=Py_ssize_t)
    cdef Py_ssize_t next_mask(self) except -1
    @cython.locals(head_size=Py_ssize_t, size=Py_ssize_t, out=bytes, into=cython.p_uchar,
                   head=cython.p_uchar, payload=cython.p_uchar, masks=cython.p_uchar,
                   position=Py_ssize_t, at=Py_ssize_t, index=Py_ssize_t)
    cpdef bytes frames(self, Py_ssize_t count)
    @cython.locals(at=Py_ssize_t)
    cpdef bytes frame_by_integers(self)
    @cython.locals(position=Py_ssize_t, size=Py_ssize_t, first=int, second=int,
                   length=Py_ssize_t, start=Py_ssize_t, end=Py_ssize_t, opcode=int)
    cpdef read_frames(self, bytes data, long long now)

# Compiled layout of ws_engine.py (Cython, pure Python mode): typed fields, and what each
# echoed message calls C methods (the run is a `Flow`: `take` and `answered` are vtable
# calls).  `fill` and `send_one` stay overridable from Python subclasses.
cimport cython

from qactuar.load.flow cimport Flow


cdef class WSConnection:
    cdef public Flow run
    cdef public object transport, sent, write, payload_bits, repeater, all_ones
    cdef public bytes key, expected_accept, upgrade, head, masks, buffer
    cdef public Py_ssize_t depth, message_bytes, answered, size, mask_at
    cdef public bint upgraded, first_byte, closed
    cdef public long long connect_started_ns, connected_ns, activity_ns

    cpdef Py_ssize_t room(self)
    @cython.locals(room=Py_ssize_t, count=Py_ssize_t, start=cython.longlong)
    cpdef fill(self, long long now)
    cpdef send_one(self, long long start)
    @cython.locals(at=Py_ssize_t)
    cpdef bytes frame(self)
    @cython.locals(position=Py_ssize_t, size=Py_ssize_t, first=int, second=int,
                   length=Py_ssize_t, start=Py_ssize_t, end=Py_ssize_t, opcode=int)
    cpdef read_frames(self, bytes data, long long now)

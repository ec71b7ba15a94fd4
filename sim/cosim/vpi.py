"""Wide values in and out of the simulator through VPI's vector format.

cocotb moves every value wider than 32 bits as a string of '0' and '1' characters, which
Verilator writes and parses one bit at a time (a ``toupper`` per bit). For the batch
queue's 1,376-bit words that was the largest single cost of the co-simulation. This calls
the simulator's own ``vpi_get_value`` and ``vpi_put_value`` with ``vpiVectorVal`` (32
bits per element) through ctypes: a copy, not a conversion. It runs in the simulator's
thread only, as every VPI call must.
"""

import ctypes
from array import array

VPI_VECTOR_VAL = 9      # vpi_user.h: vpiVectorVal
VPI_NO_DELAY = 1        # vpiNoDelay
VPI_SIZE = 4            # vpiSize


class _Value(ctypes.Structure):
    class _Union(ctypes.Union):
        # s_vpi_vecval *vector, as an address: set and read without ctypes casts
        _fields_ = [("vector", ctypes.c_void_p), ("integer", ctypes.c_int32),
                    ("real", ctypes.c_double)]
    _fields_ = [("format", ctypes.c_int32), ("value", _Union)]


def _simulator():
    """The VPI functions the simulator executable exports (its own symbols)."""
    lib = ctypes.CDLL(None)
    try:
        lib.vpi_handle_by_name.restype = ctypes.c_void_p
        lib.vpi_handle_by_name.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        lib.vpi_handle_by_index.restype = ctypes.c_void_p
        lib.vpi_handle_by_index.argtypes = [ctypes.c_void_p, ctypes.c_int32]
        lib.vpi_get.restype = ctypes.c_int32
        lib.vpi_get.argtypes = [ctypes.c_int32, ctypes.c_void_p]
        lib.vpi_get_value.restype = None
        lib.vpi_get_value.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Value)]
        lib.vpi_put_value.restype = ctypes.c_void_p
        lib.vpi_put_value.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Value),
                                      ctypes.c_void_p, ctypes.c_int32]
    except AttributeError as e:
        raise RuntimeError(f"the simulator exports no VPI functions ({e}): wide values "
                           f"need a simulator that cocotb reaches through VPI") from None
    return lib


class WideArray:
    """An unpacked array of wide words (a memory), by element index; or, with
    ``indexed=False``, one wide signal as element 0.

    Parameters
    ----------
    handle
        The cocotb handle of the array (``dut.u.batch_req``) or signal.
    """

    def __init__(self, handle, indexed=True):
        self._vpi = _simulator()
        found = self._vpi.vpi_handle_by_name(handle._path.encode(), None)
        if not found:
            raise RuntimeError(f"VPI does not know {handle._path}")
        self._elements = ([self._vpi.vpi_handle_by_index(found, i)
                           for i in range(len(handle))] if indexed else [found])
        self.width = self._vpi.vpi_get(VPI_SIZE, self._elements[0])
        self._chunks = (self.width + 31) // 32
        self._value = _Value()
        self._value.format = VPI_VECTOR_VAL

    def __len__(self):
        return len(self._elements)

    def __getitem__(self, index):
        return int.from_bytes(self.read_bytes(index, index + 1), "little")

    def read_bytes(self, first, end):
        """Elements ``first`` to ``end - 1``, each as ``4 * ceil(width / 32)`` bytes,
        little-endian, concatenated."""
        get, value = self._vpi.vpi_get_value, ctypes.byref(self._value)
        size = 8 * self._chunks
        raw = array("I")
        for element in self._elements[first:end]:
            get(element, value)
            raw.frombytes(ctypes.string_at(self._value.value.vector, size))
        return raw[0::2].tobytes()

    def clear(self):
        """Every element to 0."""
        self.write_bytes(0, bytes(4 * self._chunks * len(self._elements)))

    def __setitem__(self, index, value):
        self.write_bytes(index, value.to_bytes(4 * self._chunks, "little"))

    def write_bytes(self, first, data):
        """Write elements from ``first`` on from ``data``: ``4 * ceil(width / 32)``
        bytes each, little-endian, concatenated."""
        words = array("I", data)
        vector = array("I", bytes(8 * len(words)))    # aval, bval (0) interleaved
        vector[0::2] = words
        base, _ = vector.buffer_info()
        size = 8 * self._chunks
        put, value = self._vpi.vpi_put_value, self._value
        ref = ctypes.byref(value)
        for i, element in enumerate(self._elements[first:first + len(words) // self._chunks]):
            value.value.vector = base + i * size
            put(element, ref, None, VPI_NO_DELAY)

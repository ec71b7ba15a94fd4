"""Physical memory and the bus the page-table walker reaches it through."""

from typing import Protocol


def check_phys_size(phys_size: int) -> int:
    """Return ``phys_size`` if it is a positive multiple of 4096 (below 2**56), else raise."""
    if (not isinstance(phys_size, int) or isinstance(phys_size, bool) or phys_size <= 0
            or phys_size % 4096 or phys_size > 1 << 56):
        raise ValueError(f"phys_size must be a positive multiple of 4096 at most 2**56, "
                         f"got {phys_size!r}")
    return phys_size


class Memory:
    """Byte-addressed physical memory at ``[0, size)``, little-endian.

    Parameters
    ----------
    phys_size : int
        Bytes; a positive multiple of 4096.

    Attributes
    ----------
    size : int
        ``phys_size``.
    data : bytearray
        The contents; fast paths index it directly.
    """

    def __init__(self, phys_size: int):
        self.size = check_phys_size(phys_size)
        self.data = bytearray(phys_size)

    def _check(self, paddr: int, n: int, what: str) -> None:
        if n < 0:
            raise ValueError(f"{what} of {n} bytes: negative length")
        if paddr < 0 or paddr + n > self.size:
            raise IndexError(f"{what} of {n} bytes at {paddr:#x} is outside physical "
                             f"memory [0, {self.size:#x})")

    def read(self, paddr: int, n: int) -> bytes:
        self._check(paddr, n, "read")
        return bytes(self.data[paddr:paddr + n])

    def write(self, paddr: int, data: bytes) -> None:
        self._check(paddr, len(data), "write")
        self.data[paddr:paddr + len(data)] = data

    def read64(self, paddr: int) -> int:
        self._check(paddr, 8, "read")
        return int.from_bytes(self.data[paddr:paddr + 8], "little")

    def write64(self, paddr: int, value: int) -> None:
        self._check(paddr, 8, "write")
        if not 0 <= value < 1 << 64:
            raise ValueError(f"write64 value {value!r} is not a 64-bit unsigned integer")
        self.data[paddr:paddr + 8] = value.to_bytes(8, "little")


class Bus(Protocol):
    """How the walker reaches memory: one call is one 64-bit bus transaction."""

    def read(self, addr: int, lock: bool) -> int | None:
        """The 64-bit word at ``addr``, or ``None`` for a bus error."""

    def write(self, addr: int, value: int, lock: bool) -> bool:
        """Store ``value`` at ``addr``; ``False`` for a bus error."""

    def unlock(self) -> None:
        """End the locked A/D sequence (also after a mismatch or an error inside it)."""


class MemoryBus:
    """The plain :class:`Bus` over a :class:`Memory`; never a bus error.

    Attributes
    ----------
    locked : bool
        Inside a locked sequence: from a ``lock=True`` transaction to :meth:`unlock`.
    """

    def __init__(self, mem: Memory):
        self.mem = mem
        self.locked = False

    def read(self, addr: int, lock: bool) -> int | None:
        if lock:
            self.locked = True
        return self.mem.read64(addr)

    def write(self, addr: int, value: int, lock: bool) -> bool:
        if lock:
            self.locked = True
        self.mem.write64(addr, value)
        return True

    def unlock(self) -> None:
        self.locked = False

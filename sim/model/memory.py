"""Physical memory and the bus the page-table walker reaches it through."""

from typing import Protocol


def check_phys_size(phys_size: int) -> int:
    """Return ``phys_size`` if it is a positive multiple of 4096 (below 2**56), else raise."""
    if (not isinstance(phys_size, int) or isinstance(phys_size, bool) or phys_size <= 0
            or phys_size % 4096 or phys_size > 1 << 56):
        raise ValueError(f"phys_size must be a positive multiple of 4096 at most 2**56, "
                         f"got {phys_size!r}")
    return phys_size


def _size_text(n: int) -> str:
    """``n`` bytes in the largest binary unit that divides it: 32 MiB, 4 KiB, 3 bytes."""
    for shift, unit in ((40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")):
        if n >= 1 << shift and not n % (1 << shift):
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


def check_phys_base(phys_base: int, phys_size: int) -> int:
    """Return ``phys_base`` if physical memory ``[phys_base, phys_base + phys_size)`` is
    one naturally aligned block, else raise ValueError naming the problem.

    The base must be a multiple of the smallest power of two at or above ``phys_size``:
    then the memory is a single NAPOT region (one PMP entry on QEMU) and every address in
    it has the same high bits (the gateware compares those, not a range), and the end must
    be within Sv39's 56-bit physical address space.

    Parameters
    ----------
    phys_base : int
        The lowest physical address of memory (QEMU's virt machine: 0x8000_0000).
    phys_size : int
        Bytes of memory; checked as :func:`check_phys_size` does.

    Raises
    ------
    ValueError
        ``phys_base`` negative or not an int, not aligned, or the end beyond 2**56.
    """
    check_phys_size(phys_size)
    if not isinstance(phys_base, int) or isinstance(phys_base, bool) or phys_base < 0:
        raise ValueError(f"phys_base must be a non-negative integer, got {phys_base!r}")
    block = 1 << (phys_size - 1).bit_length()
    if phys_base % block:
        raise ValueError(f"phys_base {phys_base:#x} is not aligned to {_size_text(block)}, "
                         f"the power of two at or above phys_size {phys_size:#x}")
    if phys_base + phys_size > 1 << 56:
        raise ValueError(f"phys_base {phys_base:#x} + phys_size {phys_size:#x} ends beyond "
                         f"the 56-bit physical address space")
    return phys_base


class Memory:
    """Byte-addressed physical memory at ``[base, base + size)``, little-endian.

    Parameters
    ----------
    phys_size : int
        Bytes; a positive multiple of 4096.
    phys_base : int
        The physical address of its first byte; see :func:`check_phys_base`.

    Attributes
    ----------
    size : int
        ``phys_size``.
    base : int
        ``phys_base``.
    data : bytearray
        The contents, indexed by offset (``paddr - base``); fast paths index it directly.
    """

    def __init__(self, phys_size: int, phys_base: int = 0):
        self.size = check_phys_size(phys_size)
        self.base = check_phys_base(phys_base, phys_size)
        self.data = bytearray(phys_size)

    def _offset(self, paddr: int, n: int, what: str) -> int:
        """The offset in :attr:`data` of the ``n`` bytes at ``paddr``; IndexError outside."""
        if n < 0:
            raise ValueError(f"{what} of {n} bytes: negative length")
        at = paddr - self.base
        if at < 0 or at + n > self.size:
            raise IndexError(f"{what} of {n} bytes at {paddr:#x} is outside physical "
                             f"memory [{self.base:#x}, {self.base + self.size:#x})")
        return at

    def read(self, paddr: int, n: int) -> bytes:
        at = self._offset(paddr, n, "read")
        return bytes(self.data[at:at + n])

    def write(self, paddr: int, data: bytes) -> None:
        at = self._offset(paddr, len(data), "write")
        self.data[at:at + len(data)] = data

    def read64(self, paddr: int) -> int:
        at = self._offset(paddr, 8, "read")
        return int.from_bytes(self.data[at:at + 8], "little")

    def write64(self, paddr: int, value: int) -> None:
        at = self._offset(paddr, 8, "write")
        if not 0 <= value < 1 << 64:
            raise ValueError(f"write64 value {value!r} is not a 64-bit unsigned integer")
        self.data[at:at + 8] = value.to_bytes(8, "little")


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

"""The golden backend of the hardware seam: :class:`~.mmu.GoldenMMU` over a bytearray
memory, in the kernel's own thread."""

from ..hw.seam import Cause, Csr, Kind, Trap
from .memory import Memory, MemoryBus
from .mmu import GoldenMMU

_STORE, _AMO = int(Kind.STORE), int(Kind.AMO)


class GoldenHardware:
    """A :class:`seam.Hardware` made of the golden model.

    Parameters
    ----------
    phys_size : int
        Bytes of physical memory; a positive multiple of 4096.
    tlb_entries, walk_cache_entries : int
        As :class:`GoldenMMU`.
    phys_base : int
        Physical memory is ``[phys_base, phys_base + phys_size)``
        (:func:`~.memory.check_phys_base`); the kernel's physical addresses, the PPNs in
        its PTEs and satp included, are in that range.

    Attributes
    ----------
    phys_base, phys_size : int
    mem : Memory
    mmu : GoldenMMU
    bus : MemoryBus
        The walker's bus; ``bus.locked`` is true inside the A/D read-compare-write.
    """

    def __init__(self, phys_size: int = 64 << 20, tlb_entries: int = 16,
                 walk_cache_entries: int = 8, phys_base: int = 0):
        self.mem = Memory(phys_size, phys_base)
        self.bus = MemoryBus(self.mem)
        self.mmu = GoldenMMU(self.mem, phys_size, tlb_entries, walk_cache_entries,
                             bus=self.bus)
        self.phys_size = phys_size
        self.phys_base = phys_base

    @property
    def csr(self) -> Csr:
        return self.mmu.csr

    def read(self, paddr: int, n: int) -> bytes:
        return self.mem.read(paddr, n)

    def write(self, paddr: int, data: bytes) -> None:
        self.mem.write(paddr, data)

    def _check_pte(self, paddr: int, what: str) -> None:
        if paddr % 8:
            raise ValueError(f"{what}: PTE address {paddr:#x} is not 8-byte aligned")
        if self.bus.locked:
            # Only reachable from a callback inside the walker's locked sequence.
            raise RuntimeError(f"{what} inside the walker's locked A/D sequence")

    def read_pte(self, paddr: int) -> int:
        if paddr % 8:
            raise ValueError(f"read_pte: PTE address {paddr:#x} is not 8-byte aligned")
        return self.mem.read64(paddr)

    def write_pte(self, paddr: int, value: int) -> None:
        self._check_pte(paddr, "write_pte")
        self.mem.write64(paddr, value)

    def cas_pte(self, paddr: int, expected: int, new: int) -> int:
        self._check_pte(paddr, "cas_pte")
        found = self.mem.read64(paddr)
        if found == expected:
            self.mem.write64(paddr, new)
        return found

    def sfence_vma(self, vaddr: int | None = None, asid: int | None = None) -> None:
        self.mmu.sfence(by_vaddr=vaddr is not None, vaddr=vaddr or 0,
                        by_asid=asid is not None, asid=asid or 0)

    def set_csr(self, **fields) -> None:
        self.mmu.set_csr(**fields)

    def access(self, vaddr: int, kind: Kind, data: bytes | None = None,
               size: int = 0) -> bytes | Trap:
        """Translate and access; an AMO is a swap: it writes ``data``, returns the old bytes."""
        if kind == _STORE or kind == _AMO:
            if data is None:
                raise ValueError(f"{Kind(kind).name} access needs data")
            n = len(data)
        elif kind == 0 or kind == 2:
            n = size
            if n < 0:
                raise ValueError(f"size {size} is negative")
        else:
            raise ValueError(f"kind must be a seam.Kind, got {kind!r}")
        if not 0 <= vaddr < 1 << 64:
            raise ValueError(f"vaddr {vaddr!r} is not a 64-bit unsigned integer")
        if (vaddr & 0xFFF) + n > 4096:
            raise ValueError(f"access of {n} bytes at {vaddr:#x} crosses a 4 KiB page")
        paddr = self.mmu._translate(vaddr, int(kind))
        if paddr < 0:
            return Trap(Cause(-paddr), vaddr)
        # In range: paddr is in memory, the access stays in its page, and memory's base
        # and size are page-aligned. The bytearray is indexed by offset from the base.
        at = paddr - self.phys_base
        buf = self.mem.data
        if kind == _STORE:
            buf[at:at + n] = data
            return b""
        old = bytes(buf[at:at + n])
        if kind == _AMO:
            buf[at:at + n] = data
        return old

    def kernel_event(self, event, addr: int = 0) -> None:
        """Nothing: the golden backend records no trace."""

    def tlb_entries(self):
        return self.mmu.tlb.entries

    def access_batch(self, accesses, on_trap=None):
        """Do ``accesses`` ((vaddr, kind, data, size)) in order up to the first trap;
        returns (results of those done, the trap or None). With ``on_trap``, see the
        seam."""
        results = []
        access = self.access
        for vaddr, kind, data, size in accesses:
            r = access(vaddr, kind, data, size)
            while r.__class__ is Trap:
                if on_trap is None:
                    return results, r
                on_trap(r, len(results))
                r = access(vaddr, kind, data, size)
            results.append(r)
        return results, None


def make_golden(phys_size: int = 64 << 20, tlb_entries: int = 16, walk_cache_entries: int = 8,
                phys_base: int = 0, **options) -> GoldenHardware:
    """The backend registry's factory (:mod:`mkclean.sim.hw.backends`)."""
    if options:
        raise ValueError(f"the golden backend takes no options {sorted(options)}")
    return GoldenHardware(phys_size=phys_size, tlb_entries=tlb_entries,
                          walk_cache_entries=walk_cache_entries, phys_base=phys_base)

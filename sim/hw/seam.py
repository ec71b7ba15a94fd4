"""The hardware seam: all the kernel model ever sees of a machine.

Four backends implement :class:`Hardware` (golden, rtl, board, qemu). The protocol is
synchronous: the kernel model is plain sequential Python, and a backend that is
asynchronous underneath (the cocotb one) runs the kernel in a thread and blocks it on each
call until the simulator has answered, so the kernel never sees an ``await``.
"""

import enum
from dataclasses import dataclass
from typing import Protocol


class Kind(enum.IntEnum):
    """The type of a memory access, as the MMU's request encodes it."""
    LOAD = 0
    STORE = 1
    FETCH = 2
    AMO = 3


class Cause(enum.IntEnum):
    """RISC-V exception causes an MMU can raise."""
    FETCH_ACCESS = 1
    LOAD_ACCESS = 5
    STORE_ACCESS = 7
    FETCH_PAGE = 12
    LOAD_PAGE = 13
    STORE_PAGE = 15


class Priv(enum.IntEnum):
    U = 0
    S = 1
    M = 3


class KernelEvent(enum.IntEnum):
    """What the kernel model does, as it tells the hardware (:meth:`Hardware.kernel_event`)
    so that a trace shows the kernel's story beside the hardware's signals: a store, its
    fault, the kernel's answer, the retry. Each comes with an address, named here.

    The values are the testbench top's ``kernel_event`` port (sim/cosim/build.py) and the
    names are what a trace viewer shows for them (sim/waves/): one table for both.
    """
    NONE = 0            #: nothing since the last clock edge
    TRAP = 1            #: a trap taken: its tval
    DO_FAULT = 2        #: a fault on a page with no PTE (read, COW or shared): user address
    DO_WP_PAGE = 3      #: a store to a write-protected present page: user address
    SET_PAGE_DIRTY = 4  #: a page cache page marked dirty: its physical address
    PAGE_MKCLEAN = 5    #: every PTE of a page write-protected and cleaned: physical address
    SFENCE_VMA = 6      #: sfence.vma: its address operand (0 for x0)
    WRITEBACK = 7       #: a page written to its file: its physical address
    SYS_MMAP = 16       #: the syscalls: the address (or file offset) they were given
    SYS_MUNMAP = 17
    SYS_MPROTECT = 18
    SYS_MSYNC = 19
    SYS_MLOCK = 20
    SYS_MUNLOCK = 21
    SYS_READ = 22
    SYS_WRITE = 23
    SYS_FTRUNCATE = 24
    SYS_FORK = 25
    SYS_EXIT = 26
    MORE = 255          #: more events than a trace could show in one place: how many


SATP_MODE_BARE = 0
SATP_MODE_SV39 = 8


@dataclass
class Csr:
    """Translation state: satp, the privilege level, mstatus.SUM/MXR, menvcfg.ADUE."""
    mode: int = SATP_MODE_BARE
    asid: int = 0
    ppn: int = 0
    priv: Priv = Priv.S
    sum: bool = False
    mxr: bool = False
    adue: bool = True


@dataclass(frozen=True)
class Trap:
    """An access that did not complete: the trap the hart would take."""
    cause: Cause
    tval: int


class Hardware(Protocol):
    """What a backend offers the kernel model."""

    #: Bytes of physical memory.
    phys_size: int
    #: Where physical memory starts: it is ``[phys_base, phys_base + phys_size)``, a
    #: naturally aligned block (``mkclean.sim.model.memory.check_phys_base``), and every
    #: physical address the kernel uses is a real one in it (its frames, the PPNs in its
    #: PTEs and satp, the direct map's reads and writes). 0 on the FPGA board, 0x8000_0000
    #: on QEMU. A backend without the attribute has its memory at 0.
    phys_base: int
    #: The current translation state; change it with :meth:`set_csr`.
    csr: Csr

    def read(self, paddr: int, n: int) -> bytes:
        """Read physical memory (the kernel's direct map)."""

    def write(self, paddr: int, data: bytes) -> None:
        """Write physical memory (the kernel's direct map)."""

    def read_pte(self, paddr: int) -> int:
        """Read the 64-bit little-endian PTE at ``paddr`` (8-byte aligned)."""

    def cas_pte(self, paddr: int, expected: int, new: int) -> int:
        """Atomically replace the PTE at ``paddr`` by ``new`` if it equals ``expected``.

        Returns the value found; the store happened if and only if it equals ``expected``.
        Never lands inside the walker's locked A/D read-compare-write.
        """

    def write_pte(self, paddr: int, value: int) -> None:
        """Store a PTE unconditionally (for PTEs the hardware cannot be updating)."""

    def sfence_vma(self, vaddr: int | None = None, asid: int | None = None) -> None:
        """sfence.vma: ``None`` is the x0 operand (all addresses, all address spaces)."""

    def set_csr(self, **fields) -> None:
        """Change fields of :attr:`csr` (mode, asid, ppn, priv, sum, mxr, adue)."""

    def access(self, vaddr: int, kind: Kind, data: bytes | None = None,
               size: int = 0) -> bytes | Trap:
        """Translate ``vaddr`` and perform the access, or return the trap.

        A LOAD or FETCH returns ``size`` bytes; a STORE writes ``data`` and returns
        ``b""``. The access must not cross a 4 KiB page.
        """

    def access_batch(self, accesses: list[tuple[int, Kind, bytes | None, int]],
                     on_trap=None) -> tuple[list[bytes], Trap | None]:
        """:meth:`access` for each (vaddr, kind, data, size) in order, up to the first
        trap: returns the results of those done and that trap (or None).

        With ``on_trap``, a trap calls ``on_trap(trap, done)`` instead (the kernel's trap
        handler; ``done`` accesses completed before the one that trapped), and the batch
        goes on from that access: the result is every access's, and None. Whatever
        ``on_trap`` raises ends the batch.

        Semantically a loop over :meth:`access`; a backend far from Python (the RTL under
        cocotb, a board) translates the whole batch in one go, and wakes Python only for
        faults (or, with ``on_trap``, runs the handler where it is and goes on).
        """

    def kernel_event(self, event: KernelEvent, addr: int = 0) -> None:
        """The kernel did ``event`` to ``addr``: nothing to the machine, but a backend
        that records a trace shows it there (the rtl backend, on its testbench's debug
        port, when traced); the others ignore it."""

    def tlb_entries(self) -> list:
        """Debug: the TLB's entries (:class:`~mkclean.sim.model.tlb.TlbEntry`), for the
        invariant checks."""

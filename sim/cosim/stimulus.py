"""Page tables built for tests and the verification campaign (stimulus, not reference).

Plain integers written into a :class:`~mkclean.sim.model.Memory`; nothing here knows how
the MMU walks them.
"""

from ..model.memory import Memory

PTE_V, PTE_R, PTE_W, PTE_X, PTE_U, PTE_G, PTE_A, PTE_D = (1 << i for i in range(8))
LEAF_RW = PTE_V | PTE_R | PTE_W | PTE_A | PTE_D
PAGE = 4096
LEVEL_SIZE = {0: PAGE, 1: PAGE << 9, 2: PAGE << 18}


def pte(ppn, flags):
    return (ppn << 10) | flags


def vpn(vaddr, level):
    return (vaddr >> (12 + 9 * level)) & 0x1ff


class PageTables:
    """Allocates table pages from ``next_free`` upward and maps pages in them.

    Parameters
    ----------
    mem : Memory
        Or anything with its ``read64``, ``write64``, ``write``, ``size`` and ``base``.
    root : int
        Physical address of the root table (page aligned).
    next_free : int
        Where table pages are taken from.
    limit : int, optional
        Where they end.
    """

    def __init__(self, mem: Memory, root: int, next_free: int, limit=None):
        self.mem = mem
        self.root = root
        self.next_free = next_free
        self.limit = limit

    @property
    def root_ppn(self):
        return self.root >> 12

    def alloc_table(self):
        addr = self.next_free
        if self.limit is not None and addr + PAGE > self.limit:
            raise ValueError(f"page-table area full at {addr:#x}")
        self.next_free += PAGE
        self.mem.write(addr, bytes(PAGE))
        return addr

    def pte_addr(self, vaddr, level):
        """Physical address of the PTE for ``vaddr`` at ``level``, creating the tables
        above it; None if a leaf, or a table outside memory, is in the way."""
        table = self.root
        for lvl in (2, 1, 0):
            addr = table + vpn(vaddr, lvl) * 8
            if lvl == level:
                return addr
            entry = self.mem.read64(addr)
            if not entry & PTE_V:
                child = self.alloc_table()
                self.mem.write64(addr, pte(child >> 12, PTE_V))
                table = child
            elif entry & (PTE_R | PTE_X):
                return None
            else:
                table = (entry >> 10 & ((1 << 44) - 1)) << 12
                base = self.mem.base
                if not base <= table <= base + self.mem.size - PAGE:
                    return None
        raise AssertionError(level)

    def map(self, vaddr, paddr, flags=LEAF_RW, level=0):
        """Map the page of ``vaddr`` at ``level`` to ``paddr``; returns the PTE address."""
        addr = self.pte_addr(vaddr, level)
        if addr is None:
            raise ValueError(f"{vaddr:#x}: a superpage above level {level} is in the way")
        self.mem.write64(addr, pte(paddr >> 12, flags))
        return addr

"""Cache of non-leaf PTEs, tagged by the PTE's physical address.

Tagging by physical address needs no ASID: two address spaces sharing a page table share
its cached entries, and a walk for any address that goes through that PTE hits.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .pte import PADDR_BITS

MAX_ENTRIES = 64


def check_entries(entries):
    if not isinstance(entries, int) or not 0 <= entries <= MAX_ENTRIES:
        raise ValueError(f"walk_cache_entries must be an integer in 0..{MAX_ENTRIES} "
                         f"(0 disables the walk cache), not {entries!r}")


class WalkCache(wiring.Component):
    """Non-leaf PTE cache (hdl/README.md, "Walk cache"), round-robin replacement.

    Parameters
    ----------
    entries : int
        0 (never hits) to ``MAX_ENTRIES``.
    phys_size : int or None
        Bytes of physical memory, when the walker never asks for a PTE beyond it: the
        tags then keep only the address bits below it (and none of the three that are
        always 0 in a PTE's address), for a shorter compare on the walker's path. An
        address beyond can then hit falsely; the walker decides those before a hit.
    """

    #: Physical address of the PTE the walker needs next.
    addr: In(PADDR_BITS)
    #: ``addr``'s PTE is cached: the walker needs no bus read for it.
    hit: Out(1)
    #: That PTE, while ``hit``.
    pte: Out(64)
    #: Keep a non-leaf PTE that the walker has just read from memory and found good.
    insert_en: In(1)
    #: Where the walker read it.
    insert_addr: In(PADDR_BITS)
    #: What it read.
    insert_pte: In(64)
    #: Forget everything: an sfence.vma without an address, the only kind that orders
    #: changes to non-leaf PTEs.
    flush: In(1)

    def __init__(self, entries=8, phys_size=None):
        check_entries(entries)
        self.entries = entries
        self.tag_bits = (PADDR_BITS if phys_size is None else
                         min(PADDR_BITS, (phys_size - 1).bit_length()))
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        if not self.entries:
            return m
        valid = Signal(self.entries)
        tags = [Signal(self.tag_bits - 3, name=f"tag{i}") for i in range(self.entries)]
        ptes = [Signal(64, name=f"pte{i}") for i in range(self.entries)]
        pointer = Signal(range(self.entries))

        for i in reversed(range(self.entries)):
            with m.If(valid[i] & (tags[i] == self.addr[3:self.tag_bits])):
                m.d.comb += [self.hit.eq(1), self.pte.eq(ptes[i])]

        with m.If(self.insert_en):
            with m.Switch(pointer):
                for i in range(self.entries):
                    with m.Case(i):
                        m.d.sync += [valid[i].eq(1),
                                     tags[i].eq(self.insert_addr[3:self.tag_bits]),
                                     ptes[i].eq(self.insert_pte)]
            m.d.sync += pointer.eq(Mux(pointer == self.entries - 1, 0, pointer + 1))
        with m.If(self.flush):
            m.d.sync += valid.eq(0)
        return m

"""Cache of non-leaf PTEs, tagged by the PTE's physical address.

Tagging by physical address needs no ASID: two address spaces sharing a page table share
its cached entries, and a walk for any address that goes through that PTE hits.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .pte import PADDR_BITS, or_all

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

    #: Look ``addr`` up: the answer (``hit``, ``pte``) comes from the next cycle on, until
    #: the next lookup. The walker looks up the PTE address it goes to as it goes there,
    #: so the compare runs beside the walker's other work, not before it.
    lookup_en: In(1)
    #: Physical address of the PTE the walker needs next.
    addr: In(PADDR_BITS)
    #: The last lookup's PTE is cached: the walker needs no bus read for it. A flush
    #: since the lookup counts, and so does an insert in the cycle of the lookup.
    hit: Out(1)
    #: That PTE, while ``hit``.
    pte: Out(64)
    #: Keep the PTE offered: a non-leaf PTE that the walker has just read from memory
    #: and found good.
    insert_en: In(1)
    #: Where the walker read the PTE offered (every cycle, also without ``insert_en``).
    insert_addr: In(PADDR_BITS)
    #: The PTE offered.
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
        # One slot more than entries: the slot at ``pointer`` is always invalid, and what
        # is offered for insertion is written there every cycle, inserted or not. An
        # insert makes it valid and the next slot (the oldest entry, as in a round robin
        # over ``entries``) invalid, to be written next. The slots' eighty write enables
        # a slot then wait for no decision whether to insert, which comes late in the
        # walker's cycle (ISSUE 11: their fan-out was the MMU's longest path).
        slots = self.entries + 1
        valid = Signal(slots)
        tags = [Signal(self.tag_bits - 3, name=f"tag{i}") for i in range(slots)]
        ptes = [Signal(64, name=f"pte{i}") for i in range(slots)]
        pointer = Signal(slots, init=1)     # one hot
        evicted = Signal(slots)             # one hot: the slot an insert evicts
        m.d.comb += evicted.eq(pointer.rotate_left(1))

        # The compare in the cycle of the lookup, an insert of that cycle counted; an
        # insert after it forgets the entry it evicts. In the next cycles, the entries
        # still valid (a flush only clears valid bits).
        tag = self.addr[3:self.tag_bits]
        insert_tag = self.insert_addr[3:self.tag_bits]
        compared = Signal(slots)
        matched = Signal(slots)
        for i in range(slots):
            m.d.comb += compared[i].eq(
                Mux(pointer[i], self.insert_en & (insert_tag == tag),
                    valid[i] & (tags[i] == tag) & ~(self.insert_en & evicted[i])))
            with m.If(self.lookup_en):
                m.d.sync += matched[i].eq(compared[i])
            with m.Elif(self.insert_en & evicted[i]):
                m.d.sync += matched[i].eq(0)
        match = Signal(slots)
        m.d.comb += match.eq(matched & valid)
        # The lowest matching entry as one hot bit, then an AND-OR of the PTEs: a chain
        # of If's would put a mux per entry in a row on the walker's path.
        first = [match[i] & ~match[:i].any() for i in range(slots)]
        m.d.comb += [self.hit.eq(match.any()),
                     self.pte.eq(or_all(Mux(first[i], ptes[i], 0) for i in range(slots)))]

        for i in range(slots):
            with m.If(pointer[i]):
                m.d.sync += [tags[i].eq(insert_tag), ptes[i].eq(self.insert_pte)]
        with m.If(self.insert_en):
            m.d.sync += [valid.eq((valid | pointer) & ~evicted), pointer.eq(evicted)]
        with m.If(self.flush):
            m.d.sync += valid.eq(0)
        return m

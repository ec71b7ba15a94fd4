"""Cache of non-leaf PTEs, tagged by the PTE's physical address.

Tagging by physical address needs no ASID: two address spaces sharing a page table share
its cached entries, and a walk for any address that goes through that PTE hits.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .pte import PADDR_BITS, or_all

MAX_ENTRIES = 64
#: How many addresses a lookup chooses from (:attr:`WalkCache.addrs`).
CHOICES = 3
#: The one of them whose lookup counts an offer: where the PTE offered points to.
OFFERED = 2


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
        Bytes of physical memory, when the walker never asks for a PTE outside it: the
        tags then keep only the offset's bits (those below the power of two at or above
        ``phys_size``: its base's are the same in every address inside, and none of the
        three that are always 0 in a PTE's address), for a shorter compare on the
        walker's path. An address outside can then hit falsely; the walker decides those
        before a hit.
    """

    #: Addresses that may be looked up, each a physical PTE address; compared every
    #: cycle, all of them. The walker looks up the PTE address it goes to as it goes
    #: there, so the compare runs beside the walker's other work, not before it.
    #: ``addrs[OFFERED]`` is where the PTE offered points to, the only lookup that an
    #: offer changes.
    addrs: In(data.ArrayLayout(PADDR_BITS, CHOICES))
    #: One hot: which of ``addrs`` is looked up. The compares do not wait for it: the
    #: walker knows late in its cycle which address it goes to.
    pick: In(CHOICES)
    #: The PTE at last cycle's pick is cached: the walker needs no bus read for it. An
    #: insert and a flush of that cycle count.
    hit: Out(1)
    #: That PTE, while ``hit``.
    pte: Out(64)
    #: The walker reads a PTE this cycle, for a walk that may fill: it is offered for
    #: insertion. The lookup of ``addrs[OFFERED]`` in this cycle takes it as inserted
    #: (and the entry it would evict as gone), without waiting for ``insert_en``: the
    #: walker uses that lookup's answer, for the address the PTE points to, only when
    #: the PTE is a good pointer, and then it is inserted.
    offer: In(1)
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

        # The compare, with the offer and the flush of its cycle, decides; the next cycle
        # only chooses the PTE. Each address offered is compared, and the pick chooses
        # among the answers. ``hit`` is a register of its own, not an OR of the matches:
        # the walker's next address and its PTE registers wait for it (ISSUE 11).
        # Per address, which slots match it (``found``); the pick chooses last, for the
        # matches and for the hit, which is an OR per address before the pick. Only the
        # lookup of ``addrs[2]`` counts an offer: the slot at ``pointer`` is invalid and
        # nothing is evicted for the others.
        insert_tag = self.insert_addr[3:self.tag_bits]
        plain = Signal(slots)
        m.d.comb += plain.eq(valid & ~self.flush.replicate(slots))
        found = []
        for k, addr in enumerate(self.addrs):
            tag = addr[3:self.tag_bits]
            found_k = Signal(slots, name=f"found{k}")
            if k == OFFERED:
                m.d.comb += found_k.eq(Cat(
                    Mux(pointer[i], self.offer & ~self.flush & (insert_tag == tag),
                        plain[i] & ~(self.offer & evicted[i]) & (tags[i] == tag))
                    for i in range(slots)))
            else:
                m.d.comb += found_k.eq(plain & Cat(tags[i] == tag for i in range(slots)))
            found.append(found_k)
        matched = Signal(slots)
        m.d.sync += [matched.eq(or_all(Mux(self.pick[k], found[k], 0) for k in range(CHOICES))),
                     self.hit.eq((Cat(f.any() for f in found) & self.pick).any())]
        # An AND-OR of the PTEs by the match, with no priority: at most one slot matches.
        # An insert follows a miss of its address, and no other insert of that address
        # comes between (one read at a time), so no two valid slots have the same tag.
        m.d.comb += self.pte.eq(or_all(Mux(matched[i], ptes[i], 0) for i in range(slots)))

        for i in range(slots):
            with m.If(pointer[i]):
                m.d.sync += [tags[i].eq(insert_tag), ptes[i].eq(self.insert_pte)]
        with m.If(self.insert_en):
            m.d.sync += [valid.eq((valid | pointer) & ~evicted), pointer.eq(evicted)]
        with m.If(self.flush):
            m.d.sync += valid.eq(0)
        return m

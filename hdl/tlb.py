"""The TLB: fully associative, ASID and global tags, 4K/2M/1G entries, tree-PLRU
replacement, the four sfence.vma cases."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .pte import ASID_BITS, SFENCE_PORT, VPN_TOTAL, TlbEntry, or_all, vpn_matches


def check_entries(entries):
    if not isinstance(entries, int) or entries < 1 or entries & (entries - 1):
        raise ValueError(f"tlb_entries must be a power of two >= 1 (tree-PLRU), "
                         f"not {entries!r}")


class TLB(wiring.Component):
    """Fully associative translation cache (hdl/README.md, "TLB"). It only keeps
    entries: the MMU decides what a hit means and what to fill.

    Parameters
    ----------
    entries : int
        Number of entries, a power of two (the tree-PLRU's leaves).
    """

    def __init__(self, entries=16):
        check_entries(entries)
        self.entries = entries
        idx = range(entries)
        super().__init__({
            #: Look ``lookup_vpn`` up: the answer (``hit``, ``hit_index``, ``hit_entry``)
            #: comes from the next cycle on, until the next lookup. The MMU looks up the
            #: request it takes, so the compare runs while the request goes into its
            #: register and only the choice among the matches is left for the next cycle.
            "lookup_en":     In(1),
            #: VPN looked up.
            "lookup_vpn":    In(VPN_TOTAL),
            #: satp.ASID: a non-global entry must have it to match.
            "lookup_asid":   In(ASID_BITS),
            #: Some entry matches the last lookup: an entry that matched it and is still
            #: valid (a fence since then counts), or one a fill in the cycle of the lookup
            #: wrote and that matches it.
            "hit":           Out(1),
            #: The lowest matching index: several can match, and the golden model takes
            #: the lowest.
            "hit_index":     Out(idx),
            #: What is at ``hit_index``.
            "hit_entry":     Out(TlbEntry),
            #: Make ``touch_index`` the most recently used; the MMU does so for every hit.
            "touch_en":      In(1),
            #: The entry used.
            "touch_index":   In(idx),
            #: Write ``fill_entry``, and make it the most recently used.
            "fill_en":       In(1),
            #: Fill at ``fill_index``, not at ``victim``: a re-walk for a hit's D bit
            #: refills the entry it hit.
            "fill_at_index": In(1),
            #: Where a fill goes when ``fill_at_index``.
            "fill_index":    In(idx),
            #: What a fill writes.
            "fill_entry":    In(TlbEntry),
            #: Where a fill goes otherwise: the lowest invalid entry, else the tree-PLRU's.
            "victim":        Out(idx),
            #: Invalidates after a fill in the same cycle, so that a fill cannot outlive
            #: a fence it meets.
            "sfence":        In(SFENCE_PORT),
            #: Every entry, for testbenches: the co-simulation checks invariant 2 on it.
            "dbg_entries":   Out(data.ArrayLayout(TlbEntry, entries)),
        })

    def elaborate(self, platform):
        m = Module()
        n = self.entries
        depth = (n - 1).bit_length()  # 0 for a single entry: no tree
        entries = [Signal(TlbEntry, name=f"entry{i}") for i in range(n)]

        def matches(e):
            return (e.valid & (e.g | (e.asid == self.lookup_asid)) &
                    vpn_matches(e.vpn, e.level, self.lookup_vpn))

        # Lookup, in two halves around a register: each entry's compare in the cycle of
        # the lookup (with a fill of that cycle in place of the entry it overwrites), the
        # lowest matching index in the next, among the entries still valid then (a fence
        # only clears valid bits, so it needs no more). The lowest index wins, as in the
        # golden model.
        fill_index = Signal(range(n))
        compared = Signal(n)
        for i, e in enumerate(entries):
            filled = self.fill_en & (fill_index == i)
            m.d.comb += compared[i].eq(Mux(filled, matches(self.fill_entry), matches(e)))
        matched = Signal(n)
        with m.If(self.lookup_en):
            m.d.sync += matched.eq(compared)
        valid = Signal(n)
        m.d.comb += valid.eq(Cat(e.valid for e in entries))
        match = Signal(n)
        m.d.comb += match.eq(matched & valid)
        m.d.comb += self.hit.eq(match.any())
        # The lowest match as one hot bit, then an AND-OR of the entries: a priority
        # chain of If's would be a mux per entry in a row on the hit's path.
        first = Signal(n)
        m.d.comb += first.eq(Cat(match[i] & ~match[:i].any() for i in range(n)))
        m.d.comb += [
            self.hit_index.eq(or_all(Mux(first[i], i, 0) for i in range(n))),
            self.hit_entry.eq(or_all(Mux(first[i], entries[i].as_value(), 0)
                                      for i in range(n))),
        ]

        m.d.comb += [self.dbg_entries[i].eq(e) for i, e in enumerate(entries)]

        # Tree-PLRU: node bits in heap order, t[1..n-1]; bit 0 unused.
        tree = Signal(max(n, 2))
        path = Const(1, 1)
        for _ in range(depth):
            nxt = Signal(len(path) + 1)
            m.d.comb += nxt.eq(Cat(tree.bit_select(path, 1), path))
            path = nxt
        plru = Signal(range(n))
        m.d.comb += plru.eq(path[:depth] if depth else 0)

        invalid = Signal(n)
        m.d.comb += invalid.eq(Cat(~e.valid for e in entries))
        # The lowest invalid entry, one hot and encoded by an OR (as the hit index).
        first_invalid = [invalid[i] & ~invalid[:i].any() for i in range(n)]
        m.d.comb += self.victim.eq(Mux(invalid.any(),
                                       or_all(Mux(first_invalid[i], i, 0) for i in range(n)),
                                       plru))

        m.d.comb += fill_index.eq(Mux(self.fill_at_index, self.fill_index, self.victim))
        touch = Signal(range(n))
        m.d.comb += touch.eq(Mux(self.fill_en, fill_index, self.touch_index))
        with m.If(self.fill_en | self.touch_en):
            for t in range(1, n):
                level = t.bit_length() - 1
                prefix = t - (1 << level)
                on_path = (touch >> (depth - level)) == prefix if level else 1
                with m.If(on_path):
                    # Point away from the touched entry: 1 when it lies under the left child.
                    m.d.sync += tree[t].eq(~touch[depth - 1 - level])

        with m.If(self.fill_en):
            with m.Switch(fill_index):
                for i in range(n):
                    with m.Case(i):
                        m.d.sync += entries[i].eq(self.fill_entry)

        sf = self.sfence.payload
        with m.If(self.sfence.valid):
            for e in entries:
                by_asid = ~sf.by_asid | (~e.g & (e.asid == sf.asid))
                by_vaddr = ~sf.by_vaddr | vpn_matches(e.vpn, e.level, sf.vaddr[12:39])
                with m.If(by_asid & by_vaddr):
                    m.d.sync += e.valid.eq(0)
        return m

"""The TLB: fully associative, ASID and global tags, 4K/2M/1G entries, tree-PLRU
replacement, the four sfence.vma cases."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .pte import (ASID_BITS, PAGE_BITS, PPN_BITS, SFENCE_PORT, VPN_TOTAL, Csr, Kind,
                  PhysMemory, TlbEntry, is_store, leaf_paddr, or_all, vpn_matches)


#: Entries a registered "some match" bit covers, for the choice of the lowest match.
GROUP = 2


def lowest(matches, values):
    """The bit of ``values`` at the lowest set bit of ``matches`` (0 if none is set)."""
    return Cat(matches[i] & ~matches[:i].any() & values[i]
               for i in range(len(matches))).any()


def check_entries(entries):
    if not isinstance(entries, int) or entries < 1 or entries & (entries - 1):
        raise ValueError(f"tlb_entries must be a power of two >= 1 (tree-PLRU), "
                         f"not {entries!r}")


class TLB(wiring.Component):
    """Fully associative translation cache (hdl/README.md, "TLB"). It keeps entries and
    checks them against a lookup's kind and CSRs beside the tag compare; the MMU decides
    what a hit means and what to fill.

    Parameters
    ----------
    entries : int
        Number of entries, a power of two (the tree-PLRU's leaves).
    phys_size : int or None
        Bytes of physical memory, for ``hit_beyond``; None: never beyond.
    phys_base : int
        Its first physical address.
    """

    def __init__(self, entries=16, phys_size=None, phys_base=0):
        check_entries(entries)
        self.entries = entries
        self.phys_size = phys_size
        self.phys = None if phys_size is None else PhysMemory(phys_size, phys_base)
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
            #: What the looked-up request does, for ``hit_permits`` and ``hit_needs_d``.
            "lookup_kind":   In(Kind),
            #: The CSRs at the lookup, for ``hit_permits``.
            "lookup_csr":    In(Csr),
            #: Some entry matched the last lookup: one valid in its cycle and not
            #: invalidated by a fence of that cycle (a fill of that cycle is not seen).
            #: Decided then: a fence after the lookup does not change it.
            "hit":           Out(1),
            #: The hit entry allows ``lookup_kind`` at ``lookup_csr`` (step 6).
            "hit_permits":   Out(1),
            #: ``lookup_kind`` is a store (or AMO) that the hit entry permits, and its D
            #: is clear (step 7).
            "hit_needs_d":   Out(1),
            #: The hit needs no walk: it answers by itself, a translation or a fault (not
            #: ``hit_needs_d`` with Svadu, which the walker answers). Decided per group
            #: of entries at the lookup, like the other checks: the MMU's choice between
            #: answering and walking waits for it.
            "hit_answers":   Out(1),
            #: The looked-up page's physical address through the hit entry is outside
            #: memory (a superpage may straddle its ends).
            "hit_beyond":    Out(1),
            #: The lowest matching index: several can match, and the golden model takes
            #: the lowest.
            "hit_index":     Out(idx),
            #: What is at ``hit_index``, with its full PPN.
            "hit_entry":     Out(TlbEntry),
            #: Make ``touch_index`` the most recently used, in the next cycle; the MMU does
            #: so for every hit.
            "touch_en":      In(1),
            #: The entry used.
            "touch_index":   In(idx),
            #: Write ``fill_entry``, and make it the most recently used.
            "fill_en":       In(1),
            #: Fill at ``fill_index``, not at ``victim``: a re-walk for a hit's D bit
            #: refills the entry it hit. Held from the cycle before the fill: where a fill
            #: goes is chosen a cycle ahead.
            "fill_at_index": In(1),
            #: Where a fill goes when ``fill_at_index``; held like it.
            "fill_index":    In(idx),
            #: What a fill writes. Its PPN is a page inside memory (the walker fills
            #: only leaves inside memory): only the bits below the memory's block are
            #: kept, and the base's are put back where the PPN is read.
            "fill_entry":    In(TlbEntry),
            #: Where a fill goes otherwise: the lowest invalid entry, else the tree-PLRU's;
            #: chosen ahead, so a fill must not come in the two cycles after a fill, a
            #: fence or a touch.
            "victim":        Out(idx),
            #: Invalidates after a fill in the same cycle, so that a fill cannot outlive
            #: a fence it meets.
            "sfence":        In(SFENCE_PORT),
            #: Every entry, with its full PPN, for testbenches: the co-simulation checks
            #: invariant 2 on it. (A superpage larger than memory's block shows the
            #: base's bits in its PPN below its level, where the PTE has 0: compare them
            #: no more than a superpage's VPN bits below its level.)
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

        # Lookup, in two halves around a register. In the cycle of the lookup, each
        # entry's compare and its checks against the request (without the entries a fence
        # of that cycle invalidates; a fill of that cycle is not seen, and the MMU never
        # looks up in one); in the next, the lowest match as one hot bit and an AND-OR of
        # the entries by that bit. The lowest index wins, as in the golden model.
        fill_index = Signal(range(n))
        filled = Signal(n)          # one hot: the entry a fill writes this cycle
        fenced = Signal(n)
        compared = Signal(n)
        permits = Signal(n)
        clean = Signal(n)
        needs_d = Signal(n)
        answers = Signal(n)
        far = Signal(n)
        store = is_store(self.lookup_kind)
        page = Cat(Const(0, PAGE_BITS), self.lookup_vpn, Const(0, 64 - PAGE_BITS - VPN_TOTAL))

        # A power-of-two memory's range check splits into the entry's part, kept beside
        # it from its fill (``ppn_far``), and the lookup's (its VPN bits that a superpage
        # passes through): a LUT an entry in the lookup's cycle, not a wide OR. Each part
        # takes the base's own bits where the other part's are.
        phys = self.phys
        split = phys is not None and phys.size == 1 << phys.block_bits
        ppn_far = Signal(n)

        # Where the base's bits above the block are 0, a kept PPN (zero-extended) is
        # whole already.
        restore = phys is not None and phys.base >> phys.block_bits != 0

        def full_ppn(ppn):
            """A kept PPN (the bits below the memory's block), whole."""
            return phys.ppn(ppn) if restore else ppn

        def far_by_ppn(e):
            return phys.outside(leaf_paddr(full_ppn(e.ppn), e.level, Const(phys.base, 64)))

        def is_far(e, i):
            if phys is None:
                return Const(0)
            if not split:
                return phys.outside(leaf_paddr(full_ppn(e.ppn), e.level, page))
            by_page = phys.outside(leaf_paddr(Const(phys.base >> PAGE_BITS, PPN_BITS),
                                              e.level, page))
            return ppn_far[i] | by_page

        for i, e in enumerate(entries):
            m.d.comb += [
                far[i].eq(is_far(e, i)),
                compared[i].eq(matches(e) & ~fenced[i]),
                permits[i].eq(e.permits(self.lookup_kind, self.lookup_csr)),
                clean[i].eq(store & ~e.d),
                needs_d[i].eq(permits[i] & clean[i]),
                answers[i].eq(~(needs_d[i] & self.lookup_csr.adue)),
            ]
        # Registered: the matches; per group of GROUP entries, whether one matches and the
        # checks of its lowest match. The next cycle chooses among the groups only. The
        # size balances the two cycles: the lowest of a pair is one LUT after the compare,
        # and the choice among eight pairs (16 entries) three LUTs before need_walk;
        # groups of four made the lookup's cycle the longer (ISSUE 11).
        groups = range(0, n, GROUP)
        matched = Signal(n)
        group_matched = Signal(len(groups))
        checks = {"permits": permits, "needs_d": needs_d, "answers": answers, "far": far}
        group_checks = {name: Signal(len(groups), name=f"group_{name}") for name in checks}
        with m.If(self.lookup_en):
            m.d.sync += [matched.eq(compared),
                         group_matched.eq(Cat(compared[g:g + GROUP].any() for g in groups))]
            for name, check in checks.items():
                m.d.sync += group_checks[name].eq(
                    Cat(lowest(compared[g:g + GROUP], check[g:g + GROUP]) for g in groups))
        first = Signal(n)
        m.d.comb += first.eq(Cat(matched[i] & ~matched[i // GROUP * GROUP:i].any() &
                                 ~group_matched[:i // GROUP].any() for i in range(n)))
        # An AND-OR by a one-hot select: a priority chain of If's would be a mux per entry
        # in a row on the hit's path.
        hit_entry = or_all(Mux(first[i], entries[i].as_value(), 0) for i in range(n))
        m.d.comb += [
            self.hit.eq(group_matched.any()),
            self.hit_permits.eq(lowest(group_matched, group_checks["permits"])),
            self.hit_needs_d.eq(lowest(group_matched, group_checks["needs_d"])),
            self.hit_answers.eq(lowest(group_matched, group_checks["answers"])),
            self.hit_beyond.eq(lowest(group_matched, group_checks["far"])),
            self.hit_index.eq(or_all(Mux(first[i], i, 0) for i in range(n))),
            self.hit_entry.eq(hit_entry),
        ]

        m.d.comb += [self.dbg_entries[i].eq(e) for i, e in enumerate(entries)]
        if restore:
            m.d.comb += [self.hit_entry.ppn.eq(full_ppn(TlbEntry(hit_entry).ppn)),
                         *(self.dbg_entries[i].ppn.eq(full_ppn(e.ppn))
                           for i, e in enumerate(entries))]

        # Tree-PLRU: node bits in heap order, t[1..n-1]; bit 0 unused. Each node's bit
        # points to the child on the way to the victim (1: the right one).
        tree = Signal(max(n, 2))

        def plru_picks(i):
            return Cat(tree[(1 << lv) | (i >> (depth - lv))] == ((i >> (depth - 1 - lv)) & 1)
                       for lv in range(depth)).all() if depth else Const(1)

        # Where a fill goes, one hot: the lowest invalid entry, else the tree-PLRU's (or the
        # index asked). Chosen ahead: the fill's write enables and the lookup's compare (a
        # fill of its cycle) then wait for no choice. The lowest invalid entry is found
        # two cycles before the fill, the tree's choice one cycle before, and a touch
        # reaches the tree a cycle late. Exact as long as nothing fills, fences or
        # touches in the two cycles before a fill, which the MMU never does: a fill ends
        # a walk of three cycles or more, a fence while a walk runs leaves it nothing to
        # fill, and no hit is touched while a walk runs.
        invalid = Signal(n)
        m.d.comb += invalid.eq(Cat(~e.valid for e in entries))
        lowest_invalid = Signal(n, init=1)
        some_invalid = Signal(init=1)
        m.d.sync += [lowest_invalid.eq(Cat(invalid[i] & ~invalid[:i].any() for i in range(n))),
                     some_invalid.eq(invalid.any())]
        victim_next = Signal(n)
        m.d.comb += victim_next.eq(Mux(some_invalid, lowest_invalid,
                                       Cat(plru_picks(i) for i in range(n))))
        victim = Signal(n, init=1)
        m.d.sync += victim.eq(victim_next)
        m.d.comb += self.victim.eq(or_all(Mux(victim[i], i, 0) for i in range(n)))
        # Where a fill goes, one hot, registered with the victim: each entry's ninety
        # write enables are then one LUT from a register (ISSUE 11).
        fill_at = Signal(n, init=1)
        m.d.sync += fill_at.eq(Mux(self.fill_at_index, 1 << self.fill_index, victim_next))
        m.d.comb += filled.eq(Mux(self.fill_en, fill_at, 0))
        m.d.comb += fill_index.eq(or_all(Mux(fill_at[i], i, 0) for i in range(n)))
        # A touch goes into registers first: the MMU's hit and its index come late in
        # the cycle, and the tree's enables hung on them (ISSUE 11).
        touch_en = Signal()
        touch_index = Signal(range(n))
        m.d.sync += [touch_en.eq(self.touch_en), touch_index.eq(self.touch_index)]
        touch = Signal(range(n))
        m.d.comb += touch.eq(Mux(self.fill_en, fill_index, touch_index))
        with m.If(self.fill_en | touch_en):
            for t in range(1, n):
                level = t.bit_length() - 1
                prefix = t - (1 << level)
                on_path = (touch >> (depth - level)) == prefix if level else 1
                with m.If(on_path):
                    # Point away from the touched entry: 1 when it lies under the left child.
                    m.d.sync += tree[t].eq(~touch[depth - 1 - level])

        # Keep only the PPN bits a page inside memory can have: the others' registers
        # would always hold 0, and with them went a third of each entry's write enables
        # and of the hit's AND-OR (ISSUE 11).
        kept = Signal(TlbEntry)
        m.d.comb += kept.eq(self.fill_entry)
        if phys is not None:
            m.d.comb += kept.ppn.eq(self.fill_entry.ppn[:phys.ppn_bits])
        for i in range(n):
            with m.If(filled[i]):
                m.d.sync += entries[i].eq(kept)
                if split:
                    m.d.sync += ppn_far[i].eq(far_by_ppn(kept))

        sf = self.sfence.payload
        for i, e in enumerate(entries):
            by_asid = ~sf.by_asid | (~e.g & (e.asid == sf.asid))
            by_vaddr = ~sf.by_vaddr | vpn_matches(e.vpn, e.level, sf.vaddr[12:39])
            m.d.comb += fenced[i].eq(self.sfence.valid & by_asid & by_vaddr)
            with m.If(fenced[i]):
                m.d.sync += e.valid.eq(0)
        return m

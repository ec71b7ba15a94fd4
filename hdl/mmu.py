"""The Sv39 MMU (:class:`MMU`): one request stage in front of the TLB, the walker
behind it; its debug port (:class:`DebugSignature`, :data:`COUNTERS`) and the check of a
configuration (:func:`check_params`)."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from . import wishbone
from .pte import (PADDR_BITS, SFENCE_PORT, Csr, PhysMemory, Priv, Request, Response,
                  SatpMode, TlbEntry, Vaddr, access_fault_cause, check_phys_base,
                  leaf_paddr, page_fault_cause)
from . import tlb as tlb_, walk_cache
from .ptw import BUS_ADDR_BITS, PageTableWalker
from .tlb import TLB

COUNTER_BITS = 48
#: The debug counters, members of :class:`DebugSignature` by these names; free-running.
COUNTERS = (
    "tlb_hits",        # translated requests answered from the TLB
    "tlb_misses",      # translated requests sent to the walker, a hit's D update too
    "walks",           # walks from the root; an A/D re-walk counts again
    "walk_cycles",     # cycles the walker is busy
    "ad_updates",      # A/D writes
    "page_faults",     # page faults answered
    "access_faults",   # access faults answered
)


def miss_cycles(reads, latency, cached=0):
    """Cycles from a request taken to its response, for a TLB miss whose walk reads
    ``reads`` PTEs from a memory that acknowledges ``latency`` cycles after it is asked
    and takes ``cached`` from the walk cache, with no A/D update (hdl/README.md,
    "Latency"): a cycle into the request stage, one to hand the request to the walker,
    ``latency + 1`` a read, two a walk-cache hit (its PTE, then the lookup of the address
    it points to), one to decide the leaf."""
    return 1 + 1 + reads * (latency + 1) + 2 * cached + 1


def check_params(*, phys_size, phys_base=0, tlb_entries=16, walk_cache_entries=8,
                 ad_lock=True):
    """Refuse a bad configuration with a message naming the parameter (ValueError),
    before anything is built."""
    check_phys_base(phys_base, phys_size)
    tlb_.check_entries(tlb_entries)
    walk_cache.check_entries(walk_cache_entries)


class DebugSignature(wiring.Signature):
    """What a testbench may look at: event counters and the TLB's entries.

    Parameters
    ----------
    tlb_entries : int
        The TLB's size.
    """

    def __init__(self, tlb_entries):
        super().__init__({
            **{name: Out(COUNTER_BITS) for name in COUNTERS},
            #: Every TLB entry, in index order.
            "tlb_entries": Out(data.ArrayLayout(TlbEntry, tlb_entries)),
        })


class MMU(wiring.Component):
    """Sv39 MMU with an ASID-tagged TLB and a walker that updates A/D atomically.

    A TLB hit answers the cycle after the request is taken, and a new request is taken
    every cycle a hit's response is. A miss holds the stage while the walker runs, and
    the next request is taken in the cycle after its response.

    Parameters
    ----------
    phys_size : int
        Bytes of physical memory.
    phys_base : int
        Its first physical address (hdl/README.md, "Memory"): memory is ``[phys_base,
        phys_base + phys_size)``, one naturally aligned block; outside is an access
        fault, and the bus carries offsets within it.
    tlb_entries : int
        A power of two.
    walk_cache_entries : int
        0 to 64; 0 disables the non-leaf PTE cache.
    ad_lock : bool
        Test-only: False makes Svadu write A/D without the locked re-read (see
        :class:`~.ptw.PageTableWalker`).
    """

    def __init__(self, *, phys_size, phys_base=0, tlb_entries=16, walk_cache_entries=8,
                 ad_lock=True):
        try:
            check_params(phys_size=phys_size, phys_base=phys_base, tlb_entries=tlb_entries,
                         walk_cache_entries=walk_cache_entries)
        except ValueError:
            self._MustUse__silence = True   # refused, not forgotten: no "never used" warning
            raise
        self.tlb = TLB(tlb_entries, phys_size=phys_size, phys_base=phys_base)
        self.ptw = PageTableWalker(phys_size=phys_size, phys_base=phys_base,
                                   walk_cache_entries=walk_cache_entries, ad_lock=ad_lock)
        self.phys = PhysMemory(phys_size, phys_base)
        self.phys_size = phys_size
        self.phys_base = phys_base
        super().__init__({
            #: Translations asked.
            "req":    In(stream.Signature(Request)),
            #: Their answers, in request order.
            "resp":   Out(stream.Signature(Response)),
            #: satp, priv, SUM, MXR, ADUE; read when a request is looked up or walked.
            "csr":    In(Csr),
            #: Applied the cycle it is valid, also in the middle of a walk.
            "sfence": In(SFENCE_PORT),
            #: The walker's memory.
            "bus":    Out(wishbone.Signature(addr_width=BUS_ADDR_BITS)),
            #: For testbenches: event counters and the TLB's entries.
            "debug":  Out(DebugSignature(tlb_entries)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.tlb = tlb = self.tlb
        m.submodules.ptw = ptw = self.ptw
        wiring.connect(m, wiring.flipped(self.bus), ptw.bus)
        # Two connects, not one: a fan-out of an always-ready stream would join two
        # constant readies.
        wiring.connect(m, wiring.flipped(self.sfence), tlb.sfence)
        wiring.connect(m, wiring.flipped(self.sfence), ptw.sfence)
        m.d.comb += ptw.csr.eq(self.csr)
        # The request stage's ends of the walker's streams.
        walk_req = stream.Signature(Request).create(path=("walk_req",))
        walk_resp = stream.Signature(Response).flip().create(path=("walk_resp",))
        wiring.connect(m, walk_req, ptw.req)
        wiring.connect(m, ptw.resp, walk_resp)

        # The request stage.
        valid = Signal()
        req = Signal(Request)
        walking = Signal()     # this request went to the walker; its answer comes from there
        from_hit = Signal()    # ... because of a D update: refill the entry it hit
        hit_index = Signal.like(tlb.hit_index)

        csr = self.csr
        # Steps 0 and 1 as the request is looked up: the stage decides by the CSRs of the
        # lookup, as the TLB's checks do (hdl/README.md, "TLB").
        translate = Signal()
        canonical = Signal()
        translating = Signal()  # translate & canonical: one register in need_walk's LUT
        taking = Vaddr(self.req.payload.vaddr)
        # The stage's registers, the TLB's lookup among them, load whenever the stage's
        # answer can be taken (``load``), not only when a request is taken: the
        # difference is a request the walker has or is taking from the stage, which needs
        # the stage's registers no more. ``load`` is early in the cycle, a taken request
        # waits for the hit's checks, and a hundred and more enables hang on it (ISSUE 11).
        load = ~valid | self.resp.ready
        m.d.comb += [tlb.lookup_en.eq(load),
                     tlb.lookup_vpn.eq(taking.vpn),
                     tlb.lookup_asid.eq(csr.satp.asid),
                     tlb.lookup_kind.eq(self.req.payload.kind),
                     tlb.lookup_csr.eq(csr)]
        entry = tlb.hit_entry

        # What the stage answers by itself, when it needs no walk.
        now = Signal(Response)
        need_walk = Signal()
        hit_answers = Signal()

        now_page = Signal()    # ``now`` is a page fault: for the counters, known early

        def fault(cause_of, page):
            m.d.comb += [now.fault.eq(1), now.cause.eq(cause_of(req.kind)),
                         now.tval.eq(req.vaddr), now_page.eq(page)]

        with m.If(~translate):
            with m.If(self.phys.outside(req.vaddr)):
                fault(access_fault_cause, page=0)
            with m.Else():
                m.d.comb += now.paddr.eq(req.vaddr[:PADDR_BITS])
        with m.Elif(~canonical):
            fault(page_fault_cause, page=1)
        with m.Elif(~tlb.hit_answers):
            pass                # need_walk, below
        with m.Elif(~tlb.hit_permits | tlb.hit_needs_d):
            m.d.comb += hit_answers.eq(1)
            fault(page_fault_cause, page=1)
        with m.Else():
            m.d.comb += hit_answers.eq(1)
            # A superpage may straddle memory's ends: check every hit, not the fill.
            with m.If(tlb.hit_beyond):
                fault(access_fault_cause, page=0)
            with m.Else():
                m.d.comb += now.paddr.eq(leaf_paddr(entry.ppn, entry.level, req.vaddr))

        # A miss, or a store to a clean page with Svadu: the TLB's one bit, so that the
        # choice between answering and walking waits for no checks. It is the last of the
        # stage's signals to settle, and the control below is written out as the few
        # terms each register needs of it (ISSUE 11: as a chain of If's it was 9 LUTs).
        m.d.comb += need_walk.eq(translating & ~tlb.hit_answers)
        m.d.comb += [walk_req.valid.eq(valid & ~walking & need_walk),
                     walk_req.payload.eq(req)]
        walk_start = walk_req.valid & walk_req.ready
        # Loaded until the walk starts, so that their enables wait for no need_walk.
        with m.If(~walking):
            m.d.sync += [from_hit.eq(tlb.hit), hit_index.eq(tlb.hit_index)]

        m.d.comb += [
            self.resp.valid.eq(valid & Mux(walking, walk_resp.valid, ~need_walk)),
            self.resp.payload.eq(Mux(walking, walk_resp.payload, now)),
            # A walk's answer is the stage's: taken when the stage's is.
            walk_resp.ready.eq(self.resp.ready),
            # Not in the cycle a walk's answer is taken: the walk fills the TLB then, and
            # the next request's lookup must see it (the TLB's lookup does not see a fill
            # of its own cycle, which would be the longest path of its compare).
            self.req.ready.eq(~valid | (~walking & ~need_walk & self.resp.ready)),
        ]
        translates = (csr.priv != Priv.M) & (csr.satp.mode == SatpMode.SV39)
        is_canonical = taking.upper == taking.vpn2[8].replicate(25)
        with m.If(load):
            m.d.sync += [req.eq(self.req.payload), translate.eq(translates),
                         canonical.eq(is_canonical),
                         translating.eq(translates & is_canonical)]
        # The stage holds a request until its answer is taken, and takes the next in the
        # same cycle unless a walk answered. ``walking`` means nothing without ``valid``.
        with m.If(~valid):
            m.d.sync += [valid.eq(self.req.valid), walking.eq(0)]
        with m.Elif(walking):
            m.d.sync += valid.eq(~(walk_resp.valid & self.resp.ready))
        with m.Else():
            m.d.sync += [valid.eq(need_walk | self.req.valid | ~self.resp.ready),
                         walking.eq(need_walk & walk_req.ready)]

        # TLB maintenance.
        leaf = ptw.fill.payload.pte
        fill = Signal(TlbEntry)
        m.d.comb += [
            fill.valid.eq(1), fill.g.eq(leaf.g), fill.level.eq(ptw.fill.payload.level),
            fill.asid.eq(csr.satp.asid), fill.vpn.eq(ptw.fill.payload.vpn), fill.ppn.eq(leaf.ppn),
            fill.r.eq(leaf.r), fill.w.eq(leaf.w), fill.x.eq(leaf.x),
            fill.u.eq(leaf.u), fill.a.eq(leaf.a), fill.d.eq(leaf.d),
            tlb.fill_en.eq(ptw.fill.valid & ~self.sfence.valid),
            tlb.fill_entry.eq(fill),
            tlb.fill_at_index.eq(from_hit),
            tlb.fill_index.eq(hit_index),
            # Every hit is a use, also one going to the walker for its D bit.
            tlb.touch_en.eq(valid & ~walking & translating & tlb.hit),
            tlb.touch_index.eq(tlb.hit_index),
            self.debug.tlb_entries.eq(tlb.dbg_entries),
        ]

        # Debug counters. Each event goes into registers first and the counter adds it a
        # cycle later; the port shows the sum, so that it reads as a counter that counted
        # at once. An answer's events are registered as two halves, that the stage
        # answered and what the answer was, and ANDed after the registers: both halves
        # come late in the cycle (the answer after need_walk, a fault after the hit's
        # checks), and 48-bit counters behind them were the MMU's longest paths.
        walk_page = walk_resp.payload.fault & (walk_resp.payload.cause.as_value() >= 12)
        answered = Signal()
        m.d.sync += answered.eq(valid & self.resp.valid & self.resp.ready)
        events = {       # name: (an event of an answer, what)
            "tlb_hits":      (True, ~walking & hit_answers),
            "tlb_misses":    (False, walk_start),
            "walks":         (False, ptw.events.walk),
            "walk_cycles":   (False, ptw.events.busy),
            "ad_updates":    (False, ptw.events.ad_update),
            # From the stage's own decision, or the walker's registered cause (page-fault
            # causes are 12..15): not from the response's mux, later in the cycle.
            "page_faults":   (True, Mux(walking, walk_page, now.fault & now_page)),
            "access_faults": (True, Mux(walking, walk_resp.payload.fault & ~walk_page,
                                        now.fault & ~now_page)),
        }
        for name, (of_answer, event) in events.items():
            counter = getattr(self.debug, name)
            count = Signal(COUNTER_BITS, name=f"{name}_count")
            what = Signal(name=f"{name}_pending")
            m.d.sync += what.eq(event)
            pending = answered & what if of_answer else what
            m.d.sync += count.eq(count + pending)
            m.d.comb += counter.eq(count + pending)
        return m

"""The Sv39 page-table walker (hdl/README.md, steps 3 to 9), its states
(:class:`WalkState`) and the layouts of what it hands back: the leaf for the TLB
(:class:`Leaf`) and its debug events (:class:`WalkEvents`). Its requests and responses
are the MMU's (:class:`~.pte.Request`, :class:`~.pte.Response`).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from . import wishbone
from .pte import (PADDR_BITS, SFENCE_PORT, VPN_TOTAL, Cause, Csr, Kind, PhysMemory, Pte,
                  Request, Response, Vaddr, access_fault_cause, is_store, leaf_paddr,
                  page_fault_cause)
from .walk_cache import OFFERED, WalkCache

#: The walk cache's other two lookups (besides ``OFFERED``, where a PTE read points).
AT_PTE_ADDR, AT_ROOT = 0, 1

#: The walker's bus carries 64-bit PTEs: word addresses, of the offset within memory
#: (:meth:`~.pte.PhysMemory.offset`).
BUS_ADDR_BITS = PADDR_BITS - 3


class Leaf(data.Struct):
    """A successful walk's leaf, for the TLB."""
    pte: Pte          #: As it is in memory after any A/D update.
    level: 2          #: 0, 1, 2: a 4K, 2M, 1G page.
    vpn: VPN_TOTAL    #: Of the walk's vaddr: the TLB entry's tag.


class WalkState(enum.Enum, shape=2):
    """Where the walker is. An enum of the gateware rather than an ``m.FSM``'s private
    encoding, so that a trace viewer names the states from here (sim/waves/)."""
    IDLE = 0      #: No walk: takes a request once its last response is taken.
    WALK = 1      #: Steps 3 to 8: a PTE read, and the one before it decided.
    AD_READ = 2   #: Step 7, Svadu: the leaf re-read under the bus lock.
    AD_WRITE = 3  #: Step 7: the leaf written back with A (and D).


class WalkEvents(data.Struct):
    """What the MMU's debug counters count, cycle by cycle."""
    walk: 1       #: A walk starts at the root; again after a failed A/D compare.
    busy: 1       #: A walk is in flight.
    ad_update: 1  #: An A/D write succeeded.


class PageTableWalker(wiring.Component):
    """Walks Sv39 page tables for one request at a time.

    Parameters
    ----------
    phys_size : int
        Bytes of physical memory.
    phys_base : int
        Its first physical address; PTE and leaf addresses outside ``[phys_base,
        phys_base + phys_size)`` are access faults, and the bus carries the offset of
        those inside.
    walk_cache_entries : int
        Non-leaf PTE cache size; 0 disables it.
    ad_lock : bool
        True (the design): Svadu re-reads the leaf under the bus LOCK and writes A/D only
        if it is unchanged. False exists only for the test that shows the race is real:
        A/D are then written with a plain store, as Sail and Spike do.
    """

    #: Taken while no walk is in flight and no response waits: one walk at a time.
    req: In(stream.Signature(Request))
    #: The translation or the fault, from the cycle the walk ends until it is taken.
    resp: Out(stream.Signature(Response))
    #: The leaf of a walk the TLB may keep (it succeeded, and no sfence.vma met it), for
    #: one cycle as the walk ends. A stream of its own, not a part of ``resp``: the TLB
    #: must take it then, also when ``resp`` waits, or a fence after that would miss it.
    fill: Out(stream.Signature(Leaf, always_ready=True))
    #: Read as the walk goes: the root at its start (and at a re-walk's), the permission
    #: and A/D checks at its leaf.
    csr: In(Csr)
    #: Makes a walk in flight stale: it answers, but leaves nothing in the TLB or the
    #: walk cache. Without an address, flushes the walk cache too.
    sfence: In(SFENCE_PORT)
    #: For the MMU's debug counters.
    events: Out(WalkEvents)
    #: PTE reads and A/D writes; ``lock`` holds from the A/D re-read to the write.
    bus: Out(wishbone.Signature(addr_width=BUS_ADDR_BITS))

    def __init__(self, *, phys_size, phys_base=0, walk_cache_entries=8, ad_lock=True):
        self.phys = PhysMemory(phys_size, phys_base)
        self.phys_size = phys_size
        self.ad_lock = ad_lock
        # Every PTE address the walker looks up is inside memory or an access fault.
        self.walk_cache = WalkCache(walk_cache_entries, phys_size=phys_size)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.walk_cache = wc = self.walk_cache

        vaddr = Signal(Vaddr)
        kind = Signal(Kind)
        level = Signal(2)           # of the PTE at pte_addr, the next one read
        pte_addr = Signal(PADDR_BITS)
        looked_up = Signal()        # pte_addr has been looked up in the walk cache
        # The last PTE read (from the bus or the walk cache), its address and level: it is
        # decided (steps 4 to 8) in the cycle after its read, while the read of the PTE
        # it would point to is already asked.
        pte = Signal(Pte)
        pte_at = Signal(PADDR_BITS)
        pte_level = Signal(2)
        have_pte = Signal()         # pte holds a PTE to decide: not at the root
        asking = Signal()           # a read of pte_addr is in flight: nothing to decide
        leaf_level = Signal(2)
        state = Signal(WalkState)
        # Copies of two of the state's decodes, for the datapath: its hundreds of enables
        # and selects then hang on registers of their own, not on the state's two bits
        # and their control fan-out (ISSUE 11: a placement spread that net over 12 ns).
        in_walk = Signal()
        in_idle = Signal(init=1)

        def goto(next_state):
            m.d.sync += [state.eq(next_state), in_walk.eq(next_state == WalkState.WALK),
                         in_idle.eq(next_state == WalkState.IDLE)]
        stale = Signal()
        busy = Signal()
        walk_begin = Signal()
        ad_update = Signal()
        m.d.comb += [self.events.walk.eq(walk_begin), self.events.busy.eq(busy),
                     self.events.ad_update.eq(ad_update)]

        # The index into the table at pte_addr's PPN: vaddr's VPN part one level below
        # ``level``. A register loaded with ``level``, not a mux on it: it is in the walk
        # cache's compare.
        child_vpn = Signal(9)
        root_addr = Cat(Const(0, 3), vaddr.vpn2, self.csr.satp.ppn)

        sfence = self.sfence
        with m.If(sfence.valid & busy):
            m.d.sync += stale.eq(1)
        m.d.comb += wc.flush.eq(sfence.valid & ~sfence.payload.by_vaddr)
        keep = ~stale & ~sfence.valid

        resp, fill = self.resp, self.fill

        # The response is a few registered bits (fault, and which kind) and the leaf, the
        # rest of it wiring from registers: a walk's many endings then load two bits, not
        # 120 (ISSUE 11: the response register's enables were the walker's longest path).
        fault = Signal()
        access = Signal()     # the fault is an access fault, not a page fault
        m.d.comb += [
            resp.payload.fault.eq(fault),
            resp.payload.cause.eq(Mux(~fault, Cause.NONE,
                                      Mux(access, access_fault_cause(kind),
                                          page_fault_cause(kind)))),
            resp.payload.paddr.eq(Mux(fault, 0, leaf_paddr(fill.payload.pte.ppn, leaf_level,
                                                           vaddr))),
            resp.payload.tval.eq(Mux(fault, vaddr, 0)),
            fill.payload.level.eq(leaf_level),
            fill.payload.vpn.eq(vaddr.vpn),
        ]

        def finish(fault_kind):
            """End the walk: ``fault_kind`` is None for a translation, else "page" or
            "access"."""
            m.d.sync += [
                resp.valid.eq(1),
                fault.eq(fault_kind is not None),
                access.eq(fault_kind == "access"),
                fill.valid.eq(0 if fault_kind else keep),
            ]
            goto(WalkState.IDLE)

        def finish_leaf():
            """The leaf passed every page-fault check and its A/D are set (``fill``'s PTE
            is it): the physical range check (a PMA check in Sail, after A/D) decides."""
            with m.If(self.phys.outside(leaf_paddr(leaf.ppn, leaf_level, vaddr))):
                finish("access")
            with m.Else():
                finish(None)

        with m.If(resp.ready):
            m.d.sync += resp.valid.eq(0)
        m.d.sync += [fill.valid.eq(0), walk_begin.eq(0), ad_update.eq(0)]
        bus = self.bus
        m.d.comb += bus.sel.eq(0xff)

        # The leaf, its address and level, as WALK decides them: copied every cycle of a
        # walk, not when it ends, so that their enables wait for no decision; the PTE
        # registers above may take a walk-cache hit in the cycle that decides a leaf.
        # The copy of the leaf is what the TLB gets: as read, or as written with its A/D.
        leaf = fill.payload.pte
        leaf_at = Signal(PADDR_BITS)
        updated = Signal(Pte)
        m.d.comb += [updated.eq(leaf), updated.a.eq(1),
                     updated.d.eq(leaf.d | is_store(kind))]
        with m.If(in_walk):
            m.d.sync += [leaf.eq(pte), leaf_at.eq(pte_at), leaf_level.eq(pte_level)]
        with m.Elif(state == WalkState.AD_WRITE):
            m.d.sync += leaf.eq(updated)

        # A read's PTE and a walk-cache hit's are taken whatever WALK decides about the PTE
        # before them (that decision comes late in the cycle): the address they point to
        # is looked up in the walk cache at once for a read, a cycle later for a hit, whose
        # PTE comes late in its cycle. The walk cache compares on every cycle it might be
        # needed, so that its enables wait for no decision either. The PTE and its
        # address, 120 registers, load in every cycle that decides and has looked up
        # (with the walk cache's answer, a hit or not: if not, the walk asks the bus or
        # ends, and nothing decides until the read comes), not only when the walk cache
        # hits (ISSUE 11: that enable's fan-out was the walker's longest path).
        walking = in_walk
        read = Pte(bus.dat_r)
        read_taken = walking & bus.ack      # a slave acknowledges only what was asked
        hit_taken = walking & ~asking & looked_up & wc.hit
        with m.If(walking & (bus.ack | (~asking & looked_up))):
            m.d.sync += [pte.eq(Mux(bus.ack, read, wc.pte)), pte_at.eq(pte_addr)]
        next_addr = Cat(Const(0, 3), child_vpn, Mux(read_taken, read.ppn, Pte(wc.pte).ppn))
        with m.If(read_taken | hit_taken):
            m.d.sync += [pte_level.eq(level), have_pte.eq(1), level.eq(level - 1),
                         child_vpn.eq(vaddr.vpn0),
                         pte_addr.eq(next_addr), looked_up.eq(read_taken), asking.eq(0)]
        with m.Elif(walking & ~looked_up):
            m.d.sync += looked_up.eq(1)
        root = Cat(Const(0, 3), Vaddr(self.req.payload.vaddr).vpn2, self.csr.satp.ppn)
        # The walk cache looks up every cycle: what pte_addr will hold next cycle, chosen
        # by the bus's acknowledge and the state only. A lookup it did not need is the
        # same address again, or one nobody reads.
        # Every PTE read is offered, also the A/D re-read, whose lookup nobody uses: the
        # offer then waits for no state (ISSUE 11: it was on the walk cache's longest path).
        m.d.comb += wc.offer.eq(bus.ack & keep)
        m.d.comb += [wc.insert_addr.eq(pte_addr), wc.insert_pte.eq(read),
                     wc.addrs[AT_PTE_ADDR].eq(pte_addr), wc.addrs[AT_ROOT].eq(root),
                     wc.addrs[OFFERED].eq(Cat(Const(0, 3), child_vpn, read.ppn)),
                     wc.pick.eq(Mux(bus.ack, 1 << OFFERED,
                                    Mux(in_idle, 1 << AT_ROOT, 1 << AT_PTE_ADDR)))]

        m.d.comb += self.req.ready.eq(in_idle & ~resp.valid)
        with m.If(self.req.ready):
            # The request's registers follow the stream while the walker waits, taken or
            # not: only the state waits for ``valid``, which comes late (after the TLB's
            # checks) and so enables a few registers, not 130.
            req = self.req.payload
            m.d.sync += [vaddr.eq(req.vaddr), kind.eq(req.kind), level.eq(2),
                         child_vpn.eq(Vaddr(req.vaddr).vpn1),
                         have_pte.eq(0), stale.eq(0), pte_addr.eq(root),
                         looked_up.eq(1), asking.eq(0)]

        with m.Switch(state):
            with m.Case(WalkState.WALK):
                # Steps 4 to 8 on the PTE read last cycle (or earlier), while the PTE it
                # points to is asked at pte_addr: that address is the PTE's PPN whatever
                # the PTE turns out to be, and the ask waits only for the decision. Once
                # asked, the read goes on (``asking``) until its acknowledge.
                m.d.comb += busy.eq(1)
                in_range = ~self.phys.outside(pte_addr)
                ask = Signal()
                with m.If(asking):
                    m.d.comb += ask.eq(1)
                with m.Else():
                    with m.If(have_pte & pte.is_invalid()):
                        finish("page")
                    with m.Elif(have_pte & ~pte.is_pointer()):
                        # Steps 6 to 8: the leaf.
                        with m.If(pte.is_misaligned(pte_level) |
                                  ~pte.permits(kind, self.csr)):
                            finish("page")
                        with m.Elif(pte.needs_ad_update(kind)):
                            with m.If(~self.csr.adue):
                                finish("page")
                            with m.Else():
                                goto(WalkState.AD_READ if self.ad_lock
                                     else WalkState.AD_WRITE)
                        with m.Else():
                            # The copies above hold the leaf from the next cycle on.
                            with m.If(self.phys.outside(
                                    leaf_paddr(pte.ppn, pte_level, vaddr))):
                                finish("access")
                            with m.Else():
                                finish(None)
                    with m.Elif(have_pte & pte.is_bad_pointer(pte_level)):
                        finish("page")
                    with m.Elif(~in_range):
                        finish("access")
                    with m.Elif(looked_up & ~wc.hit):
                        m.d.comb += ask.eq(1)
                        m.d.sync += asking.eq(~bus.ack)
                m.d.comb += [bus.adr.eq(self.phys.offset(pte_addr)[3:]), bus.cyc.eq(ask),
                             bus.stb.eq(ask)]
                # A good pointer read from memory goes into the walk cache as it is read,
                # so that the lookup of the address it points to, in the same cycle, sees
                # it (hdl/README.md, step 5: inserted, then the next level).
                m.d.comb += wc.insert_en.eq(read_taken & ~bus.err & ~read.is_invalid() &
                                            read.is_pointer() & ~read.is_bad_pointer(level) &
                                            keep)
                with m.If(ask & bus.err):
                    finish("access")

            with m.Case(WalkState.AD_READ):
                m.d.comb += [busy.eq(1), bus.cyc.eq(1), bus.stb.eq(1), bus.lock.eq(1),
                             bus.adr.eq(self.phys.offset(leaf_at)[3:])]
                # Where a walk again would start, loaded whatever the compare finds (its
                # 56 enables would wait for 64 bits compared).
                m.d.sync += pte_addr.eq(root_addr)
                with m.If(bus.err):
                    finish("access")
                with m.Elif(bus.ack):
                    with m.If(bus.dat_r == leaf.as_value()):
                        goto(WalkState.AD_WRITE)
                    with m.Else():
                        # Changed since the walk read it (the kernel's mkclean, say):
                        # writing our A/D now would resurrect a stale PTE. Walk again.
                        m.d.sync += [level.eq(2), child_vpn.eq(vaddr.vpn1), have_pte.eq(0),
                                     walk_begin.eq(1),
                                     looked_up.eq(0)]
                        goto(WalkState.WALK)

            with m.Case(WalkState.AD_WRITE):
                m.d.comb += [
                    busy.eq(1), bus.cyc.eq(1), bus.stb.eq(1), bus.we.eq(1),
                    bus.lock.eq(self.ad_lock), bus.adr.eq(self.phys.offset(leaf_at)[3:]),
                    bus.dat_w.eq(updated),
                ]
                with m.If(bus.err):
                    finish("access")
                with m.Elif(bus.ack):
                    m.d.sync += ad_update.eq(1)
                    finish_leaf()

        # After the Switch, so that the request's late ``valid`` is the state's last mux,
        # not a leaf under the state's decode (ISSUE 11). Only IDLE takes a request.
        with m.If(self.req.valid & self.req.ready):
            m.d.sync += walk_begin.eq(1)
            goto(WalkState.WALK)
        return m

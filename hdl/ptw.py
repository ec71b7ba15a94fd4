"""Sv39 page-table walker: the Sail check order, Svadu as a locked compare-and-write."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import wishbone
from .pte import (PADDR_BITS, Cause, Csr, Kind, Pte, Response, Vaddr, access_fault_cause,
                  is_store, leaf_paddr, leaf_permits, needs_ad_update, page_fault_cause)
from .walk_cache import WalkCache

BUS_ADDR_BITS = PADDR_BITS - 3


def check_phys_size(phys_size):
    if (not isinstance(phys_size, int) or phys_size <= 0 or phys_size % 4096 or
            phys_size > 1 << PADDR_BITS):
        raise ValueError(f"phys_size must be a positive multiple of 4096 bytes, at most "
                         f"2**{PADDR_BITS}, not {phys_size!r}")


class PageTableWalker(wiring.Component):
    """Walks Sv39 tables for one request at a time (hdl/README.md, steps 3 to 9).

    Parameters
    ----------
    phys_size : int
        Bytes of physical memory; PTE and leaf addresses at or above it are access faults.
    walk_cache_entries : int
        Non-leaf PTE cache size; 0 disables it.
    ad_lock : bool
        True (the design): Svadu re-reads the leaf under the bus LOCK and writes A/D only
        if it is unchanged. False exists only for the test that shows the race is real:
        A/D are then written with a plain store, as Sail and Spike do.

    Members
    -------
    start : In(1)
        Begin a walk for ``vaddr``/``kind``; ignored while ``busy``.
    csr : In(Csr)
        Live translation state.
    sfence_valid, sfence_by_vaddr : In(1)
        An sfence.vma: makes an in-flight walk stale, and flushes the walk cache unless it
        has an address.
    busy : Out(1)
        A walk is in flight.
    done : Out(1)
        One cycle, when ``result`` becomes valid; ``result`` then holds until next start.
    result : Out(Response)
    fill : Out(1)
        With ``done``: the TLB may keep ``leaf``/``level`` (success, not stale).
    leaf : Out(Pte), level : Out(2)
        The leaf PTE as it is in memory after any A/D update, and its level.
    walk_begin, ad_update : Out(1)
        Event pulses for the debug counters: a walk (re)starts at the root; A/D written.
    bus : Out(wishbone.Signature)
        64-bit Wishbone master, word addresses.
    """

    def __init__(self, *, phys_size, walk_cache_entries=8, ad_lock=True):
        check_phys_size(phys_size)
        self.phys_size = phys_size
        self.ad_lock = ad_lock
        self.walk_cache = WalkCache(walk_cache_entries)
        super().__init__({
            "start":           In(1),
            "vaddr":           In(64),
            "kind":            In(Kind),
            "csr":             In(Csr),
            "sfence_valid":    In(1),
            "sfence_by_vaddr": In(1),
            "busy":            Out(1),
            "done":            Out(1),
            "result":          Out(Response),
            "fill":            Out(1),
            "leaf":            Out(Pte),
            "level":           Out(2),
            "walk_begin":      Out(1),
            "ad_update":       Out(1),
            "bus":             Out(wishbone.Signature(addr_width=BUS_ADDR_BITS)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.walk_cache = wc = self.walk_cache

        vaddr = Signal(Vaddr)
        kind = Signal(Kind)
        level = Signal(2)
        pte_addr = Signal(PADDR_BITS)
        leaf = Signal(Pte)     # the leaf as the walk read it: the A/D compare value
        stale = Signal()

        child_vpn = Signal(9)
        m.d.comb += child_vpn.eq(Mux(level == 2, vaddr.vpn1, vaddr.vpn0))
        root_addr = Cat(Const(0, 3), vaddr.vpn2, self.csr.satp.ppn)

        with m.If(self.sfence_valid & self.busy):
            m.d.sync += stale.eq(1)
        m.d.comb += wc.flush.eq(self.sfence_valid & ~self.sfence_by_vaddr)
        keep = ~stale & ~self.sfence_valid

        def finish(fault, cause=Cause.NONE, paddr=0):
            m.d.sync += [
                self.done.eq(1),
                self.result.fault.eq(fault),
                self.result.cause.eq(cause),
                self.result.paddr.eq(paddr),
                self.result.tval.eq(vaddr if fault else 0),
                self.fill.eq(0 if fault else keep),
            ]
            m.next = "IDLE"

        def finish_leaf(pte):
            """The leaf passed every page-fault check and its A/D are set: the physical
            range check (a PMA check in Sail, after A/D) decides."""
            paddr = leaf_paddr(pte.ppn, level, vaddr)
            m.d.sync += [self.leaf.eq(pte), self.level.eq(level)]
            with m.If(paddr >= self.phys_size):
                finish(1, access_fault_cause(kind))
            with m.Else():
                finish(0, paddr=paddr)

        m.d.sync += [self.done.eq(0), self.walk_begin.eq(0), self.ad_update.eq(0)]
        bus = self.bus
        m.d.comb += bus.sel.eq(0xff)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [vaddr.eq(self.vaddr), kind.eq(self.kind), level.eq(2),
                                 stale.eq(0), self.walk_begin.eq(1),
                                 pte_addr.eq(Cat(Const(0, 3), Vaddr(self.vaddr).vpn2,
                                                 self.csr.satp.ppn))]
                    m.next = "WALK"

            with m.State("WALK"):
                m.d.comb += self.busy.eq(1)
                in_range = pte_addr < self.phys_size
                pte = Pte(Mux(wc.hit, wc.pte, bus.dat_r))
                m.d.comb += [
                    wc.addr.eq(pte_addr),
                    bus.adr.eq(pte_addr[3:]),
                    bus.cyc.eq(in_range & ~wc.hit),
                    bus.stb.eq(in_range & ~wc.hit),
                ]
                with m.If(~in_range | bus.err):
                    finish(1, access_fault_cause(kind))
                with m.Elif(wc.hit | bus.ack):
                    invalid = (~pte.v | (pte.w & ~pte.r) | pte.reserved.any() |
                               pte.pbmt.any() | pte.n)
                    nonleaf = ~pte.r & ~pte.x
                    misaligned = Mux(level == 2, pte.ppn[0:18].any(),
                                     (level == 1) & pte.ppn[0:9].any())
                    with m.If(invalid):
                        finish(1, page_fault_cause(kind))
                    with m.Elif(nonleaf):
                        with m.If(pte.a | pte.d | pte.u | (level == 0)):
                            finish(1, page_fault_cause(kind))
                        with m.Else():
                            m.d.comb += [wc.insert_en.eq(~wc.hit & keep),
                                         wc.insert_addr.eq(pte_addr),
                                         wc.insert_pte.eq(pte)]
                            m.d.sync += [level.eq(level - 1),
                                         pte_addr.eq(Cat(Const(0, 3), child_vpn, pte.ppn))]
                    with m.Elif(misaligned | ~leaf_permits(pte, kind, self.csr)):
                        finish(1, page_fault_cause(kind))
                    with m.Elif(needs_ad_update(pte, kind)):
                        with m.If(~self.csr.adue):
                            finish(1, page_fault_cause(kind))
                        with m.Else():
                            m.d.sync += leaf.eq(pte)
                            m.next = "AD_READ" if self.ad_lock else "AD_WRITE"
                    with m.Else():
                        finish_leaf(pte)

            with m.State("AD_READ"):
                m.d.comb += [self.busy.eq(1), bus.cyc.eq(1), bus.stb.eq(1), bus.lock.eq(1),
                             bus.adr.eq(pte_addr[3:])]
                with m.If(bus.err):
                    finish(1, access_fault_cause(kind))
                with m.Elif(bus.ack):
                    with m.If(bus.dat_r == leaf.as_value()):
                        m.next = "AD_WRITE"
                    with m.Else():
                        # Changed since the walk read it (the kernel's mkclean, say):
                        # writing our A/D now would resurrect a stale PTE. Walk again.
                        m.d.sync += [level.eq(2), pte_addr.eq(root_addr),
                                     self.walk_begin.eq(1)]
                        m.next = "WALK"

            with m.State("AD_WRITE"):
                updated = Signal(Pte)
                m.d.comb += [
                    updated.eq(leaf),
                    updated.a.eq(1),
                    updated.d.eq(leaf.d | is_store(kind)),
                    self.busy.eq(1), bus.cyc.eq(1), bus.stb.eq(1), bus.we.eq(1),
                    bus.lock.eq(self.ad_lock), bus.adr.eq(pte_addr[3:]),
                    bus.dat_w.eq(updated),
                ]
                with m.If(bus.err):
                    finish(1, access_fault_cause(kind))
                with m.Elif(bus.ack):
                    m.d.sync += self.ad_update.eq(1)
                    finish_leaf(updated)
        return m

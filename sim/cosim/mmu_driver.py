"""cocotb driver of the RTL MMU (the flat ``mkclean_mmu`` top): reset, CSRs, sfence,
request and response streams, the debug counters and TLB view; its memory is a
:class:`~.wishbone_ram.WishboneRam` on the walker's bus.

Everything happens on falling clock edges: outputs have settled by then, and inputs set
there are stable for the next rising edge, whatever the order cocotb wakes tasks in.

Runs inside the simulator. Imports: cocotb, the gateware's layouts and names (hdl/), the
golden model's value types (sim/model), :mod:`.wishbone_ram`, :mod:`.build`'s clock.
"""

import cocotb
from cocotb.triggers import FallingEdge
from cocotb.utils import get_sim_time

from ...hdl.mmu import COUNTERS
from ...hdl.pte import TlbEntry as TlbEntryLayout
from ..model.memory import Memory
from ..model.mmu import Response
from ..model.tlb import TlbEntry
from .build import CLOCK_HALF_PERIOD_NS
from .wishbone_ram import WishboneRam

CLOCK_NS = 2 * CLOCK_HALF_PERIOD_NS

#: Where each TLB entry field sits in ``dbg_tlb_entries`` (the gateware's layout): bit
#: offset and mask.
_TLB_FIELD_AT = {name: (field.offset, (1 << field.width) - 1)
                 for name, field in TlbEntryLayout.as_shape()}
TLB_ENTRY_BITS = TlbEntryLayout.as_shape().size


def unpack_tlb_entries(value, count):
    """``count`` :class:`~mkclean.sim.model.tlb.TlbEntry` packed as in
    ``dbg_tlb_entries``, entry 0 in the low bits."""
    (asid, asid_m), (g, _), (level, level_m), (vpn, vpn_m), (ppn, ppn_m) = (
        _TLB_FIELD_AT[name] for name in ("asid", "g", "level", "vpn", "ppn"))
    valid, r, w, x, u, a, d = (_TLB_FIELD_AT[name][0]
                               for name in ("valid", "r", "w", "x", "u", "a", "d"))
    entries = []
    for i in range(count):
        v = value >> (TLB_ENTRY_BITS * i)
        entries.append(TlbEntry(
            bool(v >> valid & 1), v >> asid & asid_m, bool(v >> g & 1), v >> level & level_m,
            v >> vpn & vpn_m, v >> ppn & ppn_m, bool(v >> r & 1), bool(v >> w & 1),
            bool(v >> x & 1), bool(v >> u & 1), bool(v >> a & 1), bool(v >> d & 1)))
    return entries


class RtlMmu:
    """The RTL MMU and its memory.

    Parameters
    ----------
    dut
        cocotb handle of ``mkclean_mmu``.
    mem : Memory
        Physical memory, shared with whoever builds page tables in it.
    latency : int or (int, int)
        Cycles the memory waits before it answers a transaction: a transaction takes
        ``latency + 1`` cycles. A pair draws each wait from that range with ``rng``.

    Attributes
    ----------
    ram : WishboneRam
        The memory on the walker's bus: its ``hook``, ``bus_log`` (this request's
        transactions), ``latency`` and ``locked``.
    """

    ZEROED_INPUTS = ("req_valid", "sfence_valid", "wb_ack", "wb_err", "sum", "mxr",
                     "satp_mode", "satp_asid", "satp_ppn")
    SET_INPUTS = ("resp_ready",)

    def __init__(self, dut, mem: Memory, latency=1, rng=None):
        self.dut = dut
        self.ram = WishboneRam(mem, latency, rng)
        self._started = False

    async def start(self):
        """Start the clock and the memory, and reset the MMU; again: reset only (a new
        run in the same simulation starts from a cold TLB)."""
        dut = self.dut
        if self._started:
            await self.reset()
            return
        self._started = True
        for name in self.ZEROED_INPUTS:
            getattr(dut, name).value = 0
        for name in self.SET_INPUTS:
            getattr(dut, name).value = 1
        dut.priv.value = 1
        dut.adue.value = 1
        # The clock runs inside the simulated top (build.clocked_wrapper).
        await self.reset()
        cocotb.start_soon(self.ram.serve_cocotb(dut))

    async def reset(self):
        self.dut.rst.value = 1
        for _ in range(2):
            await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await FallingEdge(self.dut.clk)

    @property
    def cycle(self):
        """Clock cycles since time 0."""
        return int(get_sim_time(unit="ns")) // CLOCK_NS

    def _drive_sfence(self, vaddr, asid):
        dut = self.dut
        dut.sfence_by_vaddr.value = int(vaddr is not None)
        dut.sfence_vaddr.value = vaddr or 0
        dut.sfence_by_asid.value = int(asid is not None)
        dut.sfence_asid.value = asid or 0

    def sfence_now(self, vaddr=None, asid=None):
        """From a bus hook only: drive sfence.vma for the cycle of the transaction being
        answered, so that the walk in flight sees it. The memory task, which runs the
        hook, ends the pulse on its next falling edge."""
        self._drive_sfence(vaddr, asid)
        self.ram.pulse(self.dut.sfence_valid)

    async def sfence(self, vaddr=None, asid=None):
        """sfence.vma for one cycle, between requests."""
        self._drive_sfence(vaddr, asid)
        self.dut.sfence_valid.value = 1
        await FallingEdge(self.dut.clk)
        self.dut.sfence_valid.value = 0

    async def set_csr(self, *, mode=None, asid=None, ppn=None, priv=None, sum=None,
                      mxr=None, adue=None):
        dut = self.dut
        for name, value in (("satp_mode", mode), ("satp_asid", asid), ("satp_ppn", ppn),
                            ("priv", priv), ("sum", sum), ("mxr", mxr), ("adue", adue)):
            if value is not None:
                getattr(dut, name).value = int(value)
        await FallingEdge(dut.clk)

    def _response(self):
        dut = self.dut
        if int(dut.resp_fault.value):
            return Response(True, int(dut.resp_cause.value), None, int(dut.resp_tval.value))
        return Response(False, None, int(dut.resp_paddr.value), None)

    async def translate(self, vaddr, kind):
        """One request, alone in the MMU; returns (Response, cycles from the cycle the
        request is taken to the cycle its response is valid)."""
        responses, cycles = await self.stream([(vaddr, kind)])
        return responses[0], cycles

    async def stream(self, requests):
        """Issue ``requests`` back to back (one per cycle when the MMU takes them);
        returns the responses and the cycles from the first request taken to the last
        response valid."""
        dut = self.dut
        self.ram.bus_log = []
        responses = []
        issued = 0
        first = last = cycle = 0
        while len(responses) < len(requests):
            # Read before writing: req_ready and resp_valid depend only on the MMU's
            # registers here, so they hold for the coming rising edge, which also samples
            # what is written now.
            if int(dut.resp_valid.value):
                responses.append(self._response())
                last = cycle
            if issued < len(requests):
                vaddr, kind = requests[issued]
                dut.req_vaddr.value = vaddr
                dut.req_kind.value = int(kind)
                dut.req_valid.value = 1
                if int(dut.req_ready.value):
                    if not issued:
                        first = cycle
                    issued += 1
            else:
                dut.req_valid.value = 0
            await FallingEdge(dut.clk)
            cycle += 1
        dut.req_valid.value = 0
        return responses, last - first

    def counters(self):
        return {name: int(getattr(self.dut, f"cnt_{name}").value) for name in COUNTERS}

    async def tlb_entries(self, count):
        """Every TLB entry, from the debug port (one read, no clock)."""
        return unpack_tlb_entries(int(self.dut.dbg_tlb_entries.value), count)

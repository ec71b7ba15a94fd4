"""cocotb driver of the RTL MMU (the flat ``mkclean_mmu`` top): clock, the Wishbone memory
the walker reads and writes, requests and responses, CSRs, sfence, debug port.

Everything happens on falling clock edges: outputs have settled by then, and inputs set
there are stable for the next rising edge, whatever the order cocotb wakes tasks in.
"""

import random

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge
from cocotb.utils import get_sim_time

from ...hdl.mmu import COUNTERS
from ..model.memory import Memory
from ...hdl.batch import LANES, REQ_BITS
from ..model.mmu import Response
from .runner import CLOCK_HALF_PERIOD_NS

CLOCK_NS = 2 * CLOCK_HALF_PERIOD_NS

#: TlbEntry fields, LSB first, as packed in ``dbg_tlb_entries`` (hdl/pte.py order).
TLB_ENTRY_FIELDS = (("valid", 1), ("g", 1), ("level", 2), ("asid", 16), ("vpn", 27),
                    ("ppn", 44), ("r", 1), ("w", 1), ("x", 1), ("u", 1), ("a", 1), ("d", 1))


TLB_ENTRY_BITS = sum(width for _, width in TLB_ENTRY_FIELDS)


def unpack_tlb_entry(value):
    out = {}
    for name, width in TLB_ENTRY_FIELDS:
        out[name] = value & ((1 << width) - 1)
        value >>= width
    return out


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
    """

    ZEROED_INPUTS = ("req_valid", "sfence_valid", "wb_ack", "wb_err", "sum", "mxr",
                     "satp_mode", "satp_asid", "satp_ppn")
    SET_INPUTS = ("resp_ready",)

    def __init__(self, dut, mem: Memory, latency=1, rng=None):
        self.dut = dut
        self.mem = mem
        self.latency = latency
        self.rng = rng or random.Random(0)
        #: called as ``hook(number, we, lock, addr)`` before transaction ``number`` of the
        #: current request is answered; returns "error" to answer it with a bus error.
        self.hook = None
        #: this request's transactions: (we, lock, byte address, value or None on error)
        self.bus_log = []
        #: the walker is inside its locked A/D sequence (between the locked read and write)
        self.locked = False
        self._sfence_pending = False
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
        # The clock runs inside the simulated top (runner.clocked_wrapper).
        await self.reset()
        cocotb.start_soon(self._memory())

    async def reset(self):
        self.dut.rst.value = 1
        for _ in range(2):
            await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await FallingEdge(self.dut.clk)

    def _wait(self):
        if isinstance(self.latency, tuple):
            return self.rng.randint(*self.latency)
        return self.latency

    @property
    def cycle(self):
        """Clock cycles since time 0."""
        return int(get_sim_time(unit="ns")) // CLOCK_NS

    async def _memory(self):
        dut = self.dut
        waited = 0
        wait_for = None
        acking = False
        while True:
            if not (acking or self._sfence_pending or int(dut.wb_stb.value)):
                # Idle bus: sleep until the walker starts a transaction rather than wake
                # on every clock.
                await RisingEdge(dut.wb_stb)
            await FallingEdge(dut.clk)
            if self._sfence_pending:
                dut.sfence_valid.value = 0
                self._sfence_pending = False
            if acking:
                dut.wb_ack.value = 0
                dut.wb_err.value = 0
                acking = False
            if not (int(dut.wb_cyc.value) and int(dut.wb_stb.value)):
                continue
            if wait_for is None:           # a new transaction: draw its wait states
                wait_for = self._wait()
            if waited < wait_for:
                waited += 1
                continue
            waited = 0
            wait_for = None
            acking = True
            we, lock = int(dut.wb_we.value), int(dut.wb_lock.value)
            addr = int(dut.wb_adr.value) << 3
            number = len(self.bus_log)
            # The hook runs before this transaction is answered: a locked read not yet
            # answered has not locked anything yet.
            hook_says = self.hook(number, we, lock, addr) if self.hook else None
            self.locked = bool(lock and not we)
            if hook_says == "error":
                self.bus_log.append((we, lock, addr, None))
                dut.wb_err.value = 1
                continue
            if we:
                value = int(dut.wb_dat_w.value)
                self.mem.write64(addr, value)
            else:
                value = self.mem.read64(addr)
                dut.wb_dat_r.value = value
            self.bus_log.append((we, lock, addr, value))
            dut.wb_ack.value = 1

    def _drive_sfence(self, vaddr, asid):
        dut = self.dut
        dut.sfence_by_vaddr.value = int(vaddr is not None)
        dut.sfence_vaddr.value = vaddr or 0
        dut.sfence_by_asid.value = int(asid is not None)
        dut.sfence_asid.value = asid or 0
        dut.sfence_valid.value = 1

    def sfence_now(self, vaddr=None, asid=None):
        """From a bus hook only: drive sfence.vma for the cycle of the transaction being
        answered, so that the walk in flight sees it. The memory task, which runs the
        hook, ends the pulse on its next falling edge."""
        self._drive_sfence(vaddr, asid)
        self._sfence_pending = True

    async def sfence(self, vaddr=None, asid=None):
        """sfence.vma for one cycle, between requests."""
        self._drive_sfence(vaddr, asid)
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
        self.bus_log = []
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
        value = int(self.dut.dbg_tlb_entries.value)
        return [unpack_tlb_entry(value >> (TLB_ENTRY_BITS * i)) for i in range(count)]


class BatchRtlMmu(RtlMmu):
    """:class:`RtlMmu` on the batch top (hdl/batch.py): requests go through the top's
    queue, so Python sleeps while a batch runs and wakes for walks' bus transactions and
    for the batch's end."""

    ZEROED_INPUTS = ("batch_start", "batch_wr_en", "sfence_valid", "wb_ack", "wb_err", "sum",
                     "mxr", "satp_mode", "satp_asid", "satp_ppn")
    SET_INPUTS = ()

    def write_requests(self, requests):
        """Put ``requests`` (sequences starting with vaddr, kind) into the queue from index
        0, a word of ``LANES`` requests per VPI write."""
        words = self.dut.u.batch_req
        for w in range(0, len(requests), LANES):
            value = 0
            shift = 0
            for r in requests[w:w + LANES]:
                value |= (r[0] | int(r[1]) << 64) << shift
                shift += REQ_BITS
            words[w // LANES].value = value

    async def run(self, first, end):
        """Run queued requests ``first`` to ``end - 1``, stopping after the first fault.
        Returns one int each: the paddr, or minus the cause of a fault (the last one)."""
        dut = self.dut
        self.bus_log = []
        dut.batch_first.value = first
        dut.batch_end.value = end
        dut.batch_start.value = 1
        await FallingEdge(dut.clk)
        dut.batch_start.value = 0
        if int(dut.batch_busy.value):
            await FallingEdge(dut.batch_busy)
            # That was a rising clock edge: get back to a falling one, where inputs are
            # set (everything here drives on falling edges).
            await FallingEdge(dut.clk)
        done = int(dut.batch_next.value)
        out = []
        words = dut.u.batch_resp
        lanes = []
        for w in range(first // LANES, (done + LANES - 1) // LANES):
            # 64-bit lanes: let the bytes machinery split the word.
            lanes += memoryview(int(words[w].value).to_bytes(LANES * 8, "little")) \
                .cast("Q").tolist()
        base = (first // LANES) * LANES
        out = lanes[first - base:done - base]
        if out and out[-1] >> 60 & 1:          # only the last one can be a fault
            out[-1] = -((out[-1] >> 56) & 0xF)
        return out

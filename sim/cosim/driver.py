"""cocotb driver of the RTL MMU (the flat ``mkclean_mmu`` top): clock, the Wishbone memory
the walker reads and writes, requests and responses, CSRs, sfence, debug port.

Everything happens on falling clock edges: outputs have settled by then, and inputs set
there are stable for the next rising edge, whatever the order cocotb wakes tasks in.
"""

import random
from array import array

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge
from cocotb.utils import get_sim_time

from ...hdl.batch import LANES, BatchOp, BatchResponse, Op
from ...hdl.mmu import COUNTERS
from ...hdl.pt_mirror import LINES_PER_FRAME, frame_entry
from ...hdl.pte import TlbEntry as TlbEntryLayout
from ..model.memory import Memory
from ..model.mmu import Response
from ..model.tlb import TlbEntry
from .runner import CLOCK_HALF_PERIOD_NS
from .vpi import WideArray

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
    r, w, x, u, a, d = (_TLB_FIELD_AT[name][0] for name in "rwxuad")
    entries = []
    for i in range(count):
        v = value >> (TLB_ENTRY_BITS * i)
        entries.append(TlbEntry(
            bool(v & 1), v >> asid & asid_m, bool(v >> g & 1), v >> level & level_m,
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
            self._answered(we, addr)

    def _answered(self, we, addr):
        """Called for every transaction this memory answers (a subclass keeps a copy of
        memory in step)."""

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
        return unpack_tlb_entries(int(self.dut.dbg_tlb_entries.value), count)


class BatchRtlMmu(RtlMmu):
    """:class:`RtlMmu` on the batch top (hdl/batch.py): operations go through the top's
    queue, so Python sleeps while a batch runs, and PTE reads of frames in the top's
    page-table mirror are answered inside it. Python wakes for the batch's end and for
    the walker's transactions the mirror leaves to it: A/D writes, reads of frames not
    mirrored yet, and all of them while the mirror is off.

    The mirror is on when the memory has no wait states (``latency`` 0) and no ``hook``
    needs to see transactions. Its bookkeeping is here: a frame the walker read from
    Python is mirrored before the next batch (:meth:`sync_mirror`); a line of a mirrored
    frame is rewritten at once when the walker writes it, and before the next batch when
    anybody else does (:meth:`touch`).
    """

    ZEROED_INPUTS = ("batch_token", "batch_wr_en", "sfence_valid", "wb_ack", "wb_err", "sum",
                     "mxr", "satp_mode", "satp_asid", "satp_ppn", "mirror_enable",
                     "mirror_frame_wr_en", "mirror_line_wr_en")
    SET_INPUTS = ()

    def __init__(self, dut, mem: Memory, latency=0, rng=None):
        super().__init__(dut, mem, latency=latency, rng=rng)
        self._requests = WideArray(dut.u.batch_req)
        self._responses = WideArray(dut.u.batch_resp)
        self._snapshot = WideArray(dut.batch_tlb_snapshot, indexed=False)
        self.depth = len(self._requests) * LANES
        # what batch_req holds: two 64-bit halves per operation
        self._lanes = array("Q", bytes(2 * 8 * self.depth))
        mirror = dut.u.pt_mirror
        self._frame_map, self._lines = mirror.frame_map, WideArray(mirror.lines)
        self.mirror_frames = len(self._frame_map)
        #: mirrored frame -> its slot
        self.mirror = {}
        self._slot_frame = [None] * (len(self._lines) // LINES_PER_FRAME)
        self._entry = frame_entry(len(self._slot_frame))
        self._next_slot = 0
        self._to_mirror = set()     # frames the walker read from Python
        self._stale = set()         # lines (paddr >> 6) of mirrored frames behind memory
        self._mirror_enable = 0
        self._token = 0

    async def reset(self):
        self.dut.batch_token.value = self._token = 0
        await super().reset()

    def attach(self, mem: Memory):
        """Use ``mem`` from now on (a new run in the same simulation): forget the mirror."""
        self.mem = mem
        self.hook = None
        for frame in self.mirror:
            self._frame_map[frame].value = 0
        self.mirror.clear()
        self._slot_frame = [None] * len(self._slot_frame)
        self._next_slot = 0
        self._to_mirror.clear()
        self._stale.clear()

    # -- the queue ---------------------------------------------------------------------

    def write_ops(self, start, low, high):
        """Put operations into the queue from index ``start``: their low 64 bits in
        ``low``, the rest in ``high`` (:func:`access_op` and :func:`fence_op` split by
        :func:`split`; a translation is ``vaddr``, ``kind``)."""
        lanes = self._lanes
        end = start + len(low)
        lanes[2 * start:2 * end:2] = array("Q", low)
        lanes[2 * start + 1:2 * end:2] = array("Q", high)
        first, last = start // LANES, (end + LANES - 1) // LANES
        self._requests.write_bytes(first, lanes[2 * LANES * first:2 * LANES * last].tobytes())

    async def run(self, first, end):
        """Run queued operations ``first`` to ``end - 1``, stopping after the first fault.
        Returns one int each: the paddr (0 for an sfence), or minus the cause of a fault
        (the last one)."""
        if first >= end:
            return []
        dut = self.dut
        self.bus_log = []
        enable = int(self.mirror_on)
        if enable != self._mirror_enable:
            dut.mirror_enable.value = self._mirror_enable = enable
        dut.batch_first.value = first
        dut.batch_end.value = end
        self._token ^= 1
        dut.batch_token.value = self._token
        # batch_busy sampled on falling edges (runner.clocked_wrapper): one wake-up, at the
        # end, on a falling edge, where everything here drives.
        await FallingEdge(dut.batch_busy_negedge)
        done = int(dut.batch_next.value)
        base = first // LANES
        raw = self._responses.read_bytes(base, (done + LANES - 1) // LANES)
        out = memoryview(raw).cast("Q")[first - base * LANES:done - base * LANES].tolist()
        if out and out[-1] >> _RESP_FAULT & 1:          # only the last one can be a fault
            out[-1] = -((out[-1] >> _RESP_CAUSE) & _RESP_CAUSE_MASK)
        return out

    def tlb_snapshot(self, count):
        """The TLB's entries as the last snapshot operation found them."""
        return unpack_tlb_entries(self._snapshot[0], count)

    # -- the page-table mirror ---------------------------------------------------------

    @property
    def mirror_on(self):
        """The mirror answers the walker: no wait states to model, no hook to run."""
        return self.latency == 0 and self.hook is None

    def _answered(self, we, addr):
        frame = addr >> 12
        if we:
            if frame in self.mirror:
                # The walker may read this line again in its next transaction.
                self._write_line(addr >> 6)
        elif self.mirror_on and frame < self.mirror_frames and frame not in self.mirror:
            self._to_mirror.add(frame)

    def touch(self, paddr, n):
        """Somebody other than the walker wrote ``n`` bytes at ``paddr``: rewrite what
        the mirror holds of them before the next batch."""
        mirror = self.mirror
        for frame in range(paddr >> 12, (paddr + n + 4095) >> 12):
            if frame in mirror:
                self._stale.update(range(max(paddr >> 6, frame << 6),
                                         min((paddr + n + 63) >> 6, (frame + 1) << 6)))

    def sync_mirror(self):
        """Between batches: mirror the frames the walker read from Python, and rewrite
        the stale lines."""
        for frame in self._to_mirror:
            self._mirror_frame(frame)
        self._to_mirror.clear()
        for line in self._stale:
            if line >> 6 in self.mirror:
                self._write_line(line)
        self._stale.clear()

    def _mirror_frame(self, frame):
        slot = self._next_slot
        self._next_slot = (slot + 1) % len(self._slot_frame)
        evicted = self._slot_frame[slot]
        if evicted is not None:
            self._frame_map[evicted].value = 0
            del self.mirror[evicted]
        self._slot_frame[slot] = frame
        self.mirror[frame] = slot
        for line in range(frame << 6, (frame + 1) << 6):
            self._write_line(line)
        self._frame_map[frame].value = self._entry.const({"valid": 1, "slot": slot}) \
            .as_value().value

    def _write_line(self, line):
        index = self.mirror[line >> 6] * LINES_PER_FRAME + (line & (LINES_PER_FRAME - 1))
        self._lines[index] = int.from_bytes(self.mem.data[line << 6:(line + 1) << 6], "little")


def _field(name):
    return BatchOp.as_shape()[name].offset


_KIND, _OP, _BY_VADDR, _BY_ASID, _ASID = (
    _field(name) for name in ("kind", "op", "by_vaddr", "by_asid", "asid"))
#: where a BatchResponse's fault flag and cause sit in its 64-bit lane
_RESP_FAULT = BatchResponse.as_shape()["fault"].offset
_RESP_CAUSE = BatchResponse.as_shape()["cause"].offset
_RESP_CAUSE_MASK = (1 << BatchResponse.as_shape()["cause"].width) - 1
#: The queue entry that copies the TLB's entries to ``batch_tlb_snapshot``.
SNAPSHOT_OP = Op.SNAPSHOT.value << _OP


def access_op(vaddr, kind):
    """A queue entry (hdl/batch.py BatchOp) that translates ``vaddr`` for ``kind``."""
    return vaddr | int(kind) << _KIND


def split(ops):
    """Queue entries (ints) as :meth:`BatchRtlMmu.write_ops` takes them."""
    return [op & (1 << 64) - 1 for op in ops], [op >> 64 for op in ops]


def fence_op(vaddr=None, asid=None):
    """A queue entry for sfence.vma: ``None`` is x0 (all addresses, all ASIDs)."""
    return ((vaddr or 0) | Op.SFENCE.value << _OP | (vaddr is not None) << _BY_VADDR |
            (asid is not None) << _BY_ASID | (asid or 0) << _ASID)

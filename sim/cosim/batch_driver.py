"""cocotb driver of the batch top (hdl/batch.py): the RTL MMU behind an operation queue,
with the page-table mirror (hdl/pt_mirror.py) that answers the walker inside the design.

What lives here: :class:`BatchRtlMmu` (the queue, a batch's run, the TLB snapshot, the
mirror's bookkeeping) and the queue entries' encoders (:func:`access_op`,
:func:`fence_op`, :data:`SNAPSHOT_OP`, :func:`split`). Queue entries, responses, TLB
entries and the mirror's map entries are encoded and decoded with the gateware's
``lib.data`` layouts (BatchOp, BatchResponse, TlbEntry, frame_entry): no field offset is
written out here.

Runs inside the simulator. Imports: cocotb, the gateware's layouts (hdl/), the seam's
kernel events, :mod:`.build`'s clock, :mod:`.mmu_driver`, :mod:`.vpi`.
"""

import os
from array import array

from cocotb.triggers import FallingEdge, Timer

from ...hdl.batch import LANES, BatchOp, BatchResponse, Op
from ...hdl.pt_mirror import LINE_BITS, LINES_PER_FRAME, frame_entry
from ..hw.seam import KernelEvent
from ..model.memory import Memory
from .build import CLOCK_HALF_PERIOD_NS
from .mmu_driver import RtlMmu, unpack_tlb_entries
from .vpi import WideArray


class BatchRtlMmu(RtlMmu):
    """:class:`RtlMmu` on the batch top (hdl/batch.py): operations go through the top's
    queue, so Python sleeps while a batch runs, and PTE reads of frames in the top's
    page-table mirror are answered inside it. Python wakes for the batch's end and for
    the walker's transactions the mirror leaves to it: A/D writes, reads of frames not
    mirrored yet, and all of them while the mirror is off.

    In a traced run it also shows the kernel's actions on the testbench's debug port
    (:meth:`show_kernel_events`).

    The mirror is on when the RAM has no wait states (``ram.latency`` 0) and no
    ``ram.hook`` needs to see transactions. Its bookkeeping is here: a frame the walker read from
    Python is mirrored before the next batch (:meth:`sync_mirror`); a line of a mirrored
    frame is rewritten at once when the walker writes it, and before the next batch when
    anybody else does (:meth:`touch`). The mirror's map, like the walker's bus, counts
    frames from memory's start (its offset), not from physical address 0: ``mirror`` is
    keyed by those, and :meth:`touch` and the messages take and give physical addresses.

    With ``check_mirror`` (default: the environment's MKCLEAN_CHECK_MIRROR=1; for tests
    and debugging) every batch the mirror answered in ends with
    :meth:`check_mirror_lines`: a missed rewrite (a ``touch`` that is not made or does
    nothing) is a :class:`MirrorMismatch` there, before a stale PTE can answer a walk
    silently. Off, it costs nothing.
    """

    ZEROED_INPUTS = ("batch_token", "batch_wr_en", "sfence_valid", "wb_ack", "wb_err", "sum",
                     "mxr", "satp_mode", "satp_asid", "satp_ppn", "mirror_enable",
                     "mirror_frame_wr_en", "mirror_line_wr_en")
    SET_INPUTS = ()

    def __init__(self, dut, mem: Memory, latency=0, rng=None, check_mirror=None):
        super().__init__(dut, mem, latency=latency, rng=rng)
        if check_mirror is None:
            check_mirror = os.environ.get("MKCLEAN_CHECK_MIRROR") == "1"
        self.check_mirror = check_mirror
        self._checked = {}          # (frame, slot) -> its memory at the last check
        self._written = set()       # lines written into the mirror since the last check
        self.ram.answered = self._answered
        self._requests = WideArray(dut.u.batch_req)
        self._responses = WideArray(dut.u.batch_resp)
        self._snapshot = WideArray(dut.batch_tlb_snapshot, indexed=False)
        self.depth = len(self._requests) * LANES
        # what batch_req holds: two 64-bit halves per operation
        self._lanes = array("Q", bytes(2 * 8 * self.depth))
        mirror = dut.u.pt_mirror
        self._frame_map, self._lines = mirror.frame_map, WideArray(mirror.lines)
        self.mirror_frames = len(self._frame_map)
        # An earlier driver in this simulation may have left frames mapped (a reset
        # clears no memory): this one starts from an empty mirror, as it believes.
        WideArray(self._frame_map).clear()
        #: mirrored frame (counted from memory's start: ``(paddr - base) >> 12``) -> its slot
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
        self.ram.mem = mem
        self.ram.hook = None
        for frame in self.mirror:
            self._frame_map[frame].value = 0
        self.mirror.clear()
        self._slot_frame = [None] * len(self._slot_frame)
        self._next_slot = 0
        self._to_mirror.clear()
        self._stale.clear()
        self._checked.clear()
        self._written.clear()

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
        self.ram.bus_log = []
        enable = int(self.mirror_on)
        if enable != self._mirror_enable:
            dut.mirror_enable.value = self._mirror_enable = enable
        dut.batch_first.value = first
        dut.batch_end.value = end
        self._token ^= 1
        dut.batch_token.value = self._token
        # batch_busy sampled on falling edges (build.clocked_wrapper): one wake-up, at the
        # end, on a falling edge, where everything here drives.
        await FallingEdge(dut.batch_busy_negedge)
        if enable and self.check_mirror:
            self.check_mirror_lines()
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

    # -- the kernel's debug port ---------------------------------------------------------

    async def show_kernel_events(self, events):
        """Write ``events`` ((KernelEvent, addr) in the order the kernel did them) to the
        testbench's ``kernel_event``/``kernel_addr``, one a picosecond from now (a falling
        edge), then NONE/0: in a trace, each is a pulse of 1 ps between two clock edges.

        All of it ends before the next rising edge, half a period away, so the MMU sees
        nothing and its cycles are those of an untraced run: past
        :data:`KERNEL_EVENTS_AT_ONCE` events, the rest are one MORE event with their
        count."""
        dut = self.dut
        event_port, addr_port = dut.kernel_event, dut.kernel_addr
        if len(events) > KERNEL_EVENTS_AT_ONCE:
            more = len(events) - KERNEL_EVENTS_AT_ONCE
            events = events[:KERNEL_EVENTS_AT_ONCE] + [(KernelEvent.MORE, more)]
        for event, addr in events:
            event_port.value = int(event)
            addr_port.value = addr & _ADDR_MASK
            await Timer(1, "ps")
        event_port.value = KernelEvent.NONE.value
        addr_port.value = 0

    # -- the page-table mirror ---------------------------------------------------------

    @property
    def mirror_on(self):
        """The mirror answers the walker: no wait states to model, no hook to run."""
        ram = self.ram
        return ram.latency == 0 and ram.hook is None

    def _answered(self, we, addr):
        """Called by the RAM for every transaction it answers (a physical address)."""
        addr -= self.ram.mem.base
        frame = addr >> 12
        if we:
            if frame in self.mirror:
                # The walker may read this line again in its next transaction.
                self._write_line(addr >> 6)
        elif self.mirror_on and frame < self.mirror_frames and frame not in self.mirror:
            self._to_mirror.add(frame)

    def touch(self, paddr, n):
        """Somebody other than the walker wrote ``n`` bytes at physical ``paddr``: rewrite
        what the mirror holds of them before the next batch."""
        paddr -= self.ram.mem.base
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

    def check_mirror_lines(self, full=False):
        """Every line of every mirrored frame equals the memory it copies; else
        :class:`MirrorMismatch` with the frame, the line and both values. True between a
        batch's end and the next write by anybody but the walker.

        The lines are read back through VPI; those of a frame checked before only where
        they can differ (``full`` reads them all): only the host writes the mirror's
        lines, so a line that nobody wrote into the mirror since the last check and
        whose memory did not change since then still holds what that check found equal.
        Which lines changed in memory is found by comparing memory with a copy taken at
        the last check, not from ``touch``, the bookkeeping this checks."""
        data, mem_base = self.ram.mem.data, self.ram.mem.base
        read = self._lines.read_bytes
        checked, written = {}, self._written
        written_frames = {line >> 6 for line in written}
        for frame, slot in self.mirror.items():
            want = bytes(data[frame << 12:(frame + 1) << 12])
            before = None if full else self._checked.get((frame, slot))
            checked[frame, slot] = want
            if before is None:
                lines = range(LINES_PER_FRAME)
            elif before == want and frame not in written_frames:
                continue
            else:
                lines = [i for i in range(LINES_PER_FRAME)
                         if (frame << 6) + i in written
                         or before[i << 6:(i + 1) << 6] != want[i << 6:(i + 1) << 6]]
            base = slot * LINES_PER_FRAME
            for i in lines:
                held = read(base + i, base + i + 1)
                if held != want[i << 6:(i + 1) << 6]:
                    got = int.from_bytes(held, "little")
                    mem = int.from_bytes(want[i << 6:(i + 1) << 6], "little")
                    raise MirrorMismatch(
                        f"page-table mirror: frame {(mem_base >> 12) + frame:#x} (slot "
                        f"{slot}) line {i} (paddr {mem_base + (frame << 12) + (i << 6):#x}) "
                        f"holds "
                        f"{got:#0130x}, memory holds {mem:#0130x}")
        self._checked = checked
        written.clear()

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
        if self.check_mirror:
            self._written.add(line)
        index = self.mirror[line >> 6] * LINES_PER_FRAME + (line & (LINES_PER_FRAME - 1))
        data = self.ram.mem.data
        self._lines[index] = int.from_bytes(data[line << 6:(line + 1) << 6], "little")


class MirrorMismatch(AssertionError):
    """A page-table mirror line differs from the memory it copies (see
    :meth:`BatchRtlMmu.check_mirror_lines`)."""


def _field(name):
    return BatchOp.as_shape()[name].offset


_VADDR, _KIND, _OP, _BY_VADDR, _BY_ASID, _ASID = (
    _field(name) for name in ("vaddr", "kind", "op", "by_vaddr", "by_asid", "asid"))
#: where a BatchResponse's fault flag and cause sit in its 64-bit lane
_RESP_FAULT = BatchResponse.as_shape()["fault"].offset
_RESP_CAUSE = BatchResponse.as_shape()["cause"].offset
_RESP_CAUSE_MASK = (1 << BatchResponse.as_shape()["cause"].width) - 1
# The fast paths rely on placements hdl/batch.py promises, checked here rather than
# assumed: a translation's vaddr and kind are its lane's two 64-bit halves, unshifted
# (rtl_backend writes them straight from the accesses); a translation that did not fault
# answers with its paddr alone (run() returns lanes as they are); a mirror line is 64
# bytes, 64 to a frame (touch() and the mirror's upkeep shift by 6).
if (_VADDR, _KIND, BatchResponse.as_shape()["paddr"].offset) != (0, 64, 0) \
        or LINE_BITS != 512 or LINES_PER_FRAME != 64:
    raise ImportError("hdl/batch.py's or hdl/pt_mirror.py's layout moved a field that "
                      "sim/cosim/batch_driver.py's fast paths rely on")
#: The queue entry that copies the TLB's entries to ``batch_tlb_snapshot``.
SNAPSHOT_OP = Op.SNAPSHOT.value << _OP
#: Kernel events written in one hand-over at most (then MORE): one a picosecond, and the
#: rising edge is 5000 ps after the falling edge they start at; the margin is the MORE
#: event, the NONE after it, and room to spare.
KERNEL_EVENTS_AT_ONCE = 4000
_ADDR_MASK = (1 << 64) - 1
if KERNEL_EVENTS_AT_ONCE + 2 >= CLOCK_HALF_PERIOD_NS * 1000:
    raise ImportError("the kernel's events would not fit between a falling and a rising edge")


def access_op(vaddr, kind):
    """A queue entry (hdl/batch.py BatchOp) that translates ``vaddr`` for ``kind``."""
    return vaddr << _VADDR | int(kind) << _KIND


def split(ops):
    """Queue entries (ints) as :meth:`BatchRtlMmu.write_ops` takes them."""
    return [op & (1 << 64) - 1 for op in ops], [op >> 64 for op in ops]


def fence_op(vaddr=None, asid=None):
    """A queue entry for sfence.vma: ``None`` is x0 (all addresses, all ASIDs)."""
    return ((vaddr or 0) | Op.SFENCE.value << _OP | (vaddr is not None) << _BY_VADDR |
            (asid is not None) << _BY_ASID | (asid or 0) << _ASID)

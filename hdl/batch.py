"""The MMU behind a batch queue, for co-simulation (and later the board's UART bridge).

A host that can only reach the design slowly (cocotb through VPI, a UART) writes a batch
of requests into ``batch_req``, starts it, and sleeps: the top streams the requests
through the MMU at one per cycle, writes each response into ``batch_resp``, and stops
after the first fault, so that the host wakes only for faults and completions.
"""

from amaranth.hdl import Cat, Const, Mux, Signal
from amaranth.lib import memory
from amaranth.lib.wiring import In, Out

from .top import _PORTS, MMUTop

#: A request: vaddr in bits 0..63, kind in 64..65.
REQ_BITS = 66
#: A response: paddr in bits 0..55, cause in 56..59, fault in 60 (in a 64-bit lane).
RESP_BITS = 64
#: Requests (and responses) per word of the queue memories: a host pays per word it
#: reads or writes (a VPI call), not per request.
LANES = 16
LANE_BITS = 4


class BatchTop(MMUTop):
    """:class:`~.top.MMUTop` with its request and response streams fed from memories.

    Parameters
    ----------
    batch_depth : int
        Requests a batch can hold.
    **params
        Those of :class:`~.mmu.MMU`.

    Members
    -------
    batch_start : In(1)
        Run requests ``batch_first`` to ``batch_end - 1``.
    batch_busy : Out(1)
        A batch is running; falls when it is over.
    batch_next : Out
        The index after the last response written: ``batch_end``, or the fault's + 1.
    batch_wr_en, batch_wr_addr, batch_wr_data : In
        A write port into ``batch_req`` for hosts without direct access to it.

    The memories ``batch_req`` and ``batch_resp`` are arrays of the top module, which a
    simulator host reads and writes directly (cocotb: ``dut.batch_req[i]``); word ``i``
    holds requests (responses) ``LANES * i`` to ``LANES * i + LANES - 1``, lane ``j`` at
    bits ``j * REQ_BITS`` (``j * RESP_BITS``).
    """

    PORTS = {name: port for name, port in _PORTS.items()
             if not name.startswith(("req_", "resp_"))}

    def __init__(self, *, batch_depth=1024, **params):
        if not isinstance(batch_depth, int) or batch_depth < LANES or batch_depth % LANES:
            raise ValueError(f"batch_depth must be a positive multiple of {LANES}, "
                             f"not {batch_depth!r}")
        self.batch_depth = batch_depth
        index = range(batch_depth + 1)
        super().__init__({
            "batch_start":   In(1),
            "batch_first":   In(index),
            "batch_end":     In(index),
            "batch_busy":    Out(1),
            "batch_next":    Out(index),
            "batch_wr_en":   In(1),
            "batch_wr_addr": In(range(batch_depth // LANES)),
            "batch_wr_data": In(REQ_BITS * LANES),
        }, **params)

    def elaborate(self, platform):
        m = super().elaborate(platform)
        mmu = self.mmu
        words = self.batch_depth // LANES
        m.submodules.batch_req = requests = memory.Memory(
            shape=REQ_BITS * LANES, depth=words, init=[])
        m.submodules.batch_resp = responses = memory.Memory(
            shape=RESP_BITS * LANES, depth=words, init=[])

        host_write = requests.write_port()
        m.d.comb += [host_write.en.eq(self.batch_wr_en), host_write.addr.eq(self.batch_wr_addr),
                     host_write.data.eq(self.batch_wr_data)]

        issue = Signal.like(self.batch_next)   # next request to hand the MMU
        end = Signal.like(self.batch_end)
        read = requests.read_port(domain="comb")
        request = read.data.word_select(issue[:LANE_BITS], REQ_BITS)
        m.d.comb += [
            read.addr.eq(issue[LANE_BITS:]),
            mmu.req.payload.vaddr.eq(request[:64]),
            mmu.req.payload.kind.eq(request[64:]),
            mmu.resp.ready.eq(1),
        ]
        # One request is in the MMU between its handshake and its response. The next one
        # goes in the cycle that response comes out, unless it is a fault: then the batch
        # ends there, before anything translates past the fault.
        in_flight = issue != self.batch_next
        may_issue = ~in_flight | (mmu.resp.valid & ~mmu.resp.payload.fault)
        m.d.comb += mmu.req.valid.eq(self.batch_busy & (issue < end) & may_issue)
        with m.If(mmu.req.valid & mmu.req.ready):
            m.d.sync += issue.eq(issue + 1)

        write = responses.write_port(granularity=RESP_BITS)
        resp = mmu.resp.payload
        lane = self.batch_next[:LANE_BITS]
        m.d.comb += [
            write.addr.eq(self.batch_next[LANE_BITS:]),
            write.data.eq(Cat(resp.paddr, resp.cause, resp.fault, Const(0, 3)).replicate(LANES)),
            write.en.eq(Mux(mmu.resp.valid, Const(1, LANES) << lane, 0)),
        ]
        with m.If(mmu.resp.valid):
            m.d.sync += self.batch_next.eq(self.batch_next + 1)
            with m.If(resp.fault | (self.batch_next + 1 == end)):
                m.d.sync += self.batch_busy.eq(0)

        with m.If(self.batch_start):
            m.d.sync += [self.batch_busy.eq(self.batch_first < self.batch_end),
                         issue.eq(self.batch_first), self.batch_next.eq(self.batch_first),
                         end.eq(self.batch_end)]
        return m

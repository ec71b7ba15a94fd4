"""The MMU behind a batch queue, for co-simulation (and later the board's UART bridge).

A host that can only reach the design slowly (cocotb through VPI, a UART) writes a batch
of operations into ``batch_req``, starts it, and sleeps: the top streams the translations
through the MMU at one per cycle, applies the sfence.vma operations between them in
order, writes each response into ``batch_resp``, and stops after the first fault, so that
the host wakes only for faults and completions. A snapshot operation keeps a copy of the
TLB's entries as they were at that point of the batch, for the host to check
afterwards. The walker's PTE reads of the frames the host has mirrored are answered inside
(:class:`~.pt_mirror.PageTableMirror`).

Here: the top (:class:`BatchTop`), its operations (:class:`Op`, :class:`BatchOp`) and
responses (:class:`BatchResponse`), and how they are packed in the queue memories
(:data:`REQUEST_WORD`, :data:`RESPONSE_WORD`).
"""

from types import SimpleNamespace

from amaranth.hdl import Array, Const, Module, Mux, Signal
from amaranth.lib import data, enum, memory, wiring
from amaranth.lib.wiring import In, Out

from .mmu import MMU
from .pt_mirror import PageTableMirror, check_slots
from .pte import ASID_BITS, PADDR_BITS, SFENCE_PORT, Cause, Csr, Kind, TlbEntry
from .top import PORTS, connect_flat, flat_members


class Op(enum.Enum, shape=2):
    """What a queue entry asks for."""
    TRANSLATE = 0   #: ``vaddr`` for ``kind``
    SFENCE = 1      #: sfence.vma with ``vaddr``, ``asid``, ``by_vaddr``, ``by_asid``
    SNAPSHOT = 2    #: copy the TLB's entries to ``batch_tlb_snapshot``


class BatchOp(data.Struct):
    """One entry of the request queue."""
    vaddr: 64
    kind: Kind
    op: Op
    by_vaddr: 1
    by_asid: 1
    asid: ASID_BITS


class BatchResponse(data.Struct):
    """One entry of the response queue: a translation's answer; all zero for an
    operation that is not a translation. (No tval: it is the request's vaddr.)"""
    paddr: PADDR_BITS
    cause: Cause
    fault: 1


#: Bits of a request lane: two 64-bit halves, which a host packs without shifting.
REQ_BITS = 128
#: A lane of the request queue: a :class:`BatchOp` in the low bits (vaddr in 0..63, kind
#: in 64..65, then the other fields).
REQUEST_LANE = data.FlexibleLayout(REQ_BITS, {"op": data.Field(BatchOp, 0)})
#: Bits of a response lane: a host reads the responses as an array of 64-bit integers.
RESP_BITS = 64
#: A lane of the response queue: a :class:`BatchResponse` in the low bits, zeros above.
RESPONSE_LANE = data.FlexibleLayout(RESP_BITS, {"response": data.Field(BatchResponse, 0)})
#: Operations (and responses) per word of the queue memories: a host pays per word it
#: reads or writes (a VPI call), not per operation.
LANES = 16
LANE_BITS = 4
#: A word of ``batch_req``: operation ``LANES * i + j`` is lane ``j`` of word ``i``.
REQUEST_WORD = data.ArrayLayout(REQUEST_LANE, LANES)
#: A word of ``batch_resp``, likewise.
RESPONSE_WORD = data.ArrayLayout(RESPONSE_LANE, LANES)
#: How much physical memory the page-table mirror's map covers at most: reads above go to
#: the host. (The map's size sets the Verilog's: Amaranth writes every word's initial
#: value. Kernels take page tables from low memory.)
MIRROR_SPAN = 256 << 20
#: The flat ports of :class:`~.top.MMUTop` that the batch top has too. Not ``req_*`` and
#: ``resp_*``: the queue drives those. Not ``dbg_tlb_entries``: a simulator would copy its
#: ~2k bits at every step; a snapshot operation reads the TLB instead.
SHARED_PORTS = tuple(name for name in PORTS
                     if not name.startswith(("req_", "resp_", "dbg_")))


class BatchTop(wiring.Component):
    """The MMU with its request and response streams fed from memories, and the
    page-table mirror between its walker and the ``wb_*`` ports.

    Parameters
    ----------
    batch_depth : int
        Operations a batch can hold.
    mirror_slots : int
        Page-table frames the mirror holds at once (a power of two).
    **params
        Those of :class:`~.mmu.MMU`.

    Its ports are :data:`SHARED_PORTS`, named and shaped as :class:`~.top.MMUTop`'s, and
    ``batch_*`` and ``mirror_*``. ``sfence_*`` reaches the MMU at once, also in the middle of a batch (it
    wins over a queued sfence in the same cycle); the CSRs through a register (see
    :meth:`elaborate`); ``wb_*`` is the mirror's host side.

    The memories ``batch_req`` and ``batch_resp`` are arrays of the top module, which a
    simulator host reads and writes directly (cocotb: ``dut.batch_req[i]``), words of
    :data:`REQUEST_WORD` and :data:`RESPONSE_WORD`. The mirror's ``frame_map`` and
    ``lines`` are arrays of its module, ``pt_mirror``.
    """

    def __init__(self, *, batch_depth=1024, mirror_slots=64, **params):
        if not isinstance(batch_depth, int) or batch_depth < LANES or batch_depth % LANES:
            raise ValueError(f"batch_depth must be a positive multiple of {LANES}, "
                             f"not {batch_depth!r}")
        check_slots(mirror_slots)
        self.batch_depth = batch_depth
        self.mmu = MMU(**params)
        self.mirror = PageTableMirror(
            frames=min(params["phys_size"], MIRROR_SPAN) >> 12, slots=mirror_slots)
        index = range(batch_depth + 1)
        super().__init__({
            **flat_members(self.mmu, SHARED_PORTS),
            #: A change starts a batch: operations ``batch_first`` to ``batch_end - 1``.
            #: A level, not a pulse: a host that writes it between clock edges cannot
            #: miss it.
            "batch_token":        In(1),
            #: The batch's first operation, sampled when ``batch_token`` changes.
            "batch_first":        In(index),
            #: The index after its last one, likewise.
            "batch_end":          In(index),
            #: A batch is running; falls when it is over.
            "batch_busy":         Out(1),
            #: The index after the last response written: ``batch_end``, or the fault's
            #: + 1.
            "batch_next":         Out(index),
            #: The TLB's entries when the last snapshot operation ran.
            "batch_tlb_snapshot": Out(data.ArrayLayout(TlbEntry, self.mmu.tlb.entries)),
            #: A write port into ``batch_req``, for hosts that cannot write the memory
            #: directly.
            "batch_wr_en":        In(1),
            #: The word written.
            "batch_wr_addr":      In(range(batch_depth // LANES)),
            #: What is written there.
            "batch_wr_data":      In(REQUEST_WORD),
            #: The mirror's ``enable`` and write ports, by the same names after
            #: ``mirror_`` (:class:`~.pt_mirror.PageTableMirror`).
            **{f"mirror_{name}": In(member.shape)
               for name, member in self.mirror.signature.members.items()
               if name.startswith(("enable", "frame_", "line_"))},
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mmu = mmu = self.mmu
        m.submodules.pt_mirror = mirror = self.mirror
        wiring.connect(m, mmu.bus, mirror.walker)
        # The CSRs reach the MMU through a register. A simulator re-evaluates all logic
        # that hangs off anything a host may write, at every step; the CSRs feed the TLB
        # lookup and the walker, and this register keeps those out of it. A host changes
        # CSRs between batches, and then waits for a clock edge before the next one.
        csr = Signal(Csr)
        m.d.sync += mmu.csr.eq(csr)
        # The host's sfences, into the queue's sfence mux below.
        host_sfence = SFENCE_PORT.flip().create(path=("host_sfence",))
        connect_flat(m, self, SimpleNamespace(csr=csr, sfence=host_sfence,
                                              bus=mirror.host, debug=mmu.debug),
                     SHARED_PORTS)
        for name in mirror.signature.members:
            if hasattr(self, f"mirror_{name}"):
                # enable is registered, as the CSRs are: set between batches, it steers
                # the walker's bus.
                domain = m.d.sync if name == "enable" else m.d.comb
                domain += getattr(mirror, name).eq(getattr(self, f"mirror_{name}"))

        words = self.batch_depth // LANES
        m.submodules.batch_req = requests = memory.Memory(
            shape=REQUEST_WORD, depth=words, init=[])
        m.submodules.batch_resp = responses = memory.Memory(
            shape=RESPONSE_WORD, depth=words, init=[])

        host_write = requests.write_port()
        m.d.comb += [host_write.en.eq(self.batch_wr_en), host_write.addr.eq(self.batch_wr_addr),
                     host_write.data.eq(self.batch_wr_data)]

        issue = Signal.like(self.batch_next)   # next operation to start
        end = Signal.like(self.batch_end)
        read = requests.read_port(domain="comb")
        # A case over the lanes, not a shift of the whole word by a variable amount: a
        # simulator evaluates this every cycle.
        lanes = Array(read.data[i].op.as_value() for i in range(LANES))
        op = BatchOp(lanes[issue[:LANE_BITS]])
        m.d.comb += [
            read.addr.eq(issue[LANE_BITS:]),
            mmu.req.payload.vaddr.eq(op.vaddr),
            mmu.req.payload.kind.eq(op.kind),
            mmu.resp.ready.eq(1),
        ]
        # One request is in the MMU between its handshake and its response. The next one
        # goes in the cycle that response comes out, unless it is a fault: then the batch
        # ends there, before anything translates past the fault. Any other operation
        # waits until nothing is in the MMU, and takes one cycle.
        in_flight = issue != self.batch_next
        pending = self.batch_busy & (issue < end)
        translate = op.op == Op.TRANSLATE
        may_issue = ~in_flight | (mmu.resp.valid & ~mmu.resp.payload.fault)
        other = pending & ~translate & ~in_flight
        m.d.comb += mmu.req.valid.eq(pending & translate & may_issue)
        with m.If((mmu.req.valid & mmu.req.ready) | other):
            m.d.sync += issue.eq(issue + 1)

        fence = other & (op.op == Op.SFENCE)
        m.d.comb += mmu.sfence.valid.eq(host_sfence.valid | fence)
        with m.If(host_sfence.valid):
            m.d.comb += mmu.sfence.payload.eq(host_sfence.payload)
        with m.Else():
            m.d.comb += [mmu.sfence.payload.vaddr.eq(op.vaddr),
                         mmu.sfence.payload.asid.eq(op.asid),
                         mmu.sfence.payload.by_vaddr.eq(op.by_vaddr),
                         mmu.sfence.payload.by_asid.eq(op.by_asid)]
        with m.If(other & (op.op == Op.SNAPSHOT)):
            m.d.sync += self.batch_tlb_snapshot.eq(mmu.debug.tlb_entries)

        # Every lane gets the answer; the write enable picks the one it belongs to.
        write = responses.write_port(granularity=1)
        resp = mmu.resp.payload
        lane = self.batch_next[:LANE_BITS]
        answer = Signal(BatchResponse)
        with m.If(~other):
            m.d.comb += [answer.paddr.eq(resp.paddr), answer.cause.eq(resp.cause),
                         answer.fault.eq(resp.fault)]
        done = mmu.resp.valid | other
        m.d.comb += [
            write.addr.eq(self.batch_next[LANE_BITS:]),
            *(write.data[i].response.eq(answer) for i in range(LANES)),
            write.en.eq(Mux(done, Const(1, LANES) << lane, 0)),
        ]
        with m.If(done):
            m.d.sync += self.batch_next.eq(self.batch_next + 1)
            with m.If((mmu.resp.valid & resp.fault) | (self.batch_next + 1 == end)):
                m.d.sync += self.batch_busy.eq(0)

        token = Signal()            # the batch_token of the last batch started
        with m.If(self.batch_token != token):
            m.d.sync += [token.eq(self.batch_token),
                         self.batch_busy.eq(self.batch_first < self.batch_end),
                         issue.eq(self.batch_first), self.batch_next.eq(self.batch_first),
                         end.eq(self.batch_end)]
        return m

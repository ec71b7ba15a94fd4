"""The machine side of docs/bridge-protocol.md (:class:`Bridge`): frames in from a byte
stream, the ten commands run against the MMU and its physical memory, responses out.

Three machines share the bridge, each with a memory:

- the receiver writes every byte that arrives into a ring (:data:`RING_BYTES`) and parses
  frames out of it. Because the bytes stay in the ring, a dropped frame (LEN above
  :data:`MAX_BODY`, a bad CRC, an inter-byte timeout) is parsed again from the byte after
  its first SYNC byte, as the protocol asks, and the body of a good frame is read from
  the ring by the executor: nothing runs before the CRC checked.
- the executor runs one good frame: answers a repeated SEQ from the kept response, or
  runs the command, writing the response body into the response memory
  (:data:`MAX_BODY` bytes). That memory is the kept response: it is sent again as it is.
- the transmitter frames the response memory (SYNC, LEN, SEQ, CMD, BODY, CRC) onto the
  byte stream; the receiver meanwhile takes the next request.

The executor is the MMU's only requester and has at most one request in it, which it
waits for before it touches memory: whenever it runs a READ, WRITE or CAS, or performs an
ACCESS item's load or store, the MMU is idle, so the bridge never lands inside the
walker's locked A/D sequence, and a plain mux in front of the memory is enough.

Every structured value of the protocol is a :mod:`amaranth.lib.data` layout below: the
fields are packed from bit 0 in wire order, so a layout's bits, least significant byte
first, are the bytes on the wire.
"""

import types

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from . import wishbone
from .bridge_codes import (CMD_CODES, FEATURES, MAX_BODY, PAGE_SIZE, PROTOCOL_VERSION,
                           RESPONSE, STATUS_CODES, SYNC)
from .mmu import COUNTERS, DebugSignature
from .pte import PPN_BITS, SFENCE_PORT, Csr, Kind, PhysMemory, Request, Response, TlbEntry
from .ptw import BUS_ADDR_BITS

# The protocol's own numbers (SYNC, MAX_BODY, RESPONSE, PROTOCOL_VERSION, FEATURES,
# PAGE_SIZE) are .bridge_codes', the table the host reads too; those below are the bridge's.

#: The receive ring: a whole frame of the largest size, and as much again for bytes that
#: arrive while a command runs.
RING_BYTES = 2 * MAX_BODY
#: Bytes of SYNC, LEN, SEQ and CMD before a frame's body.
HEAD_BYTES = 6
#: One ACCESS item, without its data.
ITEM_BYTES = 11
#: Items an ACCESS may hold: as many as fit in a request body.
MAX_BATCH = (MAX_BODY - 2) // ITEM_BYTES
#: Words READ returns, and WRITE takes, at most: what fits in a body.
MAX_WORDS = (MAX_BODY - 8) // 8
#: Bytes one ACCESS item moves at most: a page.
MAX_ITEM = PAGE_SIZE


def _codes(name: str, table, doc: str) -> type:
    """An 8-bit Amaranth enum of ``table``'s (name, code) pairs."""
    def body(namespace):
        namespace["__module__"], namespace["__qualname__"] = __name__, name
        namespace["__doc__"] = doc
        for member, code in table:
            namespace[member] = code    # through the enum's namespace: a member, as in a body
    return types.new_class(name, (enum.Enum,), {"shape": 8}, body)


Cmd = _codes("Cmd", CMD_CODES, "A request's CMD; the response's is the same with RESPONSE "
             "(bit 7) set.")
Status = _codes("Status", STATUS_CODES, "The first byte of a response body.")


class FrameHeader(data.Struct):
    """What follows SYNC: the CRC covers these and the body."""
    len: 16
    seq: 8
    cmd: 8


class ReadArgs(data.Struct):
    addr: 64
    words: 16


class WriteArgs(data.Struct):
    """Followed by the words."""
    addr: 64


class CasArgs(data.Struct):
    addr: 64
    expected: 64
    new: 64


class CsrArgs(data.Struct):
    mode: 8
    asid: 16
    ppn: 64
    priv: 8
    sum: 8
    mxr: 8
    adue: 8


class SfenceArgs(data.Struct):
    flags: 8      #: bit 0: by vaddr, bit 1: by ASID
    vaddr: 64
    asid: 16


class AccessArgs(data.Struct):
    """Followed by ``count`` items."""
    count: 16


class AccessItem(data.Struct):
    """Followed, for a store or an AMO, by ``size`` data bytes."""
    vaddr: 64
    kind: 8
    size: 16


class VersionResults(data.Struct):
    version: 8
    phys_base: 64
    phys_size: 64
    tlb_entries: 8
    max_batch: 16
    features: 8


class Trap(data.Struct):
    """The results' tail when an ACCESS stops at a trap."""
    cause: 8
    tval: 64


def _bytes(layout):
    return (data.Layout.cast(layout).size + 7) // 8


#: Bytes of one TLB entry in the TLB command's results.
TLB_ENTRY_BYTES = _bytes(TlbEntry)
#: The widest argument list a command loads before it acts (CAS).
ARGS_BYTES = max(_bytes(layout) for layout in
                 (ReadArgs, WriteArgs, CasArgs, CsrArgs, SfenceArgs, AccessArgs, AccessItem))
#: The widest result written in one go (VERSION's).
OUT_BYTES = max(_bytes(VersionResults), TLB_ENTRY_BYTES, _bytes(Trap), 8)


def _crc16_xmodem_step(crc, byte):
    value = crc ^ (byte << 8)
    for _ in range(8):
        value = ((value << 1) ^ 0x1021 if value & 0x8000 else value << 1) & 0xFFFF
    return value


def _crc_taps():
    """For each bit of the next CRC, the input bits (CRC bits 0-15, then byte bits 16-23)
    it is the XOR of: the CRC step is linear over GF(2)."""
    taps = []
    for out in range(16):
        taps.append([i for i in range(24)
                     if (_crc16_xmodem_step(1 << i if i < 16 else 0,
                                            1 << (i - 16) if i >= 16 else 0) >> out) & 1])
    return taps


_CRC_TAPS = _crc_taps()


def crc16_xmodem(crc, byte):
    """CRC-16/XMODEM (poly 0x1021, init 0) of ``crc`` extended by ``byte``, as one XOR
    per bit. (Eight unrolled shift-and-Mux steps reuse each step's value twice and
    double in size at each step once elaborated.)"""
    bits = Cat(crc, byte)
    return Cat(*(Cat(*(bits[i] for i in taps)).xor() for taps in _CRC_TAPS))


class ReceiveState(enum.Enum, shape=3):
    """Where the receiver is in a frame."""
    HUNT = 0       #: looking for SYNC's first byte
    SYNC = 1       #: SYNC's second byte
    HEADER = 2     #: LEN, SEQ, CMD
    BODY = 3
    CRC = 4
    READY = 5      #: a good frame, until the executor is done with it
    RESUME = 6     #: one cycle for the ring's read port to come back to the receiver


class ExecState(enum.Enum, shape=6):
    """The executor's states. LOAD (arguments from the ring), EMIT (results into the
    response memory) and BUS (one memory transaction) are subroutines: they go on to the
    state in ``ret``."""
    IDLE = 0
    DISPATCH = 1
    FINISH = 2
    REPLY = 3
    LOAD_ADDR = 4
    LOAD_DATA = 5
    EMIT = 6
    BUS = 7
    READ_CHECK = 8
    READ_WORD = 9
    READ_EMIT = 10
    READ_NEXT = 11
    WRITE_CHECK = 12
    WRITE_LOAD = 13
    WRITE_STORE = 14
    WRITE_NEXT = 15
    CAS_CHECK = 16
    CAS_COMPARE = 17
    CAS_EMIT = 18
    CSR_CHECK = 19
    SFENCE_CHECK = 20
    COUNTERS_NEXT = 21
    COUNTERS_STEP = 22
    TLB_NEXT = 23
    TLB_STEP = 24
    ACC_COUNT = 25
    ACC_CHECK_ITEM = 26
    ACC_CHECK = 27
    ACC_CHECK_END = 28
    ACC_ITEM = 29
    ACC_TRANSLATE = 30
    ACC_WAIT = 31
    ACC_BYTE = 32
    ACC_MOVE = 33
    ACC_BYTE_NEXT = 34
    ACC_DONE_LO = 35
    ACC_DONE_HI = 36


class SendState(enum.Enum, shape=2):
    IDLE = 0
    HEAD = 1       #: SYNC, LEN, SEQ, CMD; then the CRC's two bytes
    BODY_ADDR = 2  #: the response memory's read port takes the address
    BODY = 3


class BridgeStatus(data.Struct):
    """What the board's LEDs show, cycle by cycle."""
    receiving: 1  #: a frame has begun (SYNC seen) and is not yet taken or dropped
    bad_frame: 1  #: one cycle per frame dropped after its SYNC
    fault: 1      #: one cycle per ACCESS item that trapped


class Bridge(wiring.Component):
    """The protocol's machine side, between a byte stream pair and the MMU's ports.

    Parameters
    ----------
    phys_size : int
        Bytes of the memory behind ``bus`` (VERSION's ``phys_size``).
    phys_base : int
        Its first physical address (VERSION's ``phys_base``): READ, WRITE and CAS refuse
        addresses outside ``[phys_base, phys_base + phys_size)``, and ``bus`` carries the
        offset within memory, as the MMU's does.
    tlb_entries : int
        The MMU's TLB size (at most 128: TLB's count is a byte).
    frame_timeout : int
        Clock cycles without a byte after which a frame begun is dropped.
    ring_bytes : int
        The receive ring's size, a power of two. Test-only below :data:`RING_BYTES`
        (a ring wraps sooner): a frame longer than the ring is never taken.
    """

    def __init__(self, *, phys_size, phys_base=0, tlb_entries=16, frame_timeout,
                 ring_bytes=RING_BYTES):
        try:
            self.phys = PhysMemory(phys_size, phys_base)
            if not isinstance(tlb_entries, int) or not 1 <= tlb_entries <= 128:
                raise ValueError(f"tlb_entries must be 1 to 128 for the TLB command's byte "
                                 f"count, not {tlb_entries!r}")
            if not isinstance(frame_timeout, int) or frame_timeout < 1:
                raise ValueError(f"frame_timeout must be a positive number of cycles, "
                                 f"not {frame_timeout!r}")
            if (not isinstance(ring_bytes, int) or ring_bytes < 16 or
                    ring_bytes & (ring_bytes - 1)):
                raise ValueError(f"ring_bytes must be a power of two of at least 16, "
                                 f"not {ring_bytes!r}")
        except ValueError:
            self._MustUse__silence = True
            raise
        self.phys_size = phys_size
        self.phys_base = phys_base
        self.tlb_entries = tlb_entries
        self.frame_timeout = frame_timeout
        self.ring_bytes = ring_bytes
        super().__init__({
            #: Request bytes, from the UART receiver. Always ready: a byte that finds the
            #: ring full is lost (it cannot be: the host waits for each response).
            "rx":        In(stream.Signature(8)),
            #: Response bytes, to the UART transmitter.
            "tx":        Out(stream.Signature(8)),
            #: ACCESS's translations, one at a time.
            "mmu_req":   Out(stream.Signature(Request)),
            #: Their answers.
            "mmu_resp":  In(stream.Signature(Response)),
            #: The translation state CSR set; zero (Bare, priv U) after a reset.
            "csr":       Out(Csr),
            #: SFENCE's sfence.vma, one cycle.
            "sfence":    Out(SFENCE_PORT),
            #: One cycle on RESET: resets the MMU (TLB, walk cache, counters).
            "mmu_reset": Out(1),
            #: The MMU's counters and TLB, for COUNTERS and TLB.
            "debug":     In(DebugSignature(tlb_entries)),
            #: The physical memory, 64-bit words; used only while the MMU is idle.
            "bus":       Out(wishbone.Signature(addr_width=BUS_ADDR_BITS)),
            #: For the LEDs.
            "status":    Out(BridgeStatus),
        })

    def elaborate(self, platform):
        m = Module()
        ring_bits = self.ring_bytes.bit_length() - 1
        m.submodules.ring = ring = memory.Memory(shape=8, depth=self.ring_bytes, init=[])
        m.submodules.response = response = memory.Memory(shape=8, depth=MAX_BODY, init=[])
        ring_w = ring.write_port()
        ring_r = ring.read_port(transparent_for=(ring_w,))
        resp_w = response.write_port()
        resp_r = response.read_port()

        # ---- The receiver -------------------------------------------------------------
        # Pointers one bit wider than the ring's address, so that full and empty differ.
        wp = Signal(ring_bits + 1)        # where the next byte that arrives goes
        rp = Signal(ring_bits + 1)        # the next byte the parser looks at
        start = Signal(ring_bits + 1)     # the current frame's first SYNC byte
        rstate = Signal(ReceiveState)
        header = Signal(FrameHeader)
        head_index = Signal(range(4))
        body_left = Signal(range(MAX_BODY + 1))
        crc = Signal(16)
        crc_lo = Signal(8)
        quiet = Signal(range(self.frame_timeout + 1))   # cycles since a byte arrived
        release = Signal()                # the executor is done with the READY frame

        oldest = Mux(rstate == ReceiveState.HUNT, rp, start)
        full = (wp - oldest)[ring_bits]
        m.d.comb += [self.rx.ready.eq(1), ring_w.addr.eq(wp[:ring_bits]),
                     ring_w.data.eq(self.rx.payload), ring_w.en.eq(self.rx.valid & ~full)]
        with m.If(self.rx.valid):
            m.d.sync += quiet.eq(0)
            with m.If(~full):
                m.d.sync += wp.eq(wp + 1)
        with m.Elif(quiet != self.frame_timeout):
            m.d.sync += quiet.eq(quiet + 1)

        byte = ring_r.data
        have = rp != wp
        consume = Signal()
        drop = Signal()
        rp_next = Mux(drop, start + 1, rp + consume)
        m.d.sync += rp.eq(rp_next)
        with m.If(drop):
            m.d.sync += rstate.eq(ReceiveState.HUNT)
        crc_next = crc16_xmodem(crc, byte)
        in_frame = ((rstate != ReceiveState.HUNT) & (rstate != ReceiveState.READY) &
                    (rstate != ReceiveState.RESUME))
        m.d.comb += [self.status.receiving.eq(in_frame),
                     self.status.bad_frame.eq(drop)]
        with m.If(in_frame & ~have & (quiet == self.frame_timeout)):
            # Bytes stopped coming in the middle of a frame.
            m.d.comb += drop.eq(1)

        with m.Switch(rstate):
            with m.Case(ReceiveState.HUNT):
                with m.If(have):
                    m.d.comb += consume.eq(1)
                    with m.If(byte == SYNC[0]):
                        m.d.sync += [start.eq(rp), rstate.eq(ReceiveState.SYNC)]
            with m.Case(ReceiveState.SYNC):
                with m.If(have):
                    with m.If(byte == SYNC[1]):
                        m.d.comb += consume.eq(1)
                        m.d.sync += [crc.eq(0), head_index.eq(0),
                                     rstate.eq(ReceiveState.HEADER)]
                    with m.Else():
                        # Not a frame: this byte may begin one. (start + 1 is rp.)
                        m.d.sync += rstate.eq(ReceiveState.HUNT)
            with m.Case(ReceiveState.HEADER):
                with m.If(have):
                    m.d.comb += consume.eq(1)
                    m.d.sync += [crc.eq(crc_next), head_index.eq(head_index + 1),
                                 header.as_value().word_select(head_index, 8).eq(byte)]
                    with m.If(head_index == 3):
                        with m.If(header.len > MAX_BODY):
                            m.d.comb += drop.eq(1)
                        with m.Elif(header.len == 0):
                            m.d.sync += [rstate.eq(ReceiveState.CRC), head_index.eq(0)]
                        with m.Else():
                            m.d.sync += [rstate.eq(ReceiveState.BODY),
                                         body_left.eq(header.len)]
            with m.Case(ReceiveState.BODY):
                with m.If(have):
                    m.d.comb += consume.eq(1)
                    m.d.sync += [crc.eq(crc_next), body_left.eq(body_left - 1)]
                    with m.If(body_left == 1):
                        m.d.sync += [rstate.eq(ReceiveState.CRC), head_index.eq(0)]
            with m.Case(ReceiveState.CRC):
                with m.If(have):
                    m.d.comb += consume.eq(1)
                    m.d.sync += [crc_lo.eq(byte), head_index.eq(1)]
                    with m.If(head_index == 1):
                        with m.If(Cat(crc_lo, byte) == crc):
                            m.d.sync += rstate.eq(ReceiveState.READY)
                        with m.Else():
                            m.d.comb += drop.eq(1)
            with m.Case(ReceiveState.READY):
                with m.If(release):
                    m.d.sync += rstate.eq(ReceiveState.RESUME)
            with m.Case(ReceiveState.RESUME):
                m.d.sync += rstate.eq(ReceiveState.HUNT)

        # ---- The executor -------------------------------------------------------------
        state = Signal(ExecState)
        ret = Signal(ExecState)
        status = Signal(Status)
        rd = Signal(ring_bits)            # the next request byte the executor reads
        args = Signal(ARGS_BYTES * 8)
        load_index = Signal(range(ARGS_BYTES + 1))
        load_len = Signal(range(ARGS_BYTES + 1))
        left = Signal(range(MAX_BODY + 1))          # request body bytes not yet read
        out = Signal(OUT_BYTES * 8)
        out_left = Signal(range(OUT_BYTES + 1))
        resp_ptr = Signal(range(MAX_BODY + 1))
        word = Signal(64)                 # the memory word read, or to be written
        sel = Signal(8)
        bus_adr = Signal(BUS_ADDR_BITS)
        bus_we = Signal()
        count = Signal(16)                # words of READ and WRITE, items of ACCESS
        index = Signal(16)
        found = Signal(64)
        # The kept response: its body is the response memory.
        kept_valid = Signal()
        kept = Signal(FrameHeader)        # its LEN, SEQ and CMD
        send = Signal()                   # the transmitter starts on the kept response
        csr = Signal(Csr)
        cycles = Signal(64)
        m.d.sync += cycles.eq(cycles + 1)
        m.d.comb += self.csr.eq(csr)

        m.d.comb += ring_r.addr.eq(Mux(rstate == ReceiveState.READY, rd,
                                       rp_next[:ring_bits]))
        m.d.comb += [resp_w.addr.eq(resp_ptr), resp_w.data.eq(out[:8])]

        def load(n, then):
            m.d.sync += [load_index.eq(0), load_len.eq(n), ret.eq(then),
                         state.eq(ExecState.LOAD_ADDR)]

        def emit(value, n, then):
            m.d.sync += [out.eq(value), out_left.eq(n), ret.eq(then),
                         state.eq(ExecState.EMIT)]

        def bus(we, then):
            m.d.sync += [bus_we.eq(we), ret.eq(then), state.eq(ExecState.BUS)]

        def next_word(again):
            """A READ's or WRITE's word is done: the next, at ``again``, or the end."""
            m.d.sync += [bus_adr.eq(bus_adr + 1), count.eq(count - 1)]
            with m.If(count == 1):
                finish(Status.OK)
            with m.Else():
                m.d.sync += state.eq(again)

        def finish(code):
            m.d.sync += [status.eq(code), state.eq(ExecState.FINISH)]

        def view(layout):
            return layout(args[:data.Layout.cast(layout).size])

        length = header.len
        phys = self.phys

        def in_memory(addr, nbytes):
            """8-byte aligned, and ``nbytes`` from it inside memory (no wrap: the offset
            is added to, after ``addr`` is found inside)."""
            return ((addr[:3] == 0) & ~phys.outside(addr) &
                    (phys.offset(addr) + nbytes <= phys.size))

        tx_idle = Signal()
        with m.Switch(state):
            with m.Case(ExecState.IDLE):
                with m.If((rstate == ReceiveState.READY) & tx_idle):
                    m.d.sync += [rd.eq(start + HEAD_BYTES), left.eq(length),
                                 resp_ptr.eq(1), status.eq(Status.OK)]
                    # Whatever the command: a RESET under the kept SEQ gets the kept
                    # response too, and its host sends it again under the next SEQ.
                    repeated = kept_valid & (header.seq == kept.seq)
                    with m.If(repeated):
                        m.d.sync += state.eq(ExecState.REPLY)
                    with m.Else():
                        m.d.sync += state.eq(ExecState.DISPATCH)

            with m.Case(ExecState.DISPATCH):
                def fixed(n, then):
                    """A command of ``n`` argument bytes exactly: load them, then go on."""
                    with m.If(length != n):
                        finish(Status.BAD_ARG)
                    with m.Else():
                        if n == 0:
                            m.d.sync += state.eq(then)
                        else:
                            load(n, then)

                with m.Switch(header.cmd):
                    with m.Case(Cmd.VERSION):
                        with m.If(length != 0):
                            finish(Status.BAD_ARG)
                        with m.Else():
                            emit(VersionResults.const({
                                "version": PROTOCOL_VERSION, "phys_base": phys.base,
                                "phys_size": phys.size, "tlb_entries": self.tlb_entries,
                                "max_batch": MAX_BATCH, "features": FEATURES,
                            }).as_value(), _bytes(VersionResults), ExecState.FINISH)
                    with m.Case(Cmd.RESET):
                        with m.If(length != 0):
                            finish(Status.BAD_ARG)
                        with m.Else():
                            m.d.comb += self.mmu_reset.eq(1)
                            m.d.sync += [csr.eq(0), cycles.eq(0)]
                            finish(Status.OK)
                    with m.Case(Cmd.READ):
                        fixed(_bytes(ReadArgs), ExecState.READ_CHECK)
                    with m.Case(Cmd.WRITE):
                        with m.If((length < 16) | (length[:3] != 0)):
                            finish(Status.BAD_ARG)
                        with m.Else():
                            load(_bytes(WriteArgs), ExecState.WRITE_CHECK)
                    with m.Case(Cmd.CAS):
                        fixed(_bytes(CasArgs), ExecState.CAS_CHECK)
                    with m.Case(Cmd.CSR):
                        fixed(_bytes(CsrArgs), ExecState.CSR_CHECK)
                    with m.Case(Cmd.SFENCE):
                        fixed(_bytes(SfenceArgs), ExecState.SFENCE_CHECK)
                    with m.Case(Cmd.ACCESS):
                        with m.If(length < _bytes(AccessArgs)):
                            finish(Status.BAD_ARG)
                        with m.Else():
                            load(_bytes(AccessArgs), ExecState.ACC_COUNT)
                    with m.Case(Cmd.COUNTERS):
                        m.d.sync += index.eq(0)
                        fixed(0, ExecState.COUNTERS_NEXT)
                    with m.Case(Cmd.TLB):
                        with m.If(length != 0):
                            finish(Status.BAD_ARG)
                        with m.Else():
                            m.d.sync += index.eq(0)
                            emit(self.tlb_entries, 1, ExecState.TLB_NEXT)
                    with m.Default():
                        finish(Status.BAD_CMD)

            # -- subroutines
            with m.Case(ExecState.LOAD_ADDR):
                # The ring's read port takes rd now; its byte is there next cycle.
                m.d.sync += state.eq(ExecState.LOAD_DATA)
            with m.Case(ExecState.LOAD_DATA):
                m.d.sync += [args.word_select(load_index, 8).eq(ring_r.data),
                             rd.eq(rd + 1), left.eq(left - 1),
                             load_index.eq(load_index + 1)]
                with m.If(load_index + 1 == load_len):
                    m.d.sync += state.eq(ret)
                with m.Else():
                    m.d.sync += state.eq(ExecState.LOAD_ADDR)
            with m.Case(ExecState.EMIT):
                m.d.comb += resp_w.en.eq(1)
                m.d.sync += [out.eq(out >> 8), out_left.eq(out_left - 1),
                             resp_ptr.eq(resp_ptr + 1)]
                with m.If(out_left == 1):
                    m.d.sync += state.eq(ret)
            with m.Case(ExecState.BUS):
                m.d.comb += [self.bus.cyc.eq(1), self.bus.stb.eq(1),
                             self.bus.we.eq(bus_we), self.bus.adr.eq(bus_adr),
                             self.bus.dat_w.eq(word), self.bus.sel.eq(Mux(bus_we, sel, 0xff))]
                # A bus error cannot happen on the board's block RAM: taken as done.
                with m.If(self.bus.ack | self.bus.err):
                    with m.If(~bus_we):
                        m.d.sync += word.eq(self.bus.dat_r)
                    m.d.sync += state.eq(ret)

            # -- the end of every command
            with m.Case(ExecState.FINISH):
                m.d.comb += [resp_w.addr.eq(0), resp_w.data.eq(status), resp_w.en.eq(1)]
                # RESET's response is sent but not kept: after a RESET, no SEQ is a
                # repeat.
                m.d.sync += [kept_valid.eq(header.cmd != Cmd.RESET), kept.seq.eq(header.seq),
                             kept.cmd.eq(header.cmd | RESPONSE),
                             kept.len.eq(Mux(status == Status.OK, resp_ptr, 1)),
                             state.eq(ExecState.REPLY)]
            with m.Case(ExecState.REPLY):
                m.d.comb += [send.eq(1), release.eq(1)]
                m.d.sync += state.eq(ExecState.IDLE)

            # -- READ
            with m.Case(ExecState.READ_CHECK):
                a = view(ReadArgs)
                with m.If((a.words == 0) | (a.words > MAX_WORDS) |
                          ~in_memory(a.addr, a.words * 8)):
                    finish(Status.BAD_ARG)
                with m.Else():
                    m.d.sync += [bus_adr.eq(phys.offset(a.addr)[3:]), count.eq(a.words)]
                    m.d.sync += state.eq(ExecState.READ_WORD)
            with m.Case(ExecState.READ_WORD):
                bus(0, ExecState.READ_EMIT)
            with m.Case(ExecState.READ_EMIT):
                emit(word, 8, ExecState.READ_NEXT)
            with m.Case(ExecState.READ_NEXT):
                next_word(ExecState.READ_WORD)

            # -- WRITE
            with m.Case(ExecState.WRITE_CHECK):
                a = view(WriteArgs)
                words = left[3:]
                with m.If(~in_memory(a.addr, words * 8)):
                    finish(Status.BAD_ARG)
                with m.Else():
                    m.d.sync += [bus_adr.eq(phys.offset(a.addr)[3:]), count.eq(words),
                                 sel.eq(0xff)]
                    load(8, ExecState.WRITE_STORE)
            with m.Case(ExecState.WRITE_LOAD):
                load(8, ExecState.WRITE_STORE)
            with m.Case(ExecState.WRITE_STORE):
                m.d.sync += word.eq(args[:64])
                bus(1, ExecState.WRITE_NEXT)
            with m.Case(ExecState.WRITE_NEXT):
                next_word(ExecState.WRITE_LOAD)

            # -- CAS: the MMU is idle (see the module's docstring), so the read and the
            # write are one indivisible step for everything that reaches memory.
            with m.Case(ExecState.CAS_CHECK):
                a = view(CasArgs)
                with m.If(~in_memory(a.addr, 8)):
                    finish(Status.BAD_ARG)
                with m.Else():
                    m.d.sync += bus_adr.eq(phys.offset(a.addr)[3:])
                    bus(0, ExecState.CAS_COMPARE)
            with m.Case(ExecState.CAS_COMPARE):
                a = view(CasArgs)
                m.d.sync += found.eq(word)
                with m.If(word == a.expected):
                    m.d.sync += [word.eq(a.new), sel.eq(0xff)]
                    bus(1, ExecState.CAS_EMIT)
                with m.Else():
                    m.d.sync += state.eq(ExecState.CAS_EMIT)
            with m.Case(ExecState.CAS_EMIT):
                emit(found, 8, ExecState.FINISH)

            # -- CSR
            with m.Case(ExecState.CSR_CHECK):
                a = view(CsrArgs)
                good = (((a.mode == 0) | (a.mode == 8)) & (a.ppn[PPN_BITS:] == 0) &
                        ((a.priv == 0) | (a.priv == 1) | (a.priv == 3)) &
                        (a.sum <= 1) & (a.mxr <= 1) & (a.adue <= 1))
                with m.If(~good):
                    finish(Status.BAD_ARG)
                with m.Else():
                    m.d.sync += [csr.satp.mode.eq(a.mode), csr.satp.asid.eq(a.asid),
                                 csr.satp.ppn.eq(a.ppn), csr.priv.eq(a.priv),
                                 csr.sum.eq(a.sum), csr.mxr.eq(a.mxr), csr.adue.eq(a.adue)]
                    finish(Status.OK)

            # -- SFENCE
            with m.Case(ExecState.SFENCE_CHECK):
                a = view(SfenceArgs)
                with m.If(a.flags > 3):
                    finish(Status.BAD_ARG)
                with m.Else():
                    m.d.comb += [self.sfence.valid.eq(1),
                                 self.sfence.payload.by_vaddr.eq(a.flags[0]),
                                 self.sfence.payload.by_asid.eq(a.flags[1]),
                                 self.sfence.payload.vaddr.eq(a.vaddr),
                                 self.sfence.payload.asid.eq(a.asid)]
                    finish(Status.OK)

            # -- COUNTERS
            with m.Case(ExecState.COUNTERS_NEXT):
                values = Array([cycles, *(getattr(self.debug, name) for name in COUNTERS)])
                emit(values[index], 8, ExecState.COUNTERS_STEP)
            with m.Case(ExecState.COUNTERS_STEP):
                m.d.sync += index.eq(index + 1)
                with m.If(index == len(COUNTERS)):
                    finish(Status.OK)
                with m.Else():
                    m.d.sync += state.eq(ExecState.COUNTERS_NEXT)

            # -- TLB
            with m.Case(ExecState.TLB_NEXT):
                entry = self.debug.tlb_entries[index[:max(1, (self.tlb_entries - 1)
                                                          .bit_length())]]
                emit(entry.as_value(), TLB_ENTRY_BYTES, ExecState.TLB_STEP)
            with m.Case(ExecState.TLB_STEP):
                m.d.sync += index.eq(index + 1)
                with m.If(index == self.tlb_entries - 1):
                    finish(Status.OK)
                with m.Else():
                    m.d.sync += state.eq(ExecState.TLB_NEXT)

            # -- ACCESS, first pass: every item checked, nothing done, so that BAD_ARG
            # leaves everything as it was.
            bound = Signal(range(MAX_BATCH * MAX_ITEM + 16))   # results' bytes at most
            items_rd = Signal.like(rd)
            item = view(AccessItem)
            reads = item.kind != Kind.STORE
            writes = (item.kind == Kind.STORE) | (item.kind == Kind.AMO)
            with m.Case(ExecState.ACC_COUNT):
                n = view(AccessArgs).count
                with m.If((n == 0) | (n > MAX_BATCH)):
                    finish(Status.BAD_ARG)
                with m.Else():
                    m.d.sync += [count.eq(n), index.eq(0), items_rd.eq(rd),
                                 # status, done, and a trap's cause and tval
                                 bound.eq(1 + 2 + _bytes(Trap)),
                                 state.eq(ExecState.ACC_CHECK_ITEM)]
            with m.Case(ExecState.ACC_CHECK_ITEM):
                with m.If(left < ITEM_BYTES):
                    finish(Status.BAD_ARG)
                with m.Else():
                    load(ITEM_BYTES, ExecState.ACC_CHECK)
            with m.Case(ExecState.ACC_CHECK):
                size_ok = ((item.size != 0) & (item.size <= MAX_ITEM) &
                           (item.vaddr[:12] + item.size <= MAX_ITEM))
                amo_ok = ((item.kind != Kind.AMO) |
                          ((item.size == 4) & (item.vaddr[:2] == 0)) |
                          ((item.size == 8) & (item.vaddr[:3] == 0)))
                data_ok = ~writes | (item.size <= left)
                with m.If((item.kind > 3) | ~size_ok | ~amo_ok | ~data_ok):
                    finish(Status.BAD_ARG)
                with m.Else():
                    with m.If(reads):
                        m.d.sync += bound.eq(bound + item.size)
                    with m.If(writes):
                        m.d.sync += [rd.eq(rd + item.size), left.eq(left - item.size)]
                    m.d.sync += index.eq(index + 1)
                    with m.If(index + 1 == count):
                        m.d.sync += state.eq(ExecState.ACC_CHECK_END)
                    with m.Else():
                        m.d.sync += state.eq(ExecState.ACC_CHECK_ITEM)
            with m.Case(ExecState.ACC_CHECK_END):
                with m.If((left != 0) | (bound > MAX_BODY)):
                    finish(Status.BAD_ARG)
                with m.Else():
                    m.d.sync += [rd.eq(items_rd), index.eq(0), resp_ptr.eq(3),
                                 state.eq(ExecState.ACC_ITEM)]

            # -- ACCESS, second pass: each item translated, then moved byte by byte.
            addr = Signal(64)          # the physical address of the next byte
            item_left = Signal(range(MAX_ITEM + 1))
            first = Signal()
            wrote = Signal()
            lane = addr[:3]
            with m.Case(ExecState.ACC_ITEM):
                load(ITEM_BYTES, ExecState.ACC_TRANSLATE)
            with m.Case(ExecState.ACC_TRANSLATE):
                m.d.comb += [self.mmu_req.valid.eq(1),
                             self.mmu_req.payload.vaddr.eq(item.vaddr),
                             self.mmu_req.payload.kind.eq(item.kind[:2])]
                with m.If(self.mmu_req.ready):
                    m.d.sync += state.eq(ExecState.ACC_WAIT)
            with m.Case(ExecState.ACC_WAIT):
                answer = self.mmu_resp.payload
                m.d.comb += self.mmu_resp.ready.eq(1)
                with m.If(self.mmu_resp.valid):
                    with m.If(answer.fault):
                        trap = Signal(Trap)
                        m.d.comb += [self.status.fault.eq(1),
                                     trap.cause.eq(answer.cause.as_value()),
                                     trap.tval.eq(answer.tval)]
                        emit(trap.as_value(), _bytes(Trap), ExecState.ACC_DONE_LO)
                    with m.Else():
                        m.d.sync += [addr.eq(answer.paddr), item_left.eq(item.size),
                                     first.eq(1), sel.eq(0),
                                     state.eq(ExecState.ACC_BYTE)]
            with m.Case(ExecState.ACC_BYTE):
                with m.If(reads & (first | (lane == 0))):
                    m.d.sync += bus_adr.eq(phys.offset(addr)[3:])
                    bus(0, ExecState.ACC_MOVE)
                with m.Else():
                    m.d.sync += state.eq(ExecState.ACC_MOVE)
            with m.Case(ExecState.ACC_MOVE):
                # The ring's byte at rd is on its read port: rd has held since ACC_BYTE.
                old = word.word_select(lane, 8)
                with m.If(reads):
                    m.d.comb += [resp_w.data.eq(old), resp_w.en.eq(1)]
                    m.d.sync += resp_ptr.eq(resp_ptr + 1)
                with m.If(writes):
                    m.d.sync += [word.word_select(lane, 8).eq(ring_r.data),
                                 sel.eq(sel | (1 << lane)), rd.eq(rd + 1)]
                m.d.sync += [addr.eq(addr + 1), item_left.eq(item_left - 1), first.eq(0)]
                # A word's bytes are written together: at its last lane, or the item's.
                flush = writes & ((lane == 7) | (item_left == 1))
                m.d.sync += wrote.eq(flush)
                with m.If(flush):
                    m.d.sync += bus_adr.eq(phys.offset(addr)[3:])
                    bus(1, ExecState.ACC_BYTE_NEXT)
                with m.Else():
                    m.d.sync += state.eq(ExecState.ACC_BYTE_NEXT)
            with m.Case(ExecState.ACC_BYTE_NEXT):
                with m.If(wrote):
                    m.d.sync += sel.eq(0)
                with m.If(item_left != 0):
                    m.d.sync += state.eq(ExecState.ACC_BYTE)
                with m.Elif(index + 1 == count):
                    m.d.sync += [index.eq(index + 1), state.eq(ExecState.ACC_DONE_LO)]
                with m.Else():
                    m.d.sync += [index.eq(index + 1), state.eq(ExecState.ACC_ITEM)]
            with m.Case(ExecState.ACC_DONE_LO):
                m.d.comb += [resp_w.addr.eq(1), resp_w.data.eq(index[:8]), resp_w.en.eq(1)]
                m.d.sync += state.eq(ExecState.ACC_DONE_HI)
            with m.Case(ExecState.ACC_DONE_HI):
                m.d.comb += [resp_w.addr.eq(2), resp_w.data.eq(index[8:]), resp_w.en.eq(1)]
                finish(Status.OK)

        # ---- The transmitter ----------------------------------------------------------
        sstate = Signal(SendState)
        head = Signal(HEAD_BYTES * 8)
        head_left = Signal(range(HEAD_BYTES + 1))
        tail = Signal()                   # head holds the CRC
        out_crc = Signal(16)
        body_ptr = Signal(range(MAX_BODY + 1))
        m.d.comb += [tx_idle.eq(sstate == SendState.IDLE), resp_r.addr.eq(body_ptr)]
        with m.Switch(sstate):
            with m.Case(SendState.IDLE):
                with m.If(send):
                    m.d.sync += [
                        head.eq(Cat(Const(SYNC[0], 8), Const(SYNC[1], 8), kept)),
                        head_left.eq(HEAD_BYTES), tail.eq(0), out_crc.eq(0),
                        body_ptr.eq(0), sstate.eq(SendState.HEAD)]
            with m.Case(SendState.HEAD):
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(head[:8])]
                with m.If(self.tx.ready):
                    m.d.sync += [head.eq(head >> 8), head_left.eq(head_left - 1)]
                    # SYNC is outside the CRC; LEN, SEQ and CMD are in it.
                    crc_after = crc16_xmodem(out_crc, head[:8])
                    with m.If(~tail & (head_left <= 4)):
                        m.d.sync += out_crc.eq(crc_after)
                    with m.If(head_left == 1):
                        with m.If(tail):
                            m.d.sync += sstate.eq(SendState.IDLE)
                        with m.Elif(kept.len == 0):
                            m.d.sync += [head.eq(crc_after), head_left.eq(2), tail.eq(1)]
                        with m.Else():
                            m.d.sync += sstate.eq(SendState.BODY_ADDR)
            with m.Case(SendState.BODY_ADDR):
                m.d.sync += sstate.eq(SendState.BODY)
            with m.Case(SendState.BODY):
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(resp_r.data)]
                with m.If(self.tx.ready):
                    next_crc = crc16_xmodem(out_crc, resp_r.data)
                    m.d.sync += [out_crc.eq(next_crc), body_ptr.eq(body_ptr + 1)]
                    with m.If(body_ptr + 1 == kept.len):
                        m.d.sync += [head.eq(next_crc), head_left.eq(2), tail.eq(1),
                                     sstate.eq(SendState.HEAD)]
                    with m.Else():
                        m.d.sync += sstate.eq(SendState.BODY_ADDR)
        return m

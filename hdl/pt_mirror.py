"""Copies of page-table frames inside the design, so that a walk needs no host round trip.

When the walker's memory is the host's (Python under cocotb, a PC behind a UART), every
PTE read is a round trip that costs far more than the walk. The host knows which frames
the walker reads (it answers those reads) and copies them here; reads of a mirrored frame
are then answered from on-chip memory in the cycle they are asked, like a memory with no
wait states. Every write still goes to the host, which owns physical memory and keeps each
copied line in step with every write it makes or receives, before the walker can read it
again.

Here: the mirror (:class:`PageTableMirror`), the layout of its map's entries
(:func:`frame_entry`) and the size of its lines.
"""

from amaranth.hdl import Array, Cat, Module, Mux
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from . import wishbone
from .ptw import BUS_ADDR_BITS

#: Bits of a mirror line, the unit the host writes: a VPI call per line, not per PTE.
LINE_BITS = 512
WORDS_PER_LINE = LINE_BITS // 64
LINES_PER_FRAME = 4096 * 8 // LINE_BITS
#: A mirror line: its PTEs, as raw words (the mirror answers reads, it does not look).
LINE = data.ArrayLayout(64, WORDS_PER_LINE)


def frame_entry(slots):
    """The layout of the map's entry for one frame of physical memory: mirrored, and in
    which of ``slots``."""
    return data.StructLayout({"valid": 1, "slot": range(slots)})


def check_slots(slots):
    if not isinstance(slots, int) or slots < 1 or slots & (slots - 1):
        raise ValueError(f"mirror_slots must be a power of two, not {slots!r}")


class PageTableMirror(wiring.Component):
    """Answers the walker's reads of mirrored frames; passes everything else to the host.

    The host fills a slot (``lines[slot * LINES_PER_FRAME + line]``) and then points the
    frame's map entry at it (``frame_map[frame]``); to drop a frame it clears the entry.
    It may change the map only while the walker is idle, and must rewrite a line of a
    mirrored frame in the cycle it takes a write to it (a walker A/D write) or, for its
    own writes, before the walker runs again.

    Parameters
    ----------
    frames : int
        4 KiB frames the map covers, from bus address 0 (the offset within physical
        memory); reads above it go to the host.
    slots : int
        Frames mirrored at once; a power of two.
    """

    def __init__(self, *, frames, slots=64):
        check_slots(slots)
        if not isinstance(frames, int) or frames < 1:
            raise ValueError(f"frames must be a positive integer, not {frames!r}")
        self.frames = frames
        self.slots = slots
        self.entry = frame_entry(slots)
        bus = wishbone.Signature(addr_width=BUS_ADDR_BITS)
        super().__init__({
            #: The walker's bus; this block is its target.
            "walker":        In(bus),
            #: Every transaction the mirror does not answer: all writes, reads of frames
            #: not mirrored, and everything while ``enable`` is 0.
            "host":          Out(bus),
            #: 0 sends every transaction to the host: for a host that must see each one
            #: (a test timing "another hart" on the bus) or that inserts wait states.
            "enable":        In(1),
            #: Write ``frame_map[frame_wr_addr]``, for a host that cannot write the memory
            #: directly.
            "frame_wr_en":   In(1),
            #: The frame whose entry is written.
            "frame_wr_addr": In(range(frames)),
            #: Its new entry.
            "frame_wr_data": In(self.entry),
            #: Write ``lines[line_wr_addr]``, likewise.
            "line_wr_en":    In(1),
            #: ``slot * LINES_PER_FRAME + line``.
            "line_wr_addr":  In(range(slots * LINES_PER_FRAME)),
            #: The line's new PTEs.
            "line_wr_data":  In(LINE),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.frame_map = frame_map = memory.Memory(
            shape=self.entry, depth=self.frames, init=[])
        m.submodules.lines = lines = memory.Memory(
            shape=LINE, depth=self.slots * LINES_PER_FRAME, init=[])
        for mem, prefix in ((frame_map, "frame"), (lines, "line")):
            port = mem.write_port()
            m.d.comb += [port.en.eq(getattr(self, f"{prefix}_wr_en")),
                         port.addr.eq(getattr(self, f"{prefix}_wr_addr")),
                         port.data.eq(getattr(self, f"{prefix}_wr_data"))]

        bus, host = self.walker, self.host
        word, line, frame = bus.adr[:3], bus.adr[3:9], bus.adr[9:]
        lookup = frame_map.read_port(domain="comb")
        m.d.comb += lookup.addr.eq(frame)
        mirrored = self.enable & (frame < self.frames) & lookup.data.valid & ~bus.we

        # Answered in the cycle it is asked, as a memory with no wait states does.
        read = lines.read_port(domain="comb")
        m.d.comb += read.addr.eq(Cat(line, lookup.data.slot))
        answering = bus.cyc & bus.stb & mirrored
        words = Array(read.data[i] for i in range(WORDS_PER_LINE))

        m.d.comb += [
            host.adr.eq(bus.adr), host.dat_w.eq(bus.dat_w), host.sel.eq(bus.sel),
            host.we.eq(bus.we), host.lock.eq(bus.lock), host.cyc.eq(bus.cyc),
            host.stb.eq(bus.stb & ~mirrored),
            bus.ack.eq(answering | host.ack),
            bus.err.eq(host.err),
            bus.dat_r.eq(Mux(answering, words[word], host.dat_r)),
        ]
        return m

"""The board top (:class:`BoardTop`): the MMU, its physical memory in block RAM
(:class:`BlockRam`) and the command bridge (:class:`~..bridge.Bridge`) behind a UART, with
LEDs; :class:`BoardCore` is the same without the UART, for tests and for hosts that have
a byte stream already.

Why the MMU and not the batch top (:class:`~..batch.BatchTop`): the batch top's queue
memories and page-table mirror exist for a host that reaches the design one VPI call at
a time and holds the physical memory itself. On a board the memory is block RAM beside
the walker, which reads it without a host, and the bridge performs each ACCESS item's
load or store right after its translation, so it takes one translation at a time: the
queue and the mirror would only be two more memories between the bridge and the MMU.
"""

from amaranth.hdl import ClockSignal, Instance, Module, Mux, ResetInserter, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .. import wishbone
from ..bridge import Bridge, BridgeStatus
from ..mmu import MMU, check_params
from ..ptw import BUS_ADDR_BITS
from ..uart import UartRx, UartTx, divisor

#: How long an LED stays on after the event it shows, so that one event is seen.
LED_HOLD_S = 0.2


#: :class:`BlockRam`'s words in a netlist: the Verilog module it instantiates when the
#: platform takes Verilog files. Without an initial value: the host writes every word it
#: reads, Verilator (``--x-initial fast``) starts the words at zero and the ECP5's block
#: RAMs come up as zeros.
BLOCK_RAM_MODULE = "mkclean_block_ram"
BLOCK_RAM_VERILOG = f"""\
// {BLOCK_RAM_MODULE}: the board top's physical memory (hdl/boards/top.py, BlockRam):
// WORDS 64-bit words, written by byte lanes, read one cycle after the address (the old
// word, when the same cycle writes it). No initial value.
module {BLOCK_RAM_MODULE} #(
    parameter WORDS = 512,
    parameter ABITS = 9
) (
    input wire clk,
    input wire [ABITS-1:0] addr,
    input wire [7:0] we,
    input wire [63:0] wdata,
    output reg [63:0] rdata
);
    reg [63:0] words [0:WORDS-1];
    integer lane;
    always @(posedge clk) begin
        rdata <= words[addr];
        for (lane = 0; lane < 8; lane = lane + 1)
            if (we[lane])
                words[addr][lane * 8 +: 8] <= wdata[lane * 8 +: 8];
    end
endmodule
"""


class BlockRam(wiring.Component):
    """``phys_size`` bytes of 64-bit words from bus address 0 (the bus carries offsets
    within physical memory, whatever its base), a Wishbone target: each transaction
    acknowledged in the cycle after it is asked, writes by byte lanes.

    The words are an Amaranth :class:`~amaranth.lib.memory.Memory` in Amaranth's
    simulator, and the Verilog module :data:`BLOCK_RAM_MODULE` in a netlist: when the
    platform takes files (``platform.add_file``: an FPGA build's platform, the one
    :func:`~..verilog.generate` passes). Why: Amaranth 0.5 gives every memory an initial
    value and writes it word by word (a ``$meminit_v2`` of one constant bit a bit, then an
    ``initial`` block of a line a word): a minute and a gigabyte of RTLIL and Yosys for
    1 MiB, for zeros that the board does not need.

    Parameters
    ----------
    phys_size : int
        A multiple of 8.
    """

    #: The memory's port, word addresses.
    bus: In(wishbone.Signature(addr_width=BUS_ADDR_BITS))

    def __init__(self, phys_size):
        self.words = phys_size // 8
        #: The words in Amaranth's simulator, which may read and write ``memory.data``
        #: directly.
        self.memory = memory.Memory(shape=64, depth=self.words, init=[])
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        ask = bus.cyc & bus.stb & ~bus.ack
        addr = bus.adr[:max(1, (self.words - 1).bit_length())]
        we = Mux(ask & bus.we, bus.sel, 0)
        m.d.sync += bus.ack.eq(ask)
        if hasattr(platform, "add_file"):
            self.memory._MustUse__silence = True      # the simulator's, unused here
            platform.add_file(f"{BLOCK_RAM_MODULE}.v", BLOCK_RAM_VERILOG)
            m.submodules.memory = Instance(
                BLOCK_RAM_MODULE, p_WORDS=self.words, p_ABITS=len(addr),
                i_clk=ClockSignal("sync"), i_addr=addr, i_we=we, i_wdata=bus.dat_w,
                o_rdata=bus.dat_r)
            return m
        m.submodules.memory = mem = self.memory
        read = mem.read_port()
        write = mem.write_port(granularity=8)
        m.d.comb += [read.addr.eq(addr), write.addr.eq(addr), write.data.eq(bus.dat_w),
                     write.en.eq(we), bus.dat_r.eq(read.data)]
        return m


class BoardCore(wiring.Component):
    """The MMU, :class:`BlockRam` and the :class:`~..bridge.Bridge`, joined; byte streams
    outside.

    Parameters
    ----------
    phys_size, phys_base, tlb_entries, walk_cache_entries :
        The MMU's (:class:`~..mmu.MMU`); ``phys_size`` is also the block RAM's, which the
        MMU and the bridge address by offset within memory.
    frame_timeout : int
        The bridge's inter-byte timeout, in cycles.
    **bridge_params
        More of :class:`~..bridge.Bridge`'s (``ring_bytes``, for tests).
    """

    #: Request bytes.
    rx: In(stream.Signature(8))
    #: Response bytes.
    tx: Out(stream.Signature(8))
    #: The bridge's events, for LEDs.
    status: Out(BridgeStatus)

    def __init__(self, *, phys_size, phys_base=0, tlb_entries=16, walk_cache_entries=8,
                 frame_timeout, **bridge_params):
        self.bridge = Bridge(phys_size=phys_size, phys_base=phys_base, tlb_entries=tlb_entries,
                             frame_timeout=frame_timeout, **bridge_params)
        self.mmu = MMU(phys_size=phys_size, phys_base=phys_base, tlb_entries=tlb_entries,
                       walk_cache_entries=walk_cache_entries)
        self.ram = BlockRam(phys_size)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        bridge, mmu, ram = self.bridge, self.mmu, self.ram
        m.submodules.bridge = bridge
        # RESET resets the MMU alone: TLB, walk cache, counters; the bridge keeps going.
        m.submodules.mmu = ResetInserter({"sync": bridge.mmu_reset})(mmu)
        m.submodules.ram = ram
        wiring.connect(m, wiring.flipped(self.rx), bridge.rx)
        wiring.connect(m, bridge.tx, wiring.flipped(self.tx))
        wiring.connect(m, bridge.mmu_req, mmu.req)
        wiring.connect(m, mmu.resp, bridge.mmu_resp)
        wiring.connect(m, bridge.sfence, mmu.sfence)
        wiring.connect(m, mmu.debug, bridge.debug)
        m.d.comb += [mmu.csr.eq(bridge.csr), self.status.eq(bridge.status)]

        # One memory, two initiators that never overlap: the bridge touches memory only
        # while the MMU is idle (hdl/bridge.py), so its cyc alone picks it.
        use_bridge = bridge.bus.cyc
        walker = mmu.bus
        for name in ("adr", "dat_w", "sel", "cyc", "stb", "we"):
            m.d.comb += getattr(ram.bus, name).eq(
                Mux(use_bridge, getattr(bridge.bus, name), getattr(walker, name)))
        m.d.comb += [bridge.bus.dat_r.eq(ram.bus.dat_r), walker.dat_r.eq(ram.bus.dat_r),
                     bridge.bus.ack.eq(use_bridge & ram.bus.ack),
                     walker.ack.eq(~use_bridge & ram.bus.ack)]
        return m


class BoardTop(wiring.Component):
    """The design a board wrapper instantiates: :class:`BoardCore` behind an 8N1 UART,
    and LEDs.

    Parameters
    ----------
    clk_freq : int
        The clock's frequency in Hz (the UART's divisor, the timeout, the LEDs).
    baud : int
        The UART's rate.
    phys_size : int
        Bytes of block RAM: the physical memory.
    phys_base : int
        Its first physical address; 0 on the boards.
    tlb_entries, walk_cache_entries : int
        The MMU's.
    frame_timeout_s : float
        The bridge's inter-byte timeout, in seconds.
    """

    #: The UART line from the host (idles high).
    uart_rx: In(1, init=1)
    #: The UART line to the host (idles high).
    uart_tx: Out(1, init=1)
    #: 0: heartbeat (1 Hz); 1: an ACCESS trapped (fault seen); 2: a frame was dropped
    #: (bad CRC, LEN, or timeout); 3: a frame is being received. 1 to 3 hold for
    #: LED_HOLD_S after the event, so that one event shows. 4 to 7: off.
    leds: Out(8)

    def __init__(self, *, clk_freq, baud=115200, phys_size=256 << 10, phys_base=0,
                 tlb_entries=16, walk_cache_entries=8, frame_timeout_s=0.01):
        try:
            if not isinstance(clk_freq, (int, float)) or clk_freq <= 0:
                raise ValueError(f"clk_freq must be a positive frequency in Hz, "
                                 f"not {clk_freq!r}")
            check_params(phys_size=phys_size, phys_base=phys_base, tlb_entries=tlb_entries,
                         walk_cache_entries=walk_cache_entries)
            self.divisor = divisor(clk_freq, baud)
            if not frame_timeout_s > 0:
                raise ValueError(f"frame_timeout_s must be positive, not {frame_timeout_s!r}")
        except (ValueError, TypeError):
            self._MustUse__silence = True
            raise
        self.clk_freq = int(clk_freq)
        self.core = BoardCore(phys_size=phys_size, phys_base=phys_base,
                              tlb_entries=tlb_entries, walk_cache_entries=walk_cache_entries,
                              frame_timeout=max(1, round(frame_timeout_s * clk_freq)))
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        m.submodules.uart_rx = rx = UartRx(self.divisor)
        m.submodules.uart_tx = tx = UartTx(self.divisor)
        m.d.comb += [rx.rx.eq(self.uart_rx), self.uart_tx.eq(tx.tx)]
        wiring.connect(m, rx.o, core.rx)
        wiring.connect(m, core.tx, tx.i)

        half_second = max(1, self.clk_freq // 2)
        beat = Signal(range(half_second))
        heart = Signal()
        with m.If(beat == half_second - 1):
            m.d.sync += [beat.eq(0), heart.eq(~heart)]
        with m.Else():
            m.d.sync += beat.eq(beat + 1)

        hold = max(1, round(LED_HOLD_S * self.clk_freq))

        def held(event):
            left = Signal(range(hold + 1))
            with m.If(event):
                m.d.sync += left.eq(hold)
            with m.Elif(left != 0):
                m.d.sync += left.eq(left - 1)
            return event | (left != 0)

        m.d.comb += [self.leds[0].eq(heart),
                     self.leds[1].eq(held(core.status.fault)),
                     self.leds[2].eq(held(core.status.bad_frame)),
                     self.leds[3].eq(held(core.status.receiving))]
        return m

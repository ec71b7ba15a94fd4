"""A UART, 8N1, for the board's command bridge: a receiver (:class:`UartRx`) and a
transmitter (:class:`UartTx`), each a byte stream on one side and a pin on the other.

amaranth-stdio is an empty placeholder on the package index, so the UART is written here.
Both take ``divisor``, the clock cycles per bit (``clk_freq // baud``); :func:`divisor`
computes it and refuses a baud rate the clock cannot make.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

#: Below this many cycles a bit, the receiver's mid-bit sample has no margin left.
MIN_DIVISOR = 4


def check_divisor(divisor, component=None):
    if not isinstance(divisor, int) or divisor < MIN_DIVISOR:
        if component is not None:
            component._MustUse__silence = True   # refused, not forgotten
        raise ValueError(f"divisor must be an integer of at least {MIN_DIVISOR} cycles per "
                         f"bit, not {divisor!r}")


def divisor(clk_freq, baud):
    """Cycles per bit for ``baud`` at ``clk_freq`` Hz, rounded to the nearest; refuses an
    error above 2 % (the receiver samples mid-bit: ten bits of drift must stay under half
    a bit) and a divisor below :data:`MIN_DIVISOR`."""
    if not baud or baud <= 0:
        raise ValueError(f"baud must be positive, not {baud!r}")
    cycles = round(clk_freq / baud)
    check_divisor(cycles)
    if abs(clk_freq / cycles - baud) > 0.02 * baud:
        raise ValueError(f"{clk_freq} Hz cannot make {baud} baud within 2 % "
                         f"(divisor {cycles} gives {clk_freq / cycles:.0f})")
    return cycles


class UartRx(wiring.Component):
    """8N1 receiver.

    The line goes through a two-flop synchroniser; a start bit is a low line still low
    half a bit later, each data bit (least significant first) is sampled in the middle of
    its bit, and a byte whose stop bit is low (a framing error, or a break) is dropped.

    A UART cannot be told to wait: a byte not taken by the time the next one's stop bit
    is sampled is replaced by it.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least :data:`MIN_DIVISOR`.
    """

    #: The line from the pin; idles high.
    rx: In(1, init=1)
    #: The bytes received; ``valid`` holds until ``ready`` or the next byte.
    o: Out(stream.Signature(8))
    #: One cycle per byte dropped for a low stop bit.
    framing_error: Out(1)

    def __init__(self, divisor):
        check_divisor(divisor, self)
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        # The pin is asynchronous to the clock: two flops before anything looks at it.
        meta = Signal(init=1)
        line = Signal(init=1)
        m.d.sync += [meta.eq(self.rx), line.eq(meta)]

        timer = Signal(range(self.divisor))
        bits = Signal(range(8))
        shift = Signal(8)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        m.d.comb += self.framing_error.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(self.divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):
                    m.next = "IDLE"          # a glitch, not a start bit
                with m.Else():
                    m.d.sync += [timer.eq(self.divisor - 1), bits.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shift.eq(Cat(shift[1:], line)), bits.eq(bits + 1),
                                 timer.eq(self.divisor - 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    with m.If(line):
                        m.d.sync += [self.o.payload.eq(shift), self.o.valid.eq(1)]
                    with m.Else():
                        m.d.comb += self.framing_error.eq(1)
                    # Back to IDLE in the middle of the stop bit: the line is high until
                    # the next start bit, if the stop bit was good.
                    m.next = "IDLE"
        return m


class UartTx(wiring.Component):
    """8N1 transmitter: a byte taken whenever the line is idle, sent least significant
    bit first between a start bit and one stop bit.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least :data:`MIN_DIVISOR`.
    """

    #: The bytes to send.
    i: In(stream.Signature(8))
    #: The line to the pin; idles high.
    tx: Out(1, init=1)

    def __init__(self, divisor):
        check_divisor(divisor, self)
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        frame = Signal(10, init=0x3ff)    # stop, data, start: shifted out from bit 0
        left = Signal(range(11))
        m.d.comb += [self.tx.eq(frame[0]), self.i.ready.eq(left == 0)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [frame.eq(Cat(Const(0, 1), self.i.payload, Const(1, 1))),
                         left.eq(10), timer.eq(self.divisor - 1)]
        with m.Elif(left != 0):
            with m.If(timer != 0):
                m.d.sync += timer.eq(timer - 1)
            with m.Else():
                m.d.sync += [frame.eq(Cat(frame[1:], Const(1, 1))), left.eq(left - 1),
                             timer.eq(self.divisor - 1)]
        return m

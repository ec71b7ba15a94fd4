"""The boards the board top runs on: for each, what its amaranth-boards platform is and how
its clock, USB serial port and LEDs reach :class:`~.top.BoardTop` (:class:`BoardShell`),
and the ECP5 PLL that derives the MMU's clock when the board's is not the one asked for
(:func:`pll_params`).

Supported (:data:`BOARDS`): the ULX3S 85F (25 MHz oscillator, the FTDI's ``uart``, eight
LEDs) and the ECPIX-5 85 (100 MHz oscillator, the FT2232's second channel as ``uart``,
four RGB LEDs: LEDs 0-3 are their green parts, 4-7 their red parts).
"""

from dataclasses import dataclass

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

__all__ = ["Board", "BOARDS", "BoardShell", "pll_params"]


@dataclass(frozen=True)
class Board:
    """One supported board.

    Attributes
    ----------
    name : str
        What ``mkclean build --board`` calls it.
    title : str
        What a person calls it.
    platform : str
        Its amaranth-boards platform class, as ``module:Class`` in ``amaranth_boards``.
    clk_freq : float
        Its oscillator's frequency in Hz (the platform's default clock).
    leds : tuple
        Where each of the board top's eight LEDs goes: ``(resource, number, subsignal)``,
        the subsignal ``None`` for a plain LED resource.
    program : str
        The command line that programs a built bitstream (``{bit}`` is its path) into
        the FPGA's SRAM.
    """
    name: str
    title: str
    platform: str
    clk_freq: float
    leds: tuple
    program: str

    def make_platform(self):
        """A fresh instance of the board's amaranth-boards platform."""
        import importlib
        module, cls = self.platform.split(":")
        return getattr(importlib.import_module(f"amaranth_boards.{module}"), cls)()


BOARDS = {
    "ulx3s-85f": Board(
        name="ulx3s-85f", title="ULX3S 85F (LFE5U-85F-6BG381)",
        platform="ulx3s:ULX3S_85F_Platform", clk_freq=25e6,
        leds=tuple(("led", i, None) for i in range(8)),
        program="openFPGALoader --board ulx3s {bit}"),
    "ecpix5-85": Board(
        name="ecpix5-85", title="ECPIX-5 85 (LFE5UM5G-85F-8BG554)",
        platform="ecpix5:ECPIX585Platform", clk_freq=100e6,
        leds=(tuple(("rgb_led", i, "g") for i in range(4))
              + tuple(("rgb_led", i, "r") for i in range(4))),
        program="openFPGALoader --board ecpix5 {bit}"),
}

#: The EHXPLLL's limits (ECP5 family data sheet, as ecppll uses them): input, phase
#: detector, VCO and output frequencies in Hz, and the dividers' ranges.
PLL_LIMITS = dict(fin=(8e6, 400e6), pfd=(3.125e6, 400e6), vco=(400e6, 800e6),
                  fout=(3.125e6, 400e6), clki_div=128, clkfb_div=80, clkop_div=128)


def pll_params(fin, fout):
    """The EHXPLLL dividers that make ``fout`` from ``fin`` (Hz), CLKOP fed back.

    The same search as ecppll (yowasp-ecppll): every divider triple inside the limits,
    the output closest to ``fout``, then the VCO closest to 600 MHz.

    Returns
    -------
    dict
        ``clki_div``, ``clkfb_div``, ``clkop_div``, ``clkop_cphase`` (the phase-0
        setting), ``vco`` and ``fout`` (the frequency made, Hz).

    Raises
    ------
    ValueError
        When no setting comes within 1% of ``fout`` (or either frequency is outside the
        PLL's range).
    """
    lim = PLL_LIMITS
    if not lim["fin"][0] <= fin <= lim["fin"][1] or not lim["fout"][0] <= fout <= lim["fout"][1]:
        raise ValueError(f"the ECP5 PLL cannot make {fout / 1e6:g} MHz from "
                         f"{fin / 1e6:g} MHz (input 8-400 MHz, output 3.125-400 MHz)")
    best = None
    for clki_div in range(1, lim["clki_div"] + 1):
        pfd = fin / clki_div
        if not lim["pfd"][0] <= pfd <= lim["pfd"][1]:
            continue
        for clkfb_div in range(1, lim["clkfb_div"] + 1):
            made = pfd * clkfb_div
            for clkop_div in range(1, lim["clkop_div"] + 1):
                vco = made * clkop_div
                if not lim["vco"][0] <= vco <= lim["vco"][1]:
                    continue
                key = (abs(made - fout), abs(vco - 600e6))
                if best is None or key < best[0]:
                    best = (key, dict(clki_div=clki_div, clkfb_div=clkfb_div,
                                      clkop_div=clkop_div, clkop_cphase=clkop_div // 2 - 1,
                                      vco=vco, fout=made))
    if best is None or best[0][0] > fout / 100:
        raise ValueError(f"the ECP5 PLL cannot make {fout / 1e6:g} MHz from "
                         f"{fin / 1e6:g} MHz within 1%")
    return best[1]


class BoardShell(Elaboratable):
    """The board top on a board: its clock (straight from the oscillator, or through the
    PLL), the USB serial port's two pins and the LEDs.

    Parameters
    ----------
    board : Board or str
        One of :data:`BOARDS`.
    clk_freq : float or None
        The MMU's clock in Hz; ``None`` (or the oscillator's frequency) runs the design
        from the oscillator, anything else from an EHXPLLL set by :func:`pll_params`.
    make_top : callable or None
        ``make_top(clk_freq=..., **top_params)`` makes the board top; ``None`` is
        :class:`~.top.BoardTop`.
    **top_params
        Passed to the board top: ``baud``, ``phys_size``, ``tlb_entries``,
        ``walk_cache_entries``.

    Attributes
    ----------
    pll : dict or None
        The PLL's setting, when one is used.
    clk_freq : float
        The clock the board top runs at (the PLL's real output, when there is one).
    """

    def __init__(self, board, *, clk_freq=None, make_top=None, **top_params):
        self.board = BOARDS[board] if isinstance(board, str) else board
        if clk_freq is None or clk_freq == self.board.clk_freq:
            self.pll = None
            self.clk_freq = self.board.clk_freq
        else:
            self.pll = pll_params(self.board.clk_freq, clk_freq)
            self.clk_freq = self.pll["fout"]
        if make_top is None:
            from .top import BoardTop as make_top
        self.top = make_top(clk_freq=int(self.clk_freq), **top_params)

    def elaborate(self, platform):
        m = Module()
        if self.pll is not None:
            self._pll_domain(m, platform)
        # Without a PLL the platform makes the sync domain from its default clock (and
        # reset button), with its reset synchroniser on the ECP5's power-up reset.
        m.submodules.top = top = self.top

        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [top.uart_rx.eq(rx.i), tx.o.eq(top.uart_tx)]
        requested = {}  # an RGB LED is one resource with three LEDs: requested once
        for i, (resource, number, subsignal) in enumerate(self.board.leds):
            if (resource, number) not in requested:
                requested[resource, number] = platform.request(resource, number, dir="-")
            port = requested[resource, number]
            port = getattr(port, subsignal) if subsignal else port
            m.submodules[f"led_{i}"] = led = io.Buffer("o", port)
            m.d.comb += led.o.eq(top.leds[i])
        return m

    def _pll_domain(self, m, platform):
        m.submodules.clk_in = clk_in = io.Buffer("i", platform.request(platform.default_clk, 0,
                                                                       dir="-"))
        clk_in = clk_in.i
        clk = Signal()
        locked = Signal()
        p = self.pll
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=f"{self.board.clk_freq / 1e6:g}",
            a_FREQUENCY_PIN_CLKOP=f"{p['fout'] / 1e6:g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA",
            p_CLKOP_ENABLE="ENABLED", p_CLKI_DIV=p["clki_div"], p_CLKOP_DIV=p["clkop_div"],
            p_CLKOP_CPHASE=p["clkop_cphase"], p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
            p_CLKFB_DIV=p["clkfb_div"],
            i_RST=0, i_STDBY=0, i_CLKI=clk_in, i_CLKFB=clk, o_CLKOP=clk,
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
            i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=locked)
        platform.add_clock_constraint(clk, p["fout"])
        m.domains.sync = ClockDomain("sync")
        m.d.comb += ClockSignal("sync").eq(clk)
        # Held in reset until the PLL locks (and while the board's reset button is down).
        reset = ~locked
        if platform.default_rst is not None:
            m.submodules.rst_in = rst_in = io.Buffer(
                "i", platform.request(platform.default_rst, 0, dir="-"))
            reset = reset | rst_in.i
        m.submodules.reset_sync = ResetSynchronizer(reset, domain="sync")

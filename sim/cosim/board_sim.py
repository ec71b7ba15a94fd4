"""The board-sim backend: the board top (hdl/boards/top.py: the MMU, block RAM and the
UART bridge) under Verilator, driven by the very host code that drives a board.

:func:`make_board_sim` builds and starts the simulator in a thread (its cocotb side,
:mod:`.commands.board_sim`, bridges the board's UART lines to a TCP port), then opens that
port with the board backend (sim/board/: ``socket://127.0.0.1:PORT``, pyserial's URL
handler) and returns it: `mkclean run --backend board-sim` is `--backend board` on a
simulated board. Closing the backend closes the socket, and the simulation ends.

Runs on the host. Imports: :mod:`.build`, :mod:`.jobs`, the board backend.
"""

import tempfile
import threading
import time
from pathlib import Path

from ..board.backend import make_board
from . import build, jobs

#: The simulated board: its clock and a UART at 4 cycles a bit (the fastest the UART
#: takes), so that a byte costs 40 cycles; the bridge's inter-byte timeout short, since
#: the simulation stands still while the host is not sending.
CLK_FREQ = 100_000_000
BAUD = CLK_FREQ // 4
FRAME_TIMEOUT_S = 200e-6
#: How long the host waits for a response before it sends again: the simulated board runs
#: at about a million cycles a second, and a full ACCESS frame is some 330k cycles of UART.
TIMEOUT_S = 30.0


def board_params(phys_size=256 << 10, tlb_entries=16, walk_cache_entries=8, phys_base=0):
    """What the simulated board top is built with (``phys_base`` only when it is not 0:
    the board top's own default)."""
    return {"board": True, "clk_freq": CLK_FREQ, "baud": BAUD, "phys_size": phys_size,
            "tlb_entries": tlb_entries, "walk_cache_entries": walk_cache_entries,
            "frame_timeout_s": FRAME_TIMEOUT_S, **({"phys_base": phys_base} if phys_base else {})}


class _Simulation(threading.Thread):
    """The simulator process, run by :func:`~.jobs.run_job` in a thread of its own."""

    def __init__(self, params, config):
        super().__init__(daemon=True, name="board-sim")
        self.params, self.config = params, config
        self.result = self.error = None

    def run(self):
        try:
            self.result = jobs.run_job("mkclean.sim.cosim.commands.board_sim", self.config,
                                       self.params)
        except BaseException as e:            # reported to the host by make_board_sim
            self.error = e


def make_board_sim(phys_size=256 << 10, tlb_entries=16, walk_cache_entries=8,
                   start_timeout=600.0, timeout=TIMEOUT_S, faults=None, phys_base=0,
                   **options):
    """The backend registry's factory: a simulated board, opened by the board backend.
    Its memory is at ``phys_base`` (the board top built there, VERSION saying so).

    Builds the simulator first if needed (a minute or two, once per configuration).
    ``timeout``: the host's wait for a response before it sends again; ``faults``: the
    arguments of a :class:`~mkclean.sim.board.reference.Faults` that damages the bytes on
    the simulated wire (the link-fault tests)."""
    if options:
        raise ValueError(f"the board-sim backend takes no options {sorted(options)}")
    params = board_params(phys_size, tlb_entries, walk_cache_entries, phys_base)
    build.build(params)
    folder = Path(tempfile.mkdtemp(prefix="mkclean-board-sim-"))
    port_file = folder / "port"
    quiet = 2 * round(FRAME_TIMEOUT_S * CLK_FREQ) + 20_000
    config = {"port_file": str(port_file), "quiet_cycles": quiet}
    if faults is not None:
        config["faults"] = faults
    sim = _Simulation(params, config)
    sim.start()
    deadline = time.monotonic() + start_timeout
    while not port_file.exists():
        if sim.error is not None or not sim.is_alive():
            raise build.ToolError(f"the board simulation did not start: "
                                  f"{sim.error or 'it ended'}")
        if time.monotonic() > deadline:
            raise build.ToolError(f"the board simulation did not open its port within "
                                  f"{start_timeout:.0f} s")
        time.sleep(0.05)
    port = int(port_file.read_text())
    hw = make_board(url=f"socket://127.0.0.1:{port}", tlb_entries=tlb_entries,
                    timeout=timeout, phys_base=phys_base)
    hw.simulation = sim
    return hw

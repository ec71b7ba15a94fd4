"""A failing random run's replay command, with a window of waves, reproduces the failure
and its window holds the failing transaction (issue 10).

The broken runs are real bugs planted in the design or the kernel: the walker variant
that writes A/D without the locked re-read (build parameter ad_lock=False, which the
campaign catches at its first A/D update), and a kernel whose page_mkclean forgets the TLB
flush (``mkclean run --plant missing-flush``), which invariant 2 catches on the RTL's TLB.
"""

import re
import subprocess
import sys

from mkclean.sim.cosim.verify import run_campaign
from mkclean.sim.waves.options import Waves
from mkclean.sim.waves.trace import Trace

WINDOW = 40


def bus_writes(trace, top, first, last):
    """The cycles in [first, last] whose rising edge sees a Wishbone write strobed."""
    names = [f"{top}.{n}" for n in ("wb_cyc", "wb_stb", "wb_we", "clk")]
    changes = trace.changes(names, first, last)
    events = sorted((t, name, v) for name in names for t, v in changes[name])
    state, cycles = {}, []
    for t, name, v in events:
        state[name] = v
        if name.endswith(".clk") and v == 1 and all(state.get(n) for n in names[:3]):
            cycles.append(trace.cycle_of(t))
    return cycles


def test_verify_mismatch_replays_with_its_window(tmp_path):
    broken = {"ad_lock": False}
    first = run_campaign(5, 500, params=broken)
    assert first["mismatches"] == 1 and "RL@" in first["first_mismatch"]
    cycle = first["mismatch_cycle"]
    waves = Waves(tmp_path, around=cycle, window=WINDOW)
    again = run_campaign(5, 500, params=broken, waves=waves)
    assert (again["first_mismatch"], again["mismatch_cycle"]) == (first["first_mismatch"], cycle)
    trace = Trace(waves.trace)
    # The window is cut in the simulator: the trace holds it and no more.
    lo, hi = trace.cycles
    start = max(0, cycle - WINDOW)
    # (the campaign ends at its first mismatch, and the simulation with it)
    assert start <= lo <= start + 1 and cycle - 1 <= hi <= cycle + WINDOW + 1, (lo, hi, cycle)
    # The failing transaction: the walker's unlocked A/D write, shortly before the
    # mismatch was seen.
    writes = bus_writes(trace, "mkclean_mmu_tb", lo, hi)
    assert any(start <= c <= cycle for c in writes), (cycle, writes)
    assert waves.trace.with_suffix(".gtkw").exists()


def mkclean(*args, cwd):
    return subprocess.run([sys.executable, "-m", "mkclean.sim.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=900)

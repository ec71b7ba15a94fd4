"""A failing random run's replay command, with a window of waves, reproduces the failure
and its window holds the failing transaction (issue 10).

The broken runs are real bugs planted in the design or the kernel: the walker variant
that writes A/D without the locked re-read (build parameter ad_lock=False, which the
campaign catches at its first A/D update), and a kernel whose page_mkclean forgets the TLB
flush (``mkclean run --plant missing-flush``), which invariant 2 catches on the RTL's TLB.
"""

import json
import os
import re
import subprocess
import sys

import pytest

from mkclean.sim.cosim import build
from mkclean.sim.cosim.verify import run_campaign
from mkclean.sim.hw.seam import KernelEvent
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
    """The command in ``cwd``, with the suite's build folder (not a new one in ``cwd``)."""
    env = {**os.environ, "MKCLEAN_BUILD": str(build.DEFAULT_BUILD_ROOT.resolve())}
    return subprocess.run([sys.executable, "-m", "mkclean.sim.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def replay_of(stderr):
    """The command a failed `mkclean run` prints to replay it with waves."""
    found = re.search(r"replay with waves: mkclean (run .*)$", stderr, re.M)
    assert found, stderr
    return found[1].split()


@pytest.mark.parametrize("plant", ["missing-flush", "missing-writeback"])
def test_failed_run_replays_with_its_window(plant, tmp_path):
    """A kernel that forgets the TLB flush in page_mkclean fails invariant 2 on the RTL's
    TLB; one whose writeback never writes loses writes. Each prints a replay command with
    a window of waves around where it failed; run as printed, it fails the same way and
    its trace holds that window: for the flush, the page's mkclean; for the lost write,
    the last store to the lost page."""
    first = mkclean("run", "--backend", "rtl", "--workload", "random", "--accesses", "4000",
                    "--seed", "3", "--no-progress", "--plant", plant, "--json", "first.json",
                    cwd=tmp_path)
    assert first.returncode == 1, first.stderr
    argv = replay_of(first.stderr)
    assert argv[argv.index("--plant") + 1] == plant
    cycle, window = (int(argv[argv.index(o) + 1]) for o in ("--waves-at", "--waves-window"))
    again = mkclean(*argv, "--json", "again.json", cwd=tmp_path)
    assert again.returncode == 1, again.stderr
    assert replay_of(again.stderr) == argv          # the same failure, at the same cycle
    runs = [json.loads((tmp_path / f).read_text()) for f in ("first.json", "again.json")]
    assert runs[0]["failure_cycle"] == runs[1]["failure_cycle"] == cycle
    folder = tmp_path / argv[argv.index("--waves") + 1]
    trace = Trace(folder / "trace.fst")
    lo, hi = trace.cycles
    start = max(0, cycle - window)
    assert start <= lo <= start + 1 and cycle - 1 <= hi <= cycle + window + 1, (lo, hi)
    assert (folder / "trace.gtkw").exists()
    top = "mkclean_batch_tb"
    if plant == "missing-flush":
        pfn = int(re.search(r"<Page pfn=(\d+)", first.stderr)[1])
        events = trace.changes([f"{top}.kernel_event", f"{top}.kernel_addr"], lo, hi)
        addr_at = dict(events[f"{top}.kernel_addr"])
        mkcleans = [t for t, e in events[f"{top}.kernel_event"]
                    if e == KernelEvent.PAGE_MKCLEAN and addr_at.get(t) == pfn << 12]
        assert any(trace.cycle_of(t) <= cycle for t in mkcleans), (pfn, cycle)
    else:
        frame = runs[0]["failure_paddr"] >> 12
        answers = trace.changes([f"{top}.u.resp__payload.paddr"], lo, hi)
        assert any(v >> 12 == frame for _, v in answers[f"{top}.u.resp__payload.paddr"])

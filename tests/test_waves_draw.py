"""``mkclean waves``: the trace reader (sim/waves/trace.py), the picture (draw.py) and the
command (command.py), on a real trace of the batch top (tests/cosim_benches/waves_walk.py:
a walk, a page fault, a kernel event) and on the bad input a user may give it."""

import io
import json
import struct
import time
from pathlib import Path

import pytest
import vcd

from cosim_benches.waves_walk import QUIET
from mkclean.sim import cli
from mkclean.sim.cosim import build
from mkclean.sim.waves.draw import Row, draw
from mkclean.sim.waves.trace import Trace, TraceError

PERIOD_PS = 10_000


def run_walk(folder, trace_format):
    seen = folder / "seen.json"
    # What `mkclean run --backend rtl` builds: one traced simulator for the suite.
    results = build.run("cosim_benches.waves_walk",
                        {"phys_size": 64 << 20, "batch_depth": build.RTL_BATCH_DEPTH},
                        waves=build.Waves(folder, format=trace_format),
                        env={"MKCLEAN_WAVES_WALK_OUT": str(seen)})
    assert [(r.name, r.passed) for r in results] == [("walk_then_fault", True)], \
        results[0].message if results else "cocotb ran nothing"
    return folder / f"trace.{trace_format}", json.loads(seen.read_text())


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    """The bench's FST trace and what the bench saw (its cycles, its answers)."""
    return run_walk(tmp_path_factory.mktemp("walk"), "fst")


def waves(argv, capfd):
    """``mkclean waves ARGV``: (exit status, stdout, stderr), stderr as the process's file
    descriptor has it (the Rust trace reader writes there, not to sys.stderr)."""
    status = cli.main(["waves", *map(str, argv)])
    out, err = capfd.readouterr()
    return status, out, err


def png_size(path):
    """(width, height) from a PNG's header, which must be a PNG's."""
    head = Path(path).read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path} is no PNG"
    return struct.unpack(">II", head[16:24])


def signal(drawn, label):
    (found,) = [s for s in drawn["signals"] if s["label"] == label]
    return found


def value_at(changes, cycle):
    """The decoded value a signal's changes (from --json) hold at the end of ``cycle``."""
    texts = [c["text"] for c in changes if c["cycle"] <= cycle]
    return texts[-1]


# -- the reader --------------------------------------------------------------------------

def test_reader_finds_the_clock_and_the_window(walk):
    path, seen = walk
    trace = Trace(path)
    assert trace.period == PERIOD_PS
    first, last = trace.cycles
    # The bench ends on the rising edge QUIET cycles after the batch's end: in that cycle.
    assert (first, last) == (0, seen["end_cycle"] + QUIET - 1)
    assert trace.cycle_of(trace.time_of(17)) == 17
    assert trace.cycle_of(trace.time_of(17) + PERIOD_PS - 1) == 17
    assert trace.widths["mkclean_batch_tb.clk"] == 1
    assert trace.widths["mkclean_batch_tb.kernel_addr"] == 64
    # The value in force at a window's start comes first, at the start.
    clk = trace.changes(["mkclean_batch_tb.clk"], 5, 6)["mkclean_batch_tb.clk"]
    assert clk == [(5 * PERIOD_PS, 0), (5 * PERIOD_PS + PERIOD_PS // 2, 1),
                   (6 * PERIOD_PS, 0), (6 * PERIOD_PS + PERIOD_PS // 2, 1)]
    # The reader streams a var once (pywellen gives nothing the second time): again.
    assert trace.changes(["mkclean_batch_tb.clk"], 5, 6)["mkclean_batch_tb.clk"] == clk
    with pytest.raises(TraceError, match="no signal 'nowhere.x'"):
        trace.changes(["nowhere.x"], 0, 1)


def write_vcd(path, changes, vars_):
    """A VCD as pyvcd writes it, in ns: ``changes`` (time, var, value), ``vars_`` var ->
    (scope, width)."""
    buf = io.StringIO()
    with vcd.VCDWriter(buf, timescale="1 ns", date="today") as writer:
        handles = {name: writer.register_var(scope, name, "wire", size=width)
                   for name, (scope, width) in vars_.items()}
        for t, name, value in sorted(changes, key=lambda c: c[0]):
            writer.change(handles[name], t, value)
    path.write_text(buf.getvalue())


def test_reader_reads_vcd_with_unknown_bits(tmp_path):
    """A VCD (pyvcd's, in ns): times become ps, x bits a value of None."""
    path = tmp_path / "small.vcd"
    write_vcd(path, [(t, "clk", (t // 5) % 2) for t in range(0, 100, 5)] +
              [(0, "state", "x"), (12, "state", 1), (33, "state", 2)],
              {"clk": ("top", 1), "state": ("top.u", 2)})
    trace = Trace(path)
    assert trace.widths == {"top.clk": 1, "top.u.state": 2}
    assert (trace.period, trace.cycles) == (PERIOD_PS, (0, 9))
    assert trace.changes(["top.u.state"], 0, 9) == {
        "top.u.state": [(0, None), (12_000, 1), (33_000, 2)]}
    assert trace.changes(["top.u.state"], 2, 2) == {"top.u.state": [(20_000, 1)]}


def test_a_trace_without_clock_has_vars_but_no_cycles(tmp_path, capfd):
    path = tmp_path / "noclock.vcd"
    write_vcd(path, [(0, "state", 0), (12, "state", 1)], {"state": ("top", 2)})
    trace = Trace(path)
    assert trace.widths == {"top.state": 2}     # what the GTKWave save file needs
    with pytest.raises(TraceError, match="no 'clk' signal"):
        trace.cycles
    assert_refused(*waves([path, "-o", tmp_path / "x.png"], capfd), "no 'clk' signal")


# -- the picture -------------------------------------------------------------------------

def test_png_is_drawn_from_a_real_trace_with_decoded_values(walk, tmp_path, capfd):
    path, seen = walk
    out = tmp_path / "walk.png"
    at = seen["batch_cycle"]
    status, stdout, err = waves([path, "--at", at, "--window", 35, "-o", out, "--json"],
                                capfd)
    assert status == 0, err
    width, height = png_size(out)
    assert width >= 1200 and 400 <= height <= 4000
    assert out.stat().st_size > 20_000    # drawn rows and labels, not an empty frame
    drawn = json.loads(stdout)
    assert (drawn["first_cycle"], drawn["last_cycle"], drawn["at"]) == (at - 35, at + 35, at)
    assert drawn["period_ps"] == PERIOD_PS

    # The walker: idle before the batch, walking within a few cycles of it, idle after.
    state = signal(drawn, "walker state")["changes"]
    assert value_at(state, at - 1) == "IDLE"
    walking = [c["cycle"] for c in state if c["text"] == "WALK"]
    assert walking and at <= walking[0] <= at + 4, state
    assert value_at(state, seen["end_cycle"]) == "IDLE"
    # The answers: the mapped load's paddr, then the unmapped one's page fault.
    paddr, fault = seen["answers"]
    assert paddr == seen["paddr"] and fault < 0
    causes = {c["text"] for c in signal(drawn, "cause")["changes"]}
    assert "LOAD_PAGE" in causes, causes
    paddrs = {c["value"] for c in signal(drawn, "paddr")["changes"]}
    assert seen["paddr"] in paddrs
    # The kernel's event: between two clock edges of the cycle the bench showed it in.
    (event,) = drawn["events"]
    assert (event["event"], event["addr"], event["cycle"]) == ("DO_FAULT", seen["unmapped"],
                                                               seen["event_cycle"])
    assert event["time_ps"] % PERIOD_PS < PERIOD_PS // 2    # before the rising edge


def test_vcd_and_fst_of_one_run_draw_the_same(walk, tmp_path_factory, capfd):
    """The same run traced as VCD (another simulator build) reads as its FST does."""
    fst, seen = walk
    vcd_trace, vcd_seen = run_walk(tmp_path_factory.mktemp("walk-vcd"), "vcd")
    assert vcd_seen == seen
    drawn = []
    for path in (fst, vcd_trace):
        status, stdout, err = waves([path, "--at", seen["batch_cycle"], "--window", 35,
                                     "-o", path.with_suffix(".png"), "--json"], capfd)
        assert status == 0, err
        drawn.append({k: v for k, v in json.loads(stdout).items() if k != "file"})
    assert drawn[0] == drawn[1]
    assert drawn[0]["events"] and drawn[0]["signals"]


def test_window_defaults_to_the_first_kernel_event(walk, tmp_path, capfd):
    path, seen = walk
    status, stdout, err = waves([path, "-o", tmp_path / "w.png", "--json",
                                 "--signals", "walker,kernel"], capfd)
    assert status == 0, err
    drawn = json.loads(stdout)
    assert drawn["at"] == seen["event_cycle"]
    assert {s["group"] for s in drawn["signals"]} == {"walker", "kernel"}


def test_a_window_past_the_trace_is_cut_to_it(walk, tmp_path, capfd):
    path, seen = walk
    status, stdout, err = waves([path, "--at", 1, "--window", 100_000, "-o", tmp_path / "w.png",
                                 "--json", "--signals", "walker"], capfd)
    assert status == 0, err
    drawn = json.loads(stdout)
    assert [drawn["first_cycle"], drawn["last_cycle"]] == drawn["trace_cycles"]


def test_a_4000_cycle_window_draws_few_artists_and_fast(tmp_path):
    """Every row changing every cycle over 4000 cycles: a few artists a row (no label
    fits a stretch under a pixel wide), drawn in seconds."""
    cycles = 4000
    rows = []
    for i in range(24):
        kind = "bit" if i % 2 else "bus"
        rows.append(Row(f"g{i // 8}", f"row {i}", kind,
                        [(c + 0.5, c % 2 if kind == "bit" else c, f"0x{c:x}")
                         for c in range(cycles)]))
    rows.append(Row("g3", "kernel events", "events",
                    [(c + 0.0001, 1, f"TRAP 0x{c:x}") for c in range(0, cycles, 7)]))
    out = tmp_path / "long.png"
    began = time.perf_counter()
    fig = draw(rows, 0, cycles - 1, out, "4000 cycles")
    took = time.perf_counter() - began
    (ax,) = fig.axes
    assert len(ax.get_children()) < 4 * len(rows) + 40, len(ax.get_children())
    assert png_size(out)[0] >= 1200
    assert took < 60, f"{took:.1f} s"


def test_a_narrow_stretch_gets_its_value_cut_short_or_none():
    from mkclean.sim.waves.draw import _fit
    assert _fit("WALK", 100, 4.2) == "WALK"
    assert _fit("0x0000000000400010", 40, 4.2) == "0x000000…"
    assert _fit("0x0000000000400010", 12, 4.2) == ""


# -- bad input: one line naming the problem, exit 2 --------------------------------------

def assert_refused(status, stdout, err, *words):
    assert status == 2
    assert "Traceback" not in err and stdout == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mkclean waves: "), err
    for word in words:
        assert word in lines[0], lines[0]


def test_missing_trace(tmp_path, capfd):
    missing = tmp_path / "nothere.fst"
    assert_refused(*waves([missing, "-o", tmp_path / "x.png"], capfd), str(missing),
                   "no such file")


def test_empty_trace(tmp_path, capfd):
    empty = tmp_path / "empty.fst"
    empty.write_bytes(b"")
    assert_refused(*waves([empty, "-o", tmp_path / "x.png"], capfd), "empty")


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.95, 0.99])
def test_truncated_trace(walk, tmp_path, capfd, fraction):
    path, _ = walk
    data = path.read_bytes()
    cut = tmp_path / "cut.fst"
    cut.write_bytes(data[:int(len(data) * fraction)])
    assert_refused(*waves([cut, "-o", tmp_path / "x.png"], capfd), str(cut))
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n" + bytes(200),
                                     b"not a trace, some notes\n"])
def test_foreign_file(tmp_path, capfd, content):
    foreign = tmp_path / "notes.fst"
    foreign.write_bytes(content)
    assert_refused(*waves([foreign, "-o", tmp_path / "x.png"], capfd), str(foreign),
                   "cannot be read as a trace")


def test_unknown_group(walk, tmp_path, capfd):
    path, _ = walk
    assert_refused(*waves([path, "--signals", "walker,pagetables", "-o", tmp_path / "x.png"],
                          capfd), "'pagetables'", "walker")


def test_at_outside_the_trace(walk, tmp_path, capfd):
    path, _ = walk
    last = Trace(path).cycles[1]
    assert_refused(*waves([path, "--at", last + 1, "-o", tmp_path / "x.png"], capfd),
                   f"--at {last + 1}", f"to {last}")
    assert_refused(*waves([path, "--at", -3, "-o", tmp_path / "x.png"], capfd), "--at -3")


@pytest.mark.parametrize("argv, words", [
    (["--window", "-1"], ["--window", "at least 0"]),
    (["--window", "ten"], ["--window", "'ten'"]),
    (["--at", "soon"], ["--at", "'soon'"]),
    ([], ["-o"]),
])
def test_bad_options(walk, tmp_path, capfd, argv, words):
    path, _ = walk
    out = [] if argv == [] else ["-o", tmp_path / "x.png"]
    assert_refused(*waves([path, *argv, *out], capfd), *words)

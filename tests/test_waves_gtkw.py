"""The signal catalogue (sim/waves/catalogue.py) and the GTKWave save file written beside
every trace (sim/waves/gtkw.py), on a real trace of the batch top
(tests/cosim_benches/waves_gtkw.py: walks, an A/D update, two faults, every kernel
event): the catalogue's signals are in the dump with their widths, the save file names
only vars of the dump (vectors with their range), each enum filter covers its enum and
what the RTL puts on the signal, the PTE process filter decodes, and GTKWave itself
loads the save file without dropping a signal."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth.hdl import Shape

from mkclean.hdl.pte import Pte
from mkclean.hdl.ptw import Leaf, WalkState
from mkclean.sim.cosim import build
from mkclean.sim.hw.seam import KernelEvent
from mkclean.sim.waves import catalogue, gtkw
from mkclean.sim.waves.trace import Trace

from cosim_benches.waves_gtkw import KERNEL_ADDR

#: What `mkclean run --backend rtl` builds: the suite builds one traced simulator for it,
#: these tests' and the replays' (tests/test_waves_replay.py).
PARAMS = {"phys_size": 64 << 20, "batch_depth": build.RTL_BATCH_DEPTH}


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    """The bench's trace, read, and its save file (written by build.run)."""
    folder = tmp_path_factory.mktemp("waves")
    results = build.run("cosim_benches.waves_gtkw", PARAMS,
                        waves=build.Waves(folder, format="fst"))
    assert [r.passed for r in results] == [True], results
    trace = Trace(folder / "trace.fst")
    save = folder / "trace.gtkw"
    assert save.exists(), "build.run wrote no save file beside the trace"
    return trace, save


def values(trace, path):
    """Every value ``path`` takes in the trace."""
    first, last = trace.cycles
    return {v for _, v in trace.changes([path], first, last)[path] if v is not None}


def parse_save(save: Path):
    """The traces of a .gtkw file: (name, filter file, filter process), and the
    groups' titles in order."""
    flags, filter_file, filter_proc = 0, None, None
    traces, groups = [], []
    for line in save.read_text().splitlines():
        if not line or line.startswith(("[", "*")):
            continue
        if line.startswith("@"):
            flags = int(line[1:], 16)
        elif line.startswith("^>"):
            filter_proc = line.split(" ", 1)[1]
        elif line.startswith("^"):
            filter_file = line.split(" ", 1)[1]
        elif line.startswith("-"):
            if flags & 0x800000:        # grp_begin
                groups.append(line[1:])
        else:
            name = re.sub(r"^\+\{[^}]*\} ", "", line)
            traces.append((name,
                           filter_file if flags & 0x2000 else None,     # ftranslated
                           filter_proc if flags & 0x4000 else None))    # ptranslated
    return traces, groups


def parse_filter(path: Path):
    pairs = [line.split(None, 1) for line in Path(path).read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    return {value: name.strip() for value, name in pairs}


def test_every_catalogue_signal_is_in_the_dump_with_its_width(traced):
    """A renamed or resized signal of the gateware breaks this, not the save file."""
    trace, _ = traced
    assert catalogue.missing(trace.widths) == []
    probes = catalogue.probes(trace.widths)
    entries = [p for p in probes if re.fullmatch(r".*\.tlb\.entry\d+", p.path)]
    assert len(entries) == build.DEFAULT_PARAMS["tlb_entries"]
    assert len(probes) == len(catalogue.CATALOGUE) - 1 + len(entries)
    assert {p.group for p in probes} == set(catalogue.GROUPS)
    assert catalogue.top_of(trace.widths) == catalogue.TOP
    assert trace.widths[f"{catalogue.MMU}.ptw.state"] == Shape.cast(WalkState).width


def test_probes_leave_out_what_a_trace_lacks():
    state_bits = Shape.cast(WalkState).width
    widths = {f"{catalogue.MMU}.ptw.state": state_bits, f"{catalogue.MMU}.ptw.pte": 63}
    probes = catalogue.probes(widths)
    assert [p.label for p in probes] == ["walker state"]
    assert probes[0].decode(1) == "WALK" and probes[0].decode(None) == "x"
    assert f"{catalogue.MMU}.ptw.pte (63 bits, not 64)" in catalogue.missing(widths)
    # The bare MMU's testbench top: the same MMU inside.
    bare = {"mkclean_mmu_tb.clk": 1, "mkclean_mmu_tb.u.mmu.ptw.state": state_bits}
    assert [p.path for p in catalogue.probes(bare)] == ["mkclean_mmu_tb.u.mmu.ptw.state"]


def test_save_file_names_only_vars_of_the_dump(traced):
    trace, save = traced
    traces, groups = parse_save(save)
    probes = catalogue.probes(trace.widths)
    assert [name for name, _, _ in traces] == [gtkw.gtkw_name(p) for p in probes]
    for name, _, _ in traces:
        ranged = re.fullmatch(r"(.*)\[(\d+):0\]", name)
        if ranged:
            assert trace.widths[ranged[1]] == int(ranged[2]) + 1 > 1, name
        else:
            assert trace.widths[name] == 1, f"{name}: a vector named without its range"
    assert groups == [gtkw.GROUP_TITLES[g] for g in catalogue.GROUPS]
    assert str(trace.path.resolve()) in save.read_text()


def test_enum_filters_cover_their_enum_and_what_the_rtl_produces(traced):
    """Each filter file holds every member of its enum and nothing else, keyed as
    GTKWave shows the signal (hex, padded to its digits); the enum spans the signal's
    width, and every value the run put on a filtered signal has a name."""
    trace, save = traced
    traces, _ = parse_save(save)
    filtered = {name: f for name, f, _ in traces if f}
    assert filtered, "no signal goes through a filter file"
    seen = set()
    for name, path in filtered.items():
        path = Path(path)
        assert path.parent == save.parent and path.exists(), path
        enum = catalogue.ENUMS[re.fullmatch(r"filter_(\w+)\.txt", path.name)[1]].enum
        base = re.sub(r"\[\d+:0\]$", "", name)
        width = trace.widths[base]
        digits = (width + 3) // 4
        table = parse_filter(path)
        assert table == {f"{m.value:0{digits}X}": m.name for m in enum}, path
        # The signal is as wide as the enum: the RTL cannot put a wider value on it.
        assert max(m.value for m in enum).bit_length() <= width
        for value in values(trace, base):
            assert f"{value:0{digits}X}" in table, f"{base} = {value:#x} has no name"
        seen.add(enum)
    assert {WalkState, KernelEvent} <= seen


def test_walker_states_and_causes_read_by_name(traced):
    trace, _ = traced
    probes = {p.label: p for p in catalogue.probes(trace.widths)}
    states = {probes["walker state"].decode(v)
              for v in values(trace, probes["walker state"].path)}
    assert states == {m.name for m in WalkState}
    causes = {probes["cause"].decode(v) for v in values(trace, probes["cause"].path)}
    assert {"NONE", "STORE_PAGE", "LOAD_PAGE"} <= causes


def test_kernel_events_read_by_name_beside_their_address(traced):
    trace, _ = traced
    event, addr = (f"{catalogue.TOP}.kernel_event", f"{catalogue.TOP}.kernel_addr")
    probes = {p.path: p for p in catalogue.probes(trace.widths)}
    first, last = trace.cycles
    changes = trace.changes([event, addr], first, last)
    addr_at = dict(changes[addr])
    shown = {}
    for time, value in changes[event]:
        if value:
            shown[probes[event].decode(value)] = probes[addr].decode(addr_at[time])
    assert shown == {m.name: f"0x{KERNEL_ADDR + m.value:016x}"
                     for m in KernelEvent if m is not KernelEvent.NONE}


def run_filter(script: Path, lines):
    r = subprocess.run([str(script)], input="".join(f"{line}\n" for line in lines),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_pte_process_filter_decodes_a_pte(traced):
    trace, save = traced
    traces, _ = parse_save(save)
    procs = {Path(p).name: Path(p) for _, _, p in traces if p}
    assert {"decode_Pte.py", "decode_Leaf.py", "decode_TlbEntry.py"} <= set(procs)
    script = procs["decode_Pte.py"]
    assert script.read_text().startswith(f"#!{Path(sys.executable).absolute()}\n")
    pte = 0x12345 << 10 | 0b1101_0111                       # D A - U - W R V
    digits = (Shape.cast(Pte).width + 3) // 4
    lines = [f"{pte:0{digits}X}", "x" * digits, f"{1 << 63 | 1:016x}"]
    assert run_filter(script, lines) == [
        "V R W - U - A D ppn=0x12345", "x" * digits, "V - - - - - - - N ppn=0x0"]
    leaf = 1 << Shape.cast(Pte).width | pte                  # level 1
    assert run_filter(procs["decode_Leaf.py"], [f"{leaf:X}"]) == [
        "V R W - U - A D ppn=0x12345 vpn=0x0 (2M)"]
    # Every PTE-shaped signal goes through the one PTE decoder.
    pte_paths = [name for name, _, p in traces if p and Path(p).name == "decode_Pte.py"]
    assert {f"{catalogue.MMU}.bus__dat_r[63:0]", f"{catalogue.MMU}.ptw.pte[63:0]"} <= set(
        pte_paths)
    assert trace.widths[f"{catalogue.MMU}.ptw.fill__payload"] == Shape.cast(Leaf).width


def test_save_file_command_refuses_a_missing_trace(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mkclean.sim.waves.gtkw",
                        str(tmp_path / "none.fst")], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "no such file" in r.stderr, r.stderr


#: Lists what GTKWave displays once the save file is loaded, then quits.
LIST_SIGNALS = """foreach s [gtkwave::getDisplayedSignals] { puts "SIGNAL $s" }
gtkwave::/File/Quit
"""


def test_gtkwave_loads_the_save_file_without_dropping_a_signal(traced, tmp_path):
    """The real GTKWave, headless (Debian: gtkwave, xvfb, xauth): it silently leaves out
    a trace line it cannot find in the dump."""
    missing = [tool for tool in ("gtkwave", "xvfb-run") if not shutil.which(tool)]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: apt-get install gtkwave xvfb xauth")
    trace, save = traced
    script = tmp_path / "list.tcl"
    script.write_text(LIST_SIGNALS)
    r = subprocess.run(["xvfb-run", "-a", "gtkwave", "-S", str(script), str(trace.path),
                        str(save)], capture_output=True, text=True, timeout=120)
    # A one-bit port of the testbench top is a [0:0] vector in the Verilog: GTKWave finds
    # it by its plain name, and shows it with its one bit.
    shown = [re.sub(r"\[0\]$", "", line.split(" ", 1)[1]) for line in r.stdout.splitlines()
             if line.startswith("SIGNAL ")]
    traces, _ = parse_save(save)
    assert shown == [name for name, _, _ in traces], r.stdout + r.stderr

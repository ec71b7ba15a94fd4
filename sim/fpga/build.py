"""Building bitstreams and timing the MMU, with the YoWASP tools, cached.

Two flows:

- :func:`build_board`: the board top (hdl/boards/) on a board's amaranth-boards platform.
  Amaranth writes the build (``platform.build(..., do_build=False)``: the ULX3S platform
  would otherwise demand openFPGALoader, which a build does not need) and its script runs
  yosys, nextpnr-ecp5 (with ``--report``) and ecppack in the build folder, the only place
  the YoWASP tools can see.
- :func:`build_ooc`: the MMU alone, out of context (its Verilog, yosys ``synth_ecp5``,
  ``nextpnr-ecp5 --85k --package CABGA381 --out-of-context --freq 100``): its Fmax and
  size without the board around it; :func:`sweep` runs it at several TLB sizes at once.

Every build lives in a folder named by a hash of what it depends on (the gateware's
sources, the board, the parameters, the tools' versions and options): a build that
finds its report there is done in a moment. While the tools run, one progress line says
which tool and for how long (:class:`Progress`).
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ... import hdl as hdl_package
from ...hdl import verilog as hdl_verilog
from ...hdl.boards.platforms import BOARDS, BoardShell
from . import report as report_, tools

#: The suite's build root, as sim/cosim/build.py's DEFAULT_BUILD_ROOT (not imported: that
#: module brings the co-simulation and the waves with it); builds go to its fpga/.
DEFAULT_BUILD_ROOT = Path(os.environ.get("MKCLEAN_BUILD", "build"))
#: The board top's parameters and their defaults (hdl/boards/top.py's BoardTop).
TOP_DEFAULTS = dict(baud=115200, phys_size=256 << 10, tlb_entries=16, walk_cache_entries=8)
#: The MMU clock the issue asks for, MHz.
TARGET_MHZ = 100
#: The TLB sizes the sweep sets side by side.
SWEEP_ENTRIES = (8, 16, 32)
#: nextpnr's options for every build: a design that misses its clock still gets its
#: report, which says so (the Fmax is the figure this flow exists for); router2, because
#: router1 stalls on the board top's block-RAM read mux (30,000 arcs left after 20 minutes
#: on the ULX3S, where router2 converges in a few).
NEXTPNR_OPTS = ("--timing-allow-fail", "--router", "router2")
#: The out-of-context MMU is routed with router2's timing-driven rip-up, which reroutes
#: the critical nets: the MMU's critical paths are mostly routing, of nets with hundreds
#: of loads, and without it one placement seed to the next moved the 16-entry MMU's Fmax
#: between 68 and 102 MHz (issue 11; 99.4 to 101.2 with it, five seeds). In this nextpnr
#: rip-up ends only when every arc meets the clock or after 1,500 router iterations: for
#: a design that cannot meet it (the 32-entry MMU at 100 MHz) that was 12 minutes a seed
#: here. So it is given up after RIPUP_ITERATIONS iterations (a count in nextpnr's log,
#: the same on every machine; the MMUs that meet the clock take 20 to 50) and that seed
#: is routed again without it; the report says so.
OOC_RIPUP = ("--tmg-ripup",)
RIPUP_ITERATIONS = 150
#: The device and package the out-of-context flow places on (the ULX3S 85F's).
OOC_DEVICE = ("--85k", "--package", "CABGA381")


class BuildFailed(RuntimeError):
    """A tool ended with an error; the message names it and holds its log's tail."""


def fpga_root(root=None):
    """The folder builds go to: ``<build root>/fpga``."""
    return Path(root or DEFAULT_BUILD_ROOT).resolve() / "fpga"


def gateware_digest(extra=()):
    """A hash of the gateware's sources (every .py under hdl/) and the files ``extra``:
    what a bitstream depends on besides its parameters, the tools and their options."""
    h = hashlib.sha256()
    hdl_dir = Path(hdl_package.__file__).parent
    files = [(f"hdl/{p.relative_to(hdl_dir)}", p) for p in sorted(hdl_dir.rglob("*.py"))]
    files += [(str(p), Path(p)) for p in extra]
    for name, path in files:
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def cache_key(**what):
    """The hash that names a build's folder: the gateware's, ``what`` (JSON-able), the
    tools' versions and the options this flow gives them."""
    text = json.dumps({**what, "versions": tools.versions(), "nextpnr": NEXTPNR_OPTS,
                       "ooc_device": OOC_DEVICE, "ooc_ripup": [*OOC_RIPUP, RIPUP_ITERATIONS]},
                      sort_keys=True)
    extra = [what["make_top_file"]] if what.get("make_top_file") else []
    return hashlib.sha256((gateware_digest(extra) + text).encode()).hexdigest()


# -- progress ---------------------------------------------------------------------------

class Progress:
    """One line on stderr while tools run: which tool each job runs, and for how long.

    On a terminal the line is redrawn every second; elsewhere (a log, a test) a line is
    written when a tool starts, so that the log shows the steps without a flood.

    Parameters
    ----------
    label : str
        What is being built.
    enabled : bool
        False writes nothing.
    """

    def __init__(self, label, enabled=True, stream=None):
        self.label, self.enabled = label, enabled
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start = time.monotonic()
        self._last = None

    def update(self, status):
        if not self.enabled:
            return
        elapsed = int(time.monotonic() - self.start)
        if self.tty:
            line = f"{self.label}: {status}  {elapsed // 60}:{elapsed % 60:02d}"
            self.stream.write("\r" + line.ljust(79)[:79])
            self.stream.flush()
        elif status != self._last:
            self.stream.write(f"{self.label}: {status} (at {elapsed} s)\n")
            self.stream.flush()
        self._last = status

    def done(self):
        if self.enabled and self.tty:
            self.stream.write("\r" + " " * 79 + "\r")
            self.stream.flush()


@dataclass
class Bound:
    """A command given up once ``gave_up(folder)`` is true, and ``instead`` run in its
    place; ``marker``, a file written in the folder, says that it was."""
    gave_up: object
    instead: list
    marker: str


@dataclass
class Job:
    """Commands run one after the other in ``folder``, output to ``folder/build.log``.

    ``commands`` are ``(tool, argv)``; ``stage`` (optional) names the tool running from
    the files in the folder, for a command that runs several (Amaranth's script).
    ``bounded`` (optional) maps a command's index to a :class:`Bound`."""
    name: str
    folder: Path
    commands: list
    env: dict
    stage: object = None
    bounded: dict = field(default_factory=dict)
    proc: object = field(default=None, repr=False)
    index: int = 0
    started: float = 0.0
    seconds: float = 0.0

    @property
    def tool(self):
        if self.proc is None:
            return "waiting"
        if self.index >= len(self.commands):
            return "done"
        return self.stage(self.folder) if self.stage else self.commands[self.index][0]

    def _start(self):
        tool, argv = self.commands[self.index]
        log = open(self.folder / "build.log", "a")
        log.write(f"$ {' '.join(argv)}\n")
        log.flush()
        self.proc = subprocess.Popen(argv, cwd=self.folder, env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()

    def step(self):
        """Start the job, or its next command; True while it runs. A failed command
        raises BuildFailed."""
        if self.proc is None:
            self.started = time.monotonic()
            self._start()
            return True
        if self.index >= len(self.commands):
            return False
        code = self.proc.poll()
        if code is None:
            bound = self.bounded.get(self.index)
            if bound is not None and bound.gave_up(self.folder):
                self.kill()
                del self.bounded[self.index]
                (self.folder / bound.marker).write_text(
                    f"gave up: {' '.join(self.commands[self.index][1])}\n")
                self.commands[self.index] = (self.commands[self.index][0], bound.instead)
                self._start()
            return True
        if code != 0:
            tool = self.tool
            tail = (self.folder / "build.log").read_text(errors="replace").splitlines()[-15:]
            raise BuildFailed(f"{self.name}: {tool} failed (exit status {code}); the end of "
                              f"{self.folder / 'build.log'}:\n" + "\n".join(tail))
        self.index += 1
        if self.index >= len(self.commands):
            self.seconds = time.monotonic() - self.started
            return False
        self._start()
        return True

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def run_jobs(jobs, progress, parallel=None):
    """Run ``jobs``, ``parallel`` at a time (default: the CPUs), showing progress."""
    parallel = parallel or os.cpu_count() or 1
    pending, running = list(jobs), []
    try:
        while pending or running:
            while pending and len(running) < parallel:
                job = pending.pop(0)
                job.step()
                running.append(job)
            running = [job for job in running if job.step()]
            status = ", ".join(f"{job.name} {job.tool}" for job in jobs if job.tool != "done")
            if status:
                progress.update(status)
            time.sleep(0.5)
    finally:
        for job in jobs:
            job.kill()
        progress.done()


# -- a board ----------------------------------------------------------------------------

def _amaranth_stage(folder):
    """Which tool Amaranth's build script runs, from what it has written so far."""
    if (folder / "top.config").exists():
        return "ecppack"
    if (folder / "top.json").exists():
        return "nextpnr-ecp5"
    return "yosys"


def build_board(board="ulx3s-85f", *, clk_freq=None, root=None, progress=True,
                make_top=None, **top_params):
    """Build ``board``'s bitstream (or find it built) and return its report.

    Parameters
    ----------
    board : str
        A key of :data:`~mkclean.hdl.boards.platforms.BOARDS`.
    clk_freq : float or None
        The MMU's clock, Hz; ``None`` is the board's oscillator (no PLL).
    root : Path or None
        The build root (default: the suite's, ``$MKCLEAN_BUILD`` or ``build``).
    progress : bool
        Show the progress line.
    make_top : callable or None
        Instead of hdl/boards/top.py's BoardTop (a stand-in, for the flow's own tests).
    **top_params
        The board top's parameters (:data:`TOP_DEFAULTS`).

    Returns
    -------
    dict
        The report (:func:`~.report.format_report` shows it): ``board``, ``lut4``,
        ``ff``, ``bram``, ``fmax_mhz``, ``tlb_entries``, ``seconds`` and the rest.
    """
    spec = BOARDS[board]
    params = {**TOP_DEFAULTS, **top_params}
    make_top_file = None
    if make_top is not None:
        make_top_file = sys.modules[make_top.__module__].__file__
    key = cache_key(kind="board", board=board, clk_freq=clk_freq, params=params,
                    make_top_file=make_top_file)
    folder = fpga_root(root) / f"{board}-tlb{params['tlb_entries']}-{key[:16]}"
    cached = _cached(folder)
    if cached is not None:
        return cached

    start = time.monotonic()
    shown = Progress(f"mkclean build {board}", progress)
    shown.update("amaranth (elaborating the design, writing RTLIL)")
    shell = BoardShell(spec, clk_freq=clk_freq, make_top=make_top, **params)
    platform = spec.make_platform()
    plan = platform.build(shell, name="top", do_build=False,
                          nextpnr_opts=" ".join(("--report top.report.json",) + NEXTPNR_OPTS))
    if folder.exists():
        shutil.rmtree(folder)
    plan.extract(folder)
    job = Job(board, folder, [("build", ["sh", f"{plan.script}.sh"])],
              tools.tool_env(), stage=_amaranth_stage)
    run_jobs([job], shown)

    # The board top has one clock, the MMU's (the PLL's input only feeds the PLL).
    figures = report_.read_nextpnr(folder / "top.report.json")
    bit = folder / "top.bit"
    result = {
        "board": board, "title": spec.title, **figures,
        "tlb_entries": params["tlb_entries"],
        "walk_cache_entries": params["walk_cache_entries"],
        "phys_size": params["phys_size"], "baud": params["baud"],
        "clk_mhz": round(shell.clk_freq / 1e6, 3),
        "clock_source": (f"EHXPLLL from the {spec.clk_freq / 1e6:g} MHz oscillator"
                         if shell.pll else "the board's oscillator"),
        "target_mhz": TARGET_MHZ,
        "device": platform.device,
        "bitstream": str(bit), "bitstream_bytes": bit.stat().st_size,
        "idcode": report_.bitstream_idcode(bit),
        "program": spec.program.format(bit=bit),
        "seconds": round(time.monotonic() - start, 1),
        "key": key, "gateware": gateware_digest(), "versions": tools.versions(),
    }
    _store(folder, result)
    return {**result, "cached": False}


def _cached(folder):
    try:
        result = json.loads((folder / "report.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return {**result, "cached": True}


def _store(folder, result):
    # Written last, and by rename: a report in the folder means the build is whole.
    tmp = folder / "report.json.tmp"
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(folder / "report.json")


# -- the MMU alone ------------------------------------------------------------------------

def ooc_job(tlb_entries, *, walk_cache_entries=8, phys_size=256 << 10, freq_mhz=TARGET_MHZ,
            seeds=1, root=None):
    """The out-of-context build of the MMU at ``tlb_entries`` as a :class:`Job`, with its
    folder and key; ``None`` for the job when its report is cached. One synthesis, then
    nextpnr once for each placement seed 1 to ``seeds``."""
    params = dict(tlb_entries=tlb_entries, walk_cache_entries=walk_cache_entries,
                  phys_size=phys_size)
    key = cache_key(kind="ooc", freq_mhz=freq_mhz, params=params, seeds=seeds)
    folder = fpga_root(root) / f"ooc-tlb{tlb_entries}-{key[:16]}"
    meta = {"params": params, "freq_mhz": freq_mhz, "key": key, "folder": folder,
            "seeds": seeds}
    if _cached(folder) is not None:
        return None, meta
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    top = hdl_verilog.top_name(**params)
    with open(folder / "mmu.v", "w") as f:
        hdl_verilog.generate(f, **params)
    commands = [("yosys", [tools.tool_path("yosys"), "-q", "-l", "yosys.log", "-p",
                           f"read_verilog mmu.v; synth_ecp5 -top {top} -json mmu.json"])]
    bounded = {}
    for seed in range(1, seeds + 1):
        log = f"nextpnr.seed{seed}.log"
        argv = [tools.tool_path("nextpnr-ecp5"), *OOC_DEVICE, "--out-of-context",
                "--freq", str(freq_mhz), "--json", "mmu.json", "--seed", str(seed),
                "--report", _seed_report(seed), "--log", log, *NEXTPNR_OPTS, "--quiet"]
        bounded[len(commands)] = Bound(
            gave_up=lambda folder, log=log: router_iterations(folder / log) > RIPUP_ITERATIONS,
            instead=argv, marker=_no_ripup_marker(seed))
        commands.append((f"nextpnr-ecp5 (seed {seed})", argv + list(OOC_RIPUP)))
    return Job(f"{tlb_entries}-entry", folder, commands, dict(os.environ),
               bounded=bounded), meta


def router_iterations(log):
    """How many router2 iterations nextpnr's ``log`` shows so far."""
    try:
        return log.read_text(errors="replace").count(" iter=")
    except FileNotFoundError:
        return 0


def _no_ripup_marker(seed):
    return f"nextpnr.seed{seed}.no-ripup"


def _seed_report(seed):
    return f"report.nextpnr.seed{seed}.json"


def ooc_figures(folder, seeds):
    """The figures of an out-of-context build placed with seeds 1 to ``seeds``: the
    utilisation (the same netlist each time), ``fmax_mhz`` the mean of the seeds',
    ``fmax_by_seed``, ``fmax_min_mhz`` and ``fmax_max_mhz``, the slowest placement's
    critical path, and ``seeds_without_ripup``, the seeds whose rip-up was given up (see
    :data:`OOC_RIPUP`). Placement moves Fmax by several MHz, so one seed says little."""
    each = [report_.read_nextpnr(Path(folder) / _seed_report(seed))
            for seed in range(1, seeds + 1)]
    fmax = [f["fmax_mhz"] for f in each]
    slowest = min(each, key=lambda f: f["fmax_mhz"])
    no_ripup = [seed for seed in range(1, seeds + 1)
                if (Path(folder) / _no_ripup_marker(seed)).exists()]
    return {**slowest, "fmax_mhz": round(sum(fmax) / len(fmax), 2), "fmax_by_seed": fmax,
            "fmax_min_mhz": min(fmax), "fmax_max_mhz": max(fmax),
            "seeds_without_ripup": no_ripup}


def _ooc_result(meta, seconds):
    figures = ooc_figures(meta["folder"], meta["seeds"])
    return {**meta["params"], **figures, "freq_mhz": meta["freq_mhz"],
            "seeds": meta["seeds"], "seconds": round(seconds, 1), "key": meta["key"],
            "kind": "ooc", "gateware": gateware_digest()}


def sweep(entries=SWEEP_ENTRIES, *, seeds=1, root=None, progress=True, **params):
    """The MMU out of context at each TLB size of ``entries``, built in parallel (or found
    built), each placed with ``seeds`` seeds; a list of reports in the order of
    ``entries``."""
    made = [ooc_job(n, seeds=seeds, root=root, **params) for n in entries]
    jobs = [job for job, _ in made if job is not None]
    if jobs:
        run_jobs(jobs, Progress("mkclean build: the MMU alone", progress))
    results = []
    for job, meta in made:
        if job is None:
            results.append(_cached(meta["folder"]))
        else:
            result = _ooc_result(meta, job.seconds)
            _store(meta["folder"], result)
            results.append({**result, "cached": False})
    return results


# -- for mkclean bench ----------------------------------------------------------------------

def latest_fmax(root=None, tlb_entries=16):
    """The MMU clock's Fmax to turn cycles into ns: from the newest cached report of the
    out-of-context MMU at ``tlb_entries``, else of the default board (ULX3S 85F); reports
    of this gateware first. The MMU's own report first: the ns goal is the MMU's, and a
    board top's clock is bounded by its block RAM's read path as well.

    Returns
    -------
    tuple or None
        ``(fmax_mhz, where)``, ``where`` a phrase naming the report (and saying when it
        is of older gateware); ``None`` when nothing was built.
    """
    folder = fpga_root(root)
    if not folder.is_dir():
        return None
    current = gateware_digest()
    found = []
    for path in folder.glob("*/report.json"):
        try:
            r = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
        if r.get("tlb_entries") != tlb_entries:
            continue
        if r.get("kind") == "ooc":
            rank, what = 0, "the out-of-context MMU's nextpnr report"
        elif r.get("board") == "ulx3s-85f":
            rank, what = 1, "the ULX3S 85F build's nextpnr report"
        else:
            continue
        fresh = r.get("gateware") == current
        found.append(((not fresh, rank, -path.stat().st_mtime), r["fmax_mhz"],
                      what + ("" if fresh else ", of older gateware"), path))
    if not found:
        return None
    _, fmax, what, path = min(found)
    return fmax, f"{what} ({path})"

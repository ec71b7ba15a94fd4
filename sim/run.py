"""``mkclean run``: a workload on the kernel model over a hardware backend.

Prints a progress bar and a summary; ``--json PATH`` writes the figures. Exit status: 0,
1 if a write was lost or an outcome differed from the oracle, 2 for bad input.
"""

import json
import sys
from pathlib import Path

from mkclean.sim.argcheck import BadInput, integer, writable_dir, writable_file

USAGE_ERROR = 2


def add_workload_arguments(parser, workload="db", accesses="1000000"):
    """The options of what a run does, shared with ``mkclean compare``: the workload,
    its accesses and options (--set), the kernel's policy and A/D mode."""
    parser.add_argument("--workload", default=workload, metavar="NAME",
                        help=f"the workload: one of those listed below (default: {workload})")
    parser.add_argument("--accesses", default=accesses, metavar="N",
                        help=f"loads and stores to do (default: {accesses})")
    parser.add_argument("--policy", default="writenotify", metavar="P",
                        help="writenotify (the patch), legacy or hwdirty")
    parser.add_argument("--ad", default="svadu", metavar="A", help="svadu or svade")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a workload option, e.g. hot_pages=16 (repeatable)")
    parser.epilog = _workload_options_help()


def parse_workload(args):
    """The options of :func:`add_workload_arguments` checked: (workload class, its
    options, accesses), or BadInput."""
    from mkclean.sim.kernel.kernel import AD_MODES
    from mkclean.sim.kernel.policies import POLICIES
    from mkclean.sim.workloads import WORKLOADS
    if args.workload not in WORKLOADS:
        raise BadInput(f"unknown workload {args.workload!r}: choose one of "
                       f"{', '.join(WORKLOADS)}")
    if args.policy not in POLICIES:
        raise BadInput(f"unknown policy {args.policy!r}: choose one of {', '.join(POLICIES)}")
    if args.ad not in AD_MODES:
        raise BadInput(f"unknown ad mode {args.ad!r}: choose one of {', '.join(AD_MODES)}")
    cls = WORKLOADS[args.workload]
    options = _options(args.set, cls)
    try:
        cls.checked_options(**options)
    except ValueError as e:
        raise BadInput(f"--set: {e}") from None
    return cls, options, integer(args.accesses, "accesses", 0)


def add_arguments(parser):
    parser.add_argument("--backend", default="golden", metavar="NAME",
                        help="hardware backend (default: golden)")
    add_workload_arguments(parser)
    parser.add_argument("--seed", default="1", metavar="S", help="random seed (integer)")
    parser.add_argument("--json", metavar="PATH", help="write the figures here as JSON")
    parser.add_argument("--plot", metavar="PATH",
                        help="write a PNG of faults, writebacks and dirty pages over the run")
    parser.add_argument("--store-dir", metavar="DIR",
                        help="where the backing files go (default: a temporary directory)")
    parser.add_argument("--phys-mb", default="64", metavar="MB",
                        help="physical memory in MiB (default: 64)")
    parser.add_argument("--phys-base", metavar="ADDR",
                        help="where physical memory starts, hex or decimal, a multiple of "
                             "the power of two at or above its size (default: 0; on a "
                             "board, the machine's)")
    parser.add_argument("--tlb-entries", default="16", metavar="N", help="TLB entries")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--plant", metavar="BUG",
                        help="run a kernel with a known bug, to see the checks (and a "
                             "replay's waves) catch it: " + _plants_help())
    parser.add_argument("--coverage", metavar="PATH",
                        help="measure the kernel model's functional coverage (golden "
                             "backend): print it, add it to --json, write cocotb-coverage's "
                             "report here (YAML; XML if PATH ends in .xml)")
    parser.add_argument("--port", metavar="URL",
                        help="--backend board: the machine's port (/dev/ttyUSB0, "
                             "socket://HOST:PORT, any pyserial URL)")
    parser.add_argument("--baud", default="115200", metavar="N",
                        help="--backend board: the serial port's rate (default: 115200)")
    from mkclean.sim.waves import options as waves_options
    waves_options.add_arguments(parser)


def _plants_help() -> str:
    from mkclean.sim.kernel.kernel import PLANTS
    return "; ".join(f"{name}: {what}" for name, what in PLANTS.items())


def _workload_options_help() -> str:
    from mkclean.sim.workloads import WORKLOADS
    lines = ["workload options (--set KEY=VALUE):"]
    for name, cls in WORKLOADS.items():
        lines.append(f"  {name}")
        for key, option in cls.options.items():
            lines.append(f"    {key:<16} {option.help} ({option.describe()})")
    return "\n".join(lines)




def _options(pairs, cls):
    """``--set KEY=VALUE`` pairs as the workload's options, each checked against its
    declaration (:class:`~mkclean.sim.workloads.base.Option`)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in cls.options:
            raise BadInput(f"--set {pair!r}: the {cls.name} workload's options are "
                           f"{', '.join(cls.options)}")
        try:
            out[key] = cls.options[key].parse(key, value)
        except ValueError as e:
            raise BadInput(f"--set {pair!r}: {e}") from None
    return out


def parse(args):
    """Check every argument; returns (kernel options, workload class, options) or BadInput."""
    from mkclean.sim.hw.backends import backend_names
    from mkclean.sim.kernel.kernel import PLANTS
    cls, options, accesses = parse_workload(args)
    if args.plant is not None and args.plant not in PLANTS:
        raise BadInput(f"unknown plant {args.plant!r}: choose one of {', '.join(PLANTS)}")
    if args.backend not in backend_names():
        raise BadInput(f"unknown backend {args.backend!r}: choose one of "
                       f"{', '.join(backend_names())}")
    seed = integer(args.seed, "seed")
    phys = integer(args.phys_mb, "--phys-mb", 1)
    base = _phys_base(args, phys << 20)
    tlb = integer(args.tlb_entries, "--tlb-entries", 1)
    if tlb & (tlb - 1):
        raise BadInput(f"--tlb-entries must be a power of two, got {tlb}")
    if args.coverage and args.backend != "golden":
        raise BadInput("--coverage needs the golden backend (the rtl backend's kernel runs "
                       "inside the simulator)")
    writable_file(args.json, "--json")
    writable_file(args.plot, "--plot")
    writable_file(args.coverage, "--coverage")
    writable_dir(args.store_dir, "--store-dir")
    from mkclean.sim.waves import options as waves_options
    waves = waves_options.from_args(args)
    if waves is not None:
        if args.backend != "rtl":
            raise BadInput("--waves records the RTL's signals: it needs --backend rtl")
        writable_dir(waves.dir, "--waves")
    if args.backend == "board" and not args.port:
        raise BadInput("--backend board needs --port URL (a serial port such as "
                       "/dev/ttyUSB0, or socket://HOST:PORT)")
    if args.port and args.backend != "board":
        raise BadInput(f"--port is for --backend board, not {args.backend}")
    integer(args.baud, "--baud", 1)
    kernel = dict(policy=args.policy, ad=args.ad, backend=args.backend,
                  store_dir=args.store_dir, phys_size=phys << 20, tlb_entries=tlb,
                  plant=args.plant)
    if base is not None:
        kernel["phys_base"] = base
    return kernel, cls, seed, accesses, options, waves


def _phys_base(args, phys_size):
    """``--phys-base`` checked (None when not given): an address where ``phys_size`` bytes
    are one naturally aligned block, on a backend that can put memory there."""
    if args.phys_base is None:
        return None
    from mkclean.sim.model.memory import check_phys_base
    base = integer(args.phys_base, "--phys-base", 0)
    try:
        check_phys_base(base, phys_size)
    except ValueError as e:
        raise BadInput(f"--phys-base: {e} (--phys-mb {phys_size >> 20})") from None
    return base


def replay_command(args) -> str:
    """The command line that runs this run again: every choice that shapes it, none of
    the outputs."""
    words = ["mkclean run", f"--backend {args.backend}", f"--workload {args.workload}",
             f"--seed {args.seed}", f"--accesses {args.accesses}", f"--policy {args.policy}",
             f"--ad {args.ad}", f"--phys-mb {args.phys_mb}",
             *([f"--phys-base {args.phys_base}"] if args.phys_base is not None else []),
             f"--tlb-entries {args.tlb_entries}", *(f"--set {pair}" for pair in args.set),
             *([f"--plant {args.plant}"] if args.plant else []),
             *([f"--port {args.port} --baud {args.baud}"] if args.port else [])]
    return " ".join(words)


def summary(r) -> str:
    faults = ", ".join(f"{k} {v}" for k, v in sorted(r["faults"].items())) or "none"
    based = f", memory at {r['phys_base']:#x}" if r.get("phys_base") else ""
    lines = [
        f"{r['workload']} on {r['backend']} ({r['policy']}, {r['ad']}), seed {r['seed']}"
        f"{based}",
        f"  accesses        {r['accesses']:>12,}   {r['accesses_per_s'] or 0:>10,}/s",
        f"  faults          {r['faults_total']:>12,}   ({faults})",
        f"  sfences         {r['sfences']:>12,}",
        f"  mkclean PTEs    {r['mkclean_ptes']:>12,}   PTE scans {r['pte_scans']:,}",
        f"  pages written   {r['writeback_pages']:>12,}",
        f"  dirty pages     {r['dirty_known']:>12,} known of {r['dirty_real']:,} really dirty "
        f"before the final msync; on average {r['dirty_known_mean']} of {r['dirty_real_mean']}",
        f"  lost writes     {r['lost_writes']:>12,}   (pages of the files that differ from "
        f"the shadow after the final msync)",
    ]
    if "cycles" in r:
        what = "RTL" if r["backend"] == "rtl" else "machine"
        lines.append(f"  {what:<16}{r['cycles']:>12,} cycles, {r['walks']:,} walks "
                     f"({r['walk_cycles']:,} cycles), TLB {r['tlb_hits']:,} hits / "
                     f"{r['tlb_misses']:,} misses, invariant 2 checked {r['step_checks']:,} "
                     f"times")
    elif "step_checks" in r:            # a machine without counters
        checked = (f"invariant 2 checked {r['step_checks']:,} times" if r["step_checks"]
                   else f"invariant 2 not checked in {r.get('steps_unchecked', 0):,} kernel "
                        f"steps (it reports no TLB: mask no-tlb-snapshot)")
        lines.append(f"  machine         no counters, {checked}")
    if "link" in r:
        lines.append(f"  board           {r['link']['requests']:>12,} requests to {r['port']}, "
                     f"{r['link']['retries']:,} retries, {r['link']['dropped_frames']:,} "
                     f"frames dropped")
    if r["mismatches"]:
        lines.append(f"  MISMATCHES      {r['mismatches']:>12,}   first: {r['first_mismatches'][0]}")
    return "\n".join(lines)


def rtl_params(kernel_opts):
    """What the RTL MMU of a run is built with: at the run's phys_base (0 if none)."""
    from mkclean.sim.cosim.build import RTL_BATCH_DEPTH
    return {"phys_size": kernel_opts["phys_size"], "tlb_entries": kernel_opts["tlb_entries"],
            "phys_base": kernel_opts.get("phys_base", 0), "batch_depth": RTL_BATCH_DEPTH}


def build_rtl(kernel_opts, waves=None):
    """Build the run's simulator before the progress bar starts, saying so when it takes
    more than a moment (the first run, or the first after the gateware changed)."""
    from mkclean.sim.cosim import build
    params = rtl_params(kernel_opts)
    trace_format = waves.format if waves else None
    if not build.is_built(params, trace_format=trace_format):
        print("mkclean run: building the RTL simulator with Verilator and g++ (a minute or two "
              "on 2 cores, once for each MMU configuration and gateware change; "
              f"kept in {build.DEFAULT_BUILD_ROOT}/)", file=sys.stderr, flush=True)
    build.build(params, trace_format=trace_format)


def replay_with_waves(args, result) -> str:
    """The replay command of a failed rtl run, with a window of waves around the cycle
    where it failed (when the run knows it)."""
    from mkclean.sim.waves.options import replay_words
    cycle = result.get("failure_cycle")
    if cycle is None:
        return replay_command(args)
    window = result.get("failure_window") or (args.waves_window if args.waves is not None
                                              else None)
    return (f"{replay_command(args)} "
            + replay_words(args.waves or f"waves-seed{args.seed}", cycle,
                           *([window] if window is not None else [])))


def open_qemu(kernel_opts):
    """QEMU with the firmware's bridge server, its window the run's memory (at
    --phys-base, or where the firmware puts it by default); BadInput when QEMU or the
    cross compiler is missing, or the window does not fit QEMU's RAM."""
    from mkclean.sim.board.link import LinkError
    from mkclean.sim.qemu.backend import make_qemu
    from mkclean.sim.qemu.machine import QemuError
    base = kernel_opts.get("phys_base")
    try:
        return make_qemu(phys_size=kernel_opts["phys_size"],
                         **({"phys_base": base} if base else {}))
    except (QemuError, LinkError, ValueError) as e:
        raise BadInput(str(e)) from None


def run_on_rtl(kernel_opts, cls, seed, accesses, options, progress=None, waves=None):
    """The same run inside a cocotb simulation of the RTL MMU (sim/cosim/commands/run.py)."""
    from mkclean.sim.cosim import jobs
    kernel = {k: v for k, v in kernel_opts.items() if k != "backend"}
    params = rtl_params(kernel_opts)
    job = {"kernel": kernel, "workload": cls.name, "seed": seed, "accesses": accesses,
           "options": options}
    last = [0]

    def advance(done):              # the simulation reports totals, tqdm wants steps
        if progress:
            progress(done - last[0])
        last[0] = done
    return jobs.run_job("mkclean.sim.cosim.commands.run", job, params, advance, waves=waves)


def main(args):
    try:
        kernel_opts, cls, seed, accesses, options, waves = parse(args)
    except BadInput as e:
        print(f"mkclean run: {e}", file=sys.stderr)
        return USAGE_ERROR
    if kernel_opts["backend"] == "rtl":
        from mkclean.sim.cosim.jobs import ToolError
        try:
            build_rtl(kernel_opts, waves)
        except ToolError as e:
            print(f"mkclean run: {e}", file=sys.stderr)
            return USAGE_ERROR
    board = None
    if kernel_opts["backend"] == "board":
        from mkclean.sim.board.command import BoardFailed, open_board
        try:
            board = open_board(kernel_opts, args.port, integer(args.baud, "--baud"))
        except BoardFailed as e:
            print(f"mkclean run: {e}", file=sys.stderr)
            return e.status
    elif kernel_opts["backend"] == "qemu":
        try:
            board = open_qemu(kernel_opts)
        except BadInput as e:
            print(f"mkclean run: {e}", file=sys.stderr)
            return USAGE_ERROR
    if board is not None:
        # The machine decides where memory is; --phys-base, when given, must agree.
        if kernel_opts.get("phys_base", board.phys_base) != board.phys_base:
            print(f"mkclean run: {board.link.url}: the machine's memory starts at "
                  f"{board.phys_base:#x}, the run asks for {kernel_opts['phys_base']:#x} "
                  f"(--phys-base)", file=sys.stderr)
            board.close()
            return USAGE_ERROR
    bar = None
    progress = None
    if not args.no_progress:
        from tqdm import tqdm
        bar = tqdm(total=accesses, unit="acc", unit_scale=True, desc=cls.name,
                   file=sys.stderr, mininterval=0.5)
        progress = bar.update
    try:
        if board is not None:
            from mkclean.sim.board.command import run_on_board
            try:
                result = run_on_board(board, kernel_opts, cls, seed, accesses, options, progress)
                result["phys_base"] = board.phys_base
            except BoardFailed as e:
                print(f"\nmkclean run: {e}; replay: {replay_command(args)}", file=sys.stderr)
                return e.status
            finally:
                board.close()
        elif kernel_opts["backend"] == "rtl":
            from mkclean.sim.cosim.jobs import SimulatorDied, ToolError
            try:
                result = run_on_rtl(kernel_opts, cls, seed, accesses, options, progress,
                                    waves)
                result["phys_base"] = kernel_opts.get("phys_base", 0)
            except SimulatorDied as e:
                if bar is not None:
                    bar.close()
                print(f"mkclean run: the simulator died ({e.how}) after {e.done or 0} of "
                      f"{accesses} accesses; log: {e.log}; replay: {replay_command(args)}",
                      file=sys.stderr)
                return 1
            except ToolError as e:
                print(f"mkclean run: {e}", file=sys.stderr)
                return USAGE_ERROR
        else:
            from mkclean.sim.kernel import Kernel, KernelError, Signal
            coverage = None
            if args.coverage:
                from mkclean.sim.coverage.kernel import KernelCoverage
                coverage = KernelCoverage()
            try:
                k = Kernel(**kernel_opts, coverage=coverage)
            except ValueError as e:
                print(f"mkclean run: {e}", file=sys.stderr)
                return USAGE_ERROR
            try:
                result = cls(k, seed, accesses, **options).run(progress)
                result["phys_base"] = k.phys_base
            except (Signal, KernelError, MemoryError) as e:
                # the workload's own process died or the machine ran out: the run ends
                # here, as a real one would, and says why
                print(f"\nmkclean run: the {cls.name} workload stopped: {e or type(e).__name__}"
                      f" (more --phys-mb, or smaller files?); replay: {replay_command(args)}",
                      file=sys.stderr)
                return 1
            except AssertionError as e:         # KernelBug, InvariantError: a model bug
                print(f"\nmkclean run: FAILED: {type(e).__name__}: {e}; replay: "
                      f"{replay_command(args)}", file=sys.stderr)
                return 1
            finally:
                k.close()
    finally:
        if bar is not None:
            bar.close()
    if args.coverage:
        result["coverage"] = {**coverage.result(), "report": args.coverage}
    print(summary(result))
    if waves is not None:
        print(f"waves: {waves.trace} (cycles {_window_text(waves)}); open with: gtkwave "
              f"{waves.trace.with_suffix('.gtkw')}; draw with: mkclean waves {waves.trace} "
              f"-o waves.png", file=sys.stderr)
    try:                    # checked before the run; a disk can still fill up since
        if args.coverage:
            coverage.export(args.coverage)
            print(coverage.summary())
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
        if args.plot:
            from mkclean.sim.plot import plot_run
            plot_run(result, args.plot)
    except OSError as e:
        print(f"mkclean run: writing {e.filename}: {e.strerror}", file=sys.stderr)
        return 1
    violations = result.get("invariant_violations") or []
    cycle = result.get("failure_cycle")     # the rtl backend's, where it knows it
    replay = (f"replay with waves: {replay_with_waves(args, result)}" if cycle is not None
              else f"replay: {replay_command(args)}")
    if violations:
        where = f" at cycle {cycle}" if cycle is not None else ""
        print(f"mkclean run: FAILED: invariant 2 on the {result['backend']} backend's TLB"
              f"{where}: {violations[0]}; {replay}", file=sys.stderr)
        return 1
    if result["lost_writes"] or result["mismatches"]:
        print(f"mkclean run: FAILED ({result['lost_writes']} lost writes, "
              f"{result['mismatches']} mismatches); {replay}", file=sys.stderr)
        return 1
    return 0


def _window_text(waves):
    first, last = waves.cycles
    return f"{first} to {'the end' if last is None else last}"

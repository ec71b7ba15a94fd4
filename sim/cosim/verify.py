"""``mkclean verify``: the random differential campaign of the RTL MMU against the golden
model, under Verilator, with its functional coverage.

The command's host side (arguments, progress bar, summary, --fail-under); the campaign
runs inside the simulator (:mod:`.commands.verify`, :mod:`.campaign`) and brings the
coverage figures back in its result. Imports: :mod:`.build`, :mod:`.jobs`,
:mod:`.coverage` (for the summary; it runs anywhere); nothing that runs only in a
simulator.
"""

import json
import os
import random
import sys
import time
from pathlib import Path

from ..argcheck import BadInput, integer
from ..waves import options as waves_options
from . import build, coverage, jobs


def add_arguments(parser):
    parser.add_argument("--seed", type=int, default=None,
                        help="campaign seed (default: a random one, printed)")
    parser.add_argument("--walks", type=int, default=2000, metavar="N",
                        help="translations to request (default 2000)")
    parser.add_argument("--json", metavar="PATH", help="write the result here as JSON")
    parser.add_argument("--tlb-entries", type=int, default=build.DEFAULT_PARAMS["tlb_entries"])
    parser.add_argument("--walk-cache-entries", type=int,
                        default=build.DEFAULT_PARAMS["walk_cache_entries"])
    parser.add_argument("--phys-size", type=lambda s: int(s, 0),
                        default=build.DEFAULT_PARAMS["phys_size"], metavar="BYTES")
    parser.add_argument("--phys-base", default=None, metavar="ADDR",
                        help="where physical memory starts (default 0; with --against qemu "
                             "the firmware's window, 0x84000000): the campaign's page tables, "
                             "frames and satp move there, and its PPNs beyond memory lie "
                             "below it and past its end; a multiple of the power of two at or "
                             "above --phys-size")
    parser.add_argument("--against", metavar="MACHINE", choices=("qemu",),
                        help="qemu: QEMU's MMU as a third side, through the firmware's "
                             "bridge server, for the stimuli it can take (no bus errors, PTE "
                             "changes or sfences inside walks, so no directed fill); QEMU's "
                             "known differences are the masks the summary counts")
    parser.add_argument("--no-mask", action="append", default=[], metavar="NAME",
                        help="--against qemu: compare without this mask of QEMU's known "
                             "differences, to see what it hides (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--coverage-report", metavar="PATH",
                        help="write cocotb-coverage's report of the functional coverage here "
                             "(YAML; XML if PATH ends in .xml)")
    parser.add_argument("--fail-under", type=float, metavar="PCT",
                        help="exit 1 when the functional coverage is below PCT percent")
    parser.add_argument("--no-fill", action="store_true",
                        help="random translations only: no directed fill of the coverage "
                             "bins they left")
    waves_options.add_arguments(parser)


def run_campaign(seed, translations, params=None, progress=None, fill=True,
                 coverage_report=None, waves=None, against=None, masks_off=()):
    """Build (cached) and run one campaign; returns the result dict (its functional
    coverage under "coverage"). ``coverage_report``: where the simulator writes
    cocotb-coverage's report; ``waves`` (:class:`~mkclean.sim.waves.options.Waves`):
    trace the RTL; ``against``: "qemu" for QEMU as a third side."""
    config = {"seed": seed, "translations": translations, "fill": fill, "against": against,
              "masks_off": list(masks_off)}
    if coverage_report:
        config["coverage_report"] = str(Path(coverage_report).resolve())
    return jobs.run_job("mkclean.sim.cosim.commands.verify", config, params, progress,
                        waves=waves)


def _unwritable(path):
    """Why ``path`` cannot be written, or None."""
    path = Path(path)
    if path.is_dir():
        return f"{path} is a directory"
    folder = path.resolve().parent
    if not folder.is_dir():
        return f"{folder} is not a directory"
    if not os.access(folder, os.W_OK):
        return f"{folder} is not writable"
    return None


def main(args):
    if args.walks < 1:
        print("mkclean verify: --walks must be at least 1", file=sys.stderr)
        return 2
    if args.fail_under is not None and not 0 <= args.fail_under <= 100:
        print("mkclean verify: --fail-under must be a percentage, 0 to 100", file=sys.stderr)
        return 2
    for option, path in (("--json", args.json), ("--coverage-report", args.coverage_report)):
        why = path and _unwritable(path)
        if why:
            print(f"mkclean verify: {option}: {why}", file=sys.stderr)
            return 2
    try:
        waves = waves_options.from_args(args)
    except BadInput as e:
        print(f"mkclean verify: {e}", file=sys.stderr)
        return 2
    from ...hdl.mmu import check_params
    if args.no_mask:
        from ..qemu.masks import MASKS
        unknown = [m for m in args.no_mask if m not in MASKS]
        if not args.against or unknown:
            print(f"mkclean verify: --no-mask {' '.join(unknown or args.no_mask)}: "
                  f"{'--against qemu has the masks ' + ', '.join(MASKS) if unknown else 'needs --against qemu'}",
                  file=sys.stderr)
            return 2
    if args.against == "qemu":
        from ..qemu.machine import WINDOW_BASE, QemuError, firmware, qemu_path
        try:                    # before the simulator: a missing tool is one clear line
            qemu_path()
            firmware("bridge")
        except QemuError as e:
            print(f"mkclean verify: {e}", file=sys.stderr)
            return 2
        if args.phys_base is None:
            args.phys_base = hex(WINDOW_BASE)
    try:
        params = {"phys_size": args.phys_size,
                  "phys_base": integer(args.phys_base or "0", "--phys-base", 0),
                  "tlb_entries": args.tlb_entries,
                  "walk_cache_entries": args.walk_cache_entries}
        check_params(**params)             # refuse a bad configuration before building
    except (BadInput, ValueError) as e:
        print(f"mkclean verify: {e}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    replay = f"mkclean verify --seed {seed} --walks {args.walks}" + "".join(
        f" --{k.replace('_', '-')} {hex(v) if k == 'phys_base' else v}"
        for k, v in params.items()
        if v != build.DEFAULT_PARAMS[k]) + (" --no-fill" if args.no_fill else "") + (
        f" --against {args.against}" if args.against else "") + "".join(
        f" --no-mask {m}" for m in args.no_mask)
    print(f"mkclean verify: seed {seed}, {args.walks} translations (replay: {replay})",
          file=sys.stderr)
    bar = None
    if not args.quiet:
        from tqdm import tqdm
        bar = tqdm(total=args.walks, unit="tr", file=sys.stderr, desc="verify")

        def progress(done):
            bar.update(done - bar.n)
    else:
        progress = None
    try:
        t0 = time.monotonic()
        if not build.is_built(params, trace_format=waves and waves.format):
            print("mkclean verify: building the RTL simulator with Verilator and g++ (a "
                  "minute or two on 2 cores, once for each MMU configuration and gateware "
                  f"change; kept in {build.DEFAULT_BUILD_ROOT}/)", file=sys.stderr,
                  flush=True)
        result = run_campaign(seed, args.walks, params, progress, fill=not args.no_fill,
                              coverage_report=args.coverage_report, waves=waves,
                              against=args.against, masks_off=args.no_mask)
    except (jobs.ToolError, ValueError) as e:
        if bar:
            bar.close()
        print(f"mkclean verify: {e}", file=sys.stderr)
        return 2
    if bar:
        bar.update(result["translations"] - bar.n)
        bar.close()
    result["replay"] = replay
    result["wall_seconds"] = round(time.monotonic() - t0, 3)
    if args.coverage_report:
        result["coverage"]["report"] = args.coverage_report
    print_summary(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if waves is not None:
        first, last = waves.cycles
        print(f"waves: {waves.trace} (cycles {first} to {'the end' if last is None else last})"
              f"; open with: gtkwave {waves.trace.with_suffix('.gtkw')}", file=sys.stderr)
    if result["mismatches"]:
        cycle = result.get("mismatch_cycle")
        with_waves = "" if cycle is None else " " + waves_options.replay_words(
            args.waves or f"waves-verify-seed{seed}", cycle,
            *([waves.window] if waves else []))
        print(f"\nFIRST MISMATCH {result['first_mismatch']} (cycle {cycle})\n"
              f"replay with waves: {replay}{with_waves}")
        return 1
    percent = result["coverage"]["percent"]
    if args.fail_under is not None and percent < args.fail_under:
        print(f"mkclean verify: coverage {percent}% is below --fail-under {args.fail_under:g}%",
              file=sys.stderr)
        return 1
    return 0


def print_summary(result):
    rate = result["cycles"] / result["seconds"] if result["seconds"] else 0
    based = f"  memory at {result['phys_base']:#x}" if result.get("phys_base") else ""
    print(f"translations {result['translations']}  mismatches {result['mismatches']}  "
          f"seed {result['seed']}{based}  cycles {result['cycles']}  ({rate:,.0f} cycles/s)")
    width = max(map(len, result["classes"]), default=0)
    for name, count in result["classes"].items():
        print(f"  {name:<{width}}  {count:>7}")
    fill = result.get("fill_translations")
    print(f"directed fill: {fill} translations" if fill else "directed fill: none")
    for machine, third in result.get("against", {}).items():
        from ..qemu.masks import MASKS
        print(f"against {machine}: {third['translations']} translations compared")
        for name, n in third["masks"].items():
            print(f"  mask {name} ({n}x): {MASKS[name].why}")
    print(coverage.summary(result["coverage"]))

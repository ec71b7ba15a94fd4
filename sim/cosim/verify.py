"""``mkclean verify``: the random differential campaign of the RTL MMU against the golden
model, under Verilator.

The command's host side (arguments, progress bar, summary); the campaign runs inside the
simulator (:mod:`.commands.verify`, :mod:`.campaign`). Imports: :mod:`.build`,
:mod:`.jobs`; nothing that runs only in a simulator.
"""

import json
import random
import sys
import time
from pathlib import Path

from . import build, jobs


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
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_campaign(seed, translations, params=None, progress=None):
    """Build (cached) and run one campaign; returns the result dict."""
    return jobs.run_job("mkclean.sim.cosim.commands.verify",
                        {"seed": seed, "translations": translations}, params, progress)


def main(args):
    if args.walks < 1:
        print("mkclean verify: --walks must be at least 1", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    params = {"phys_size": args.phys_size, "tlb_entries": args.tlb_entries,
              "walk_cache_entries": args.walk_cache_entries}
    replay = f"mkclean verify --seed {seed} --walks {args.walks}" + "".join(
        f" --{k.replace('_', '-')} {v}" for k, v in params.items()
        if v != build.DEFAULT_PARAMS[k])
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
        from ...hdl.mmu import check_params
        check_params(**params)             # refuse a bad configuration before building
        t0 = time.monotonic()
        result = run_campaign(seed, args.walks, params, progress)
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
    print_summary(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if result["mismatches"]:
        print(f"\nFIRST MISMATCH {result['first_mismatch']}\nreplay: {replay}")
        return 1
    return 0


def print_summary(result):
    rate = result["cycles"] / result["seconds"] if result["seconds"] else 0
    print(f"translations {result['translations']}  mismatches {result['mismatches']}  "
          f"seed {result['seed']}  cycles {result['cycles']}  ({rate:,.0f} cycles/s)")
    width = max(map(len, result["classes"]), default=0)
    for name, count in result["classes"].items():
        print(f"  {name:<{width}}  {count:>7}")

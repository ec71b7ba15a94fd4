"""``mkclean compare``: one workload and seed on several backends (golden, rtl, qemu,
board-sim), which must reach the same outcome: the same traps in the same order, the same
files, no write lost. The first backend named is the reference.

Where QEMU is known to differ from the spec or from this MMU, the difference is a named
mask of :mod:`mkclean.sim.qemu.masks`, shown in the summary with how often it applied;
any other difference is a mismatch (exit status 1). ``--json PATH`` writes every
backend's outcome and the verdicts.
"""

import json
import sys
from pathlib import Path

from mkclean.sim.argcheck import BadInput, integer, seeds as parse_seeds, writable_file

USAGE_ERROR = 2
#: Backends a comparison can run: each runs the kernel model in full here (board needs a
#: port, and one board is one backend: compare it with `mkclean run --backend board`).
BACKENDS = ("golden", "rtl", "qemu", "board-sim")


def add_arguments(parser):
    parser.add_argument("--backends", default="golden,rtl,qemu", metavar="A,B,...",
                        help=f"backends to compare, the reference first (default: "
                             f"golden,rtl,qemu; of {', '.join(BACKENDS)})")
    from mkclean.sim.run import add_workload_arguments
    add_workload_arguments(parser, workload="random", accesses="2000")
    parser.add_argument("--seeds", default="1", metavar="S",
                        help="seeds: 3, 1,5,9 or 1-4 (default: 1)")
    parser.add_argument("--phys-mb", default="4", metavar="MB",
                        help="physical memory in MiB (default: 4)")
    parser.add_argument("--json", metavar="PATH", help="write the outcomes and verdicts here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse(args):
    from mkclean.sim.run import parse_workload
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for b in backends:
        if b not in BACKENDS:
            raise BadInput(f"--backends: {b!r} is not one of {', '.join(BACKENDS)}")
    if len(backends) < 2 or len(set(backends)) != len(backends):
        raise BadInput(f"--backends needs two or more different backends, got "
                       f"{args.backends!r}")
    cls, options, accesses = parse_workload(args)
    writable_file(args.json, "--json")
    kernel = dict(policy=args.policy, ad=args.ad, tlb_entries=16,
                  phys_size=integer(args.phys_mb, "--phys-mb", 1) << 20)
    return backends, cls, parse_seeds(args.seeds), accesses, options, kernel


def run_one(backend, cls, seed, accesses, options, kernel_opts) -> dict:
    """One run's outcome: its traps (ASID, cause, address), its files' digests, its lost
    writes and oracle mismatches, and the invariant-2 steps its backend checked."""
    if backend == "rtl":
        from mkclean.sim.run import build_rtl, run_on_rtl
        opts = {**kernel_opts, "backend": "rtl", "trace": True}
        build_rtl(opts)
        r = run_on_rtl(opts, cls, seed, accesses, options)
        return {"traps": r["trace"], "files": r["files"], "lost_writes": r["lost_writes"],
                "mismatches": r["mismatches"], "step_checks": r.get("step_checks", 0),
                "invariant_violations": r.get("invariant_violations", [])}
    from mkclean.sim.kernel import Kernel
    from mkclean.sim.kernel.invariants import run_checked
    k = Kernel(backend=backend, trace=True, **kernel_opts)
    try:
        workload = cls(k, seed, accesses, **options)
        if backend == "golden":         # the reference: no TLB of its own to check
            r = {**workload.run(), "invariant_violations": []}
        else:                           # a machine's TLB, after every kernel step
            r, _ = run_checked(k, workload)
        return {"traps": r["trace"], "files": r["files"], "lost_writes": r["lost_writes"],
                "mismatches": r["mismatches"], "step_checks": r.get("step_checks", 0),
                "steps_unchecked": r.get("steps_unchecked", 0),
                "invariant_violations": r["invariant_violations"]}
    finally:
        k.close()
        close = getattr(k.hw, "close", None)
        if close is not None:
            close()


def verdict(reference: dict, other: dict, backend: str, ad: str) -> tuple[list[str], dict]:
    """What differs between ``other`` (run on ``backend``) and the reference, after the
    masks that apply: (differences, {mask: times applied})."""
    from mkclean.sim.qemu.masks import drop_ad_faults
    differences, masks = [], {}
    if other.get("steps_unchecked"):
        masks["no-tlb-snapshot"] = other["steps_unchecked"]
    ref_traps, traps = reference["traps"], other["traps"]
    if backend == "qemu" and ad == "svade" and ref_traps != traps:
        dropped = drop_ad_faults(ref_traps, traps)
        if dropped is not None:
            masks["no-svade"] = dropped
            ref_traps = traps
    if ref_traps != traps:
        at = next((i for i, (a, b) in enumerate(zip(ref_traps, traps)) if list(a) != list(b)),
                  min(len(ref_traps), len(traps)))
        want = _trap(ref_traps[at]) if at < len(ref_traps) else "none"
        got = _trap(traps[at]) if at < len(traps) else "none"
        differences.append(f"traps differ from trap {at}: {want} expected, {got} seen "
                           f"({len(ref_traps)} against {len(traps)} traps)")
    if reference["files"] != other["files"]:
        names = sorted(n for n in set(reference["files"]) | set(other["files"])
                       if reference["files"].get(n) != other["files"].get(n))
        differences.append(f"files differ: {', '.join(names[:5])}")
    for key in ("lost_writes", "mismatches"):
        if other[key]:
            differences.append(f"{other[key]} {key.replace('_', ' ')}")
    if other["invariant_violations"]:
        differences.append(f"invariant 2: {other['invariant_violations'][0]}")
    return differences, masks


def _trap(t) -> str:
    from mkclean.sim.hw.seam import Cause
    asid, cause, addr = t
    return f"{Cause(cause).name} at {addr:#x} (ASID {asid})"


def main(args):
    try:
        backends, cls, seeds, accesses, options, kernel = parse(args)
    except BadInput as e:
        print(f"mkclean compare: {e}", file=sys.stderr)
        return USAGE_ERROR
    from mkclean.sim.cosim.jobs import ToolError
    from mkclean.sim.qemu.machine import QemuError
    bar = None
    if not args.no_progress:
        from tqdm import tqdm
        bar = tqdm(total=len(seeds) * len(backends), unit="run", desc=cls.name,
                   file=sys.stderr)
    runs, failed = [], 0
    try:
        for seed in seeds:
            outcomes = {}
            for backend in backends:
                if bar is not None:
                    bar.set_postfix_str(f"seed {seed} on {backend}")
                try:
                    outcomes[backend] = run_one(backend, cls, seed, accesses, options, kernel)
                except (ToolError, QemuError) as e:
                    print(f"\nmkclean compare: {backend}: {e}", file=sys.stderr)
                    return USAGE_ERROR
                if bar is not None:
                    bar.update()
            reference = outcomes[backends[0]]
            verdicts = {}
            for backend in backends[1:]:
                differences, masks = verdict(reference, outcomes[backend], backend,
                                             kernel["ad"])
                verdicts[backend] = {"differences": differences, "masks": masks}
                failed += bool(differences)
            runs.append({"seed": seed, "outcomes": outcomes, "verdicts": verdicts})
    finally:
        if bar is not None:
            bar.close()
    print(summary(runs, backends, cls.name, accesses, kernel))
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(
                {"workload": cls.name, "accesses": accesses, "backends": backends,
                 **kernel, "runs": runs, "failed": failed}, indent=1) + "\n")
        except OSError as e:
            print(f"mkclean compare: writing {args.json}: {e.strerror}", file=sys.stderr)
            return 1
    return 1 if failed else 0


def summary(runs, backends, workload, accesses, kernel) -> str:
    from mkclean.sim.qemu.masks import MASKS
    lines = [f"{workload}, {accesses:,} accesses a run ({kernel['policy']}, {kernel['ad']}), "
             f"{backends[0]} the reference"]
    applied = {}
    for run in runs:
        ref = run["outcomes"][backends[0]]
        cells = [f"seed {run['seed']:<6} {len(ref['traps']):>6} traps, "
                 f"{len(ref['files'])} files"]
        for backend, v in run["verdicts"].items():
            same = "same, masked" if v["masks"] else "same"
            cells.append(f"{backend} {same if not v['differences'] else 'DIFFERS'}")
            for name, n in v["masks"].items():
                applied[name] = applied.get(name, 0) + n
        lines.append("  " + "   ".join(cells))
        for backend, v in run["verdicts"].items():
            for d in v["differences"]:
                lines.append(f"    {backend}: {d}")
    for name, n in applied.items():
        lines.append(f"  mask {name} ({n}x): {MASKS[name].why}")
    failed = sum(bool(v["differences"]) for r in runs for v in r["verdicts"].values())
    lines.append(f"{'FAILED' if failed else 'PASSED'}: {len(runs)} seeds on "
                 f"{', '.join(backends)}; {failed} comparisons differ")
    return "\n".join(lines)

"""``mkclean realcheck``: random programs of memory syscalls and accesses, run on the host's
Linux kernel (the C executor) and on the kernel model; every result, fault count and file
must agree, up to the named differences of :data:`~.check.DIFFERENCES`.

Each difference is shrunk to a minimal program, saved, and printed with the command that
replays it. ``--replay FILE`` runs one saved program on both and prints them side by
side. Exit status: 0 when everything agrees, 1 when a difference is found, 2 for bad
input or a host that cannot run the check (not Linux, no C compiler).
"""

import json
import sys
import time
from pathlib import Path

from mkclean.sim.argcheck import BadInput, integer, seeds as parse_seeds, writable_file

USAGE_ERROR = 2


def add_arguments(parser):
    parser.add_argument("--seeds", default="1-20", metavar="S",
                        help="programs to generate: 3, 1,5,9 or 1-40 (default: 1-20)")
    parser.add_argument("--ops", default="40", metavar="N",
                        help="ops a generated program (default: 40)")
    parser.add_argument("--replay", metavar="FILE",
                        help="run this saved program instead, and show both runs op by op")
    parser.add_argument("--no-shrink", action="store_true",
                        help="report differences as found, without shrinking them")
    parser.add_argument("--out", default="results/realcheck", metavar="DIR",
                        help="where minimal programs are saved (default: results/realcheck)")
    parser.add_argument("--fault-around-bytes", default=None, metavar="N",
                        help="the model's fault-around window (default: the model's, "
                             "Linux's 65536)")
    parser.add_argument("--plant", default=None, metavar="BUG",
                        help="run the model with a planted bug (see mkclean run --help)")
    parser.add_argument("--json", metavar="PATH", help="write every verdict here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse(args):
    options = {}
    if args.fault_around_bytes is not None:
        options["fault_around_bytes"] = integer(args.fault_around_bytes,
                                                "--fault-around-bytes", 1)
    if args.plant is not None:
        from mkclean.sim.kernel.kernel import PLANTS
        if args.plant not in PLANTS:
            raise BadInput(f"--plant {args.plant!r} is not one of {', '.join(PLANTS)}")
        options["plant"] = args.plant
    if args.replay is not None:
        from .program import parse as parse_program
        try:
            text = Path(args.replay).read_text()
        except OSError as e:
            raise BadInput(f"--replay {args.replay}: {e.strerror}") from None
        try:
            return [("replay", parse_program(text))], options
        except ValueError as e:
            raise BadInput(f"--replay {args.replay}: {e}") from None
    ops = integer(args.ops, "--ops", 1)
    if ops > 2000:
        raise BadInput(f"--ops {ops}: at most 2000 (the executor's limit is 4096 with forks)")
    from .program import generate
    args.ops = ops
    return [(seed, generate(seed, ops)) for seed in parse_seeds(args.seeds)], options


class Checker:
    """Runs a program on both sides (the model with the host's block size) and compares."""

    def __init__(self, options):
        self.options = options
        self.host_info = None           # the first run's HostRun: kernel, machine, fs

    def run(self, program):
        from .check import compare
        from .host import run_on_host
        from .model import run_on_model
        try:
            host = run_on_host(program.text())
        except ValueError as e:             # the executor refused the program (exit 2)
            raise BadInput(f"the executor refused the program: {e}") from None
        if self.host_info is None:
            self.host_info = host
        model = run_on_model(program, block_size=host.block_size,
                             kernel_options=self.options)
        return host, model, compare(program, host, model)


def main(args):
    try:
        programs, options = parse(args)
        writable_file(args.json, "--json")
    except BadInput as e:
        print(f"mkclean realcheck: {e}", file=sys.stderr)
        return USAGE_ERROR
    from .host import HostError
    checker = Checker(options)
    try:
        if programs[0][0] == "replay":
            return replay(checker, programs[0][1], args)
        return campaign(checker, programs, args)
    except (HostError, BadInput) as e:
        print(f"mkclean realcheck: {e}", file=sys.stderr)
        return USAGE_ERROR


def replay(checker, program, args) -> int:
    from .check import describe_difference, describe_result
    from .program import describe
    host, model, verdict = checker.run(program)
    print(header(checker))
    width = max((len(describe(op)) for op in program.ops), default=10)
    print(f"{'':>3}  {'op':<{width}}  {'host':<22}  model")
    for i, op in enumerate(program.ops):
        h, m = describe_result(host.results[i]), describe_result(model.results[i])
        mark = "" if h == m else "   <-- " + (model.notes.get(i) or "differs")
        print(f"{i:>3}  {describe(op):<{width}}  {h:<22}  {m}{mark}")
    if verdict.difference is not None:
        print(f"DIFFERS: {describe_difference(program, verdict)}")
        return 1
    if verdict.named:
        print(f"same up to op {verdict.compared}, where the named difference "
              f"{verdict.named} begins")
    else:
        print("SAME: every op, fault count and file")
    return 0


def header(checker) -> str:
    from .host import FS_NAMES
    h = checker.host_info
    fs = FS_NAMES.get(h.fs_type, f"file system {h.fs_type:#x}")
    model = ", ".join(f"{k} {v}" for k, v in checker.options.items()) or "defaults"
    return (f"realcheck: Linux {h.kernel} {h.machine}, {fs} ({h.block_size}-byte blocks), "
            f"against the kernel model (writenotify, svadu, {model})")


def campaign(checker, programs, args) -> int:
    from .check import DIFFERENCES, describe_difference, shrink
    bar = None
    if not args.no_progress:
        from tqdm import tqdm
        bar = tqdm(total=len(programs), unit="prog", desc="realcheck", file=sys.stderr)
    started = time.monotonic()
    records, named, ops_compared = [], {}, 0
    try:
        for seed, program in programs:
            _, _, verdict = checker.run(program)
            ops_compared += verdict.compared
            record = {"seed": seed, "ops": len(program.ops), "compared": verdict.compared,
                      "named": verdict.named, "difference": verdict.difference}
            if verdict.named:
                named[verdict.named] = named.get(verdict.named, 0) + 1
            if verdict.difference is not None:
                record["found"] = describe_difference(program, verdict)
                if not args.no_shrink:
                    if bar is not None:
                        bar.set_postfix_str(f"shrinking seed {seed}")
                    signature = verdict.signature

                    def same_failure(candidate):
                        return checker.run(candidate)[2].signature == signature

                    small, runs = shrink(program, same_failure)
                    small_verdict = checker.run(small)[2]
                    record.update(minimal=small.text(), listing=small.listing(),
                                  minimal_difference=describe_difference(small, small_verdict),
                                  minimal_ops=len(small.ops), shrink_runs=runs)
                    path = Path(args.out) / f"seed-{seed}.prog"
                    try:
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_text(f"# mkclean realcheck --seeds {seed} --ops {args.ops}"
                                        f": {record['minimal_difference']}\n" + small.text())
                        record["saved"] = str(path)
                    except OSError as e:
                        record["saved"] = None
                        print(f"mkclean realcheck: saving {path}: {e.strerror}", file=sys.stderr)
            records.append(record)
            if bar is not None:
                bar.update()
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.monotonic() - started
    failed = [r for r in records if r["difference"] is not None]
    print(header(checker))
    print(f"  {len(records)} programs, {ops_compared:,} ops compared, in {elapsed:.1f} s")
    print(f"  same: {sum(1 for r in records if r['difference'] is None and not r['named'])}")
    for name, n in sorted(named.items()):
        print(f"  named difference {name}: {n} (compared up to it) -- {DIFFERENCES[name].why}")
    for r in failed:
        print(f"  seed {r['seed']}: {r['found']}")
        if "minimal" in r:
            print(f"    minimal program ({r['minimal_ops']} ops, {r['shrink_runs']} runs to "
                  f"shrink): {r['minimal_difference']}")
            for line in r["listing"].splitlines():
                print(f"      {line}")
            if r.get("saved"):
                print(f"    replay: mkclean realcheck --replay {r['saved']}")
        print(f"    again: mkclean realcheck --seeds {r['seed']} --ops {args.ops}")
    print(f"{'FAILED' if failed else 'PASSED'}: {len(failed)} of {len(records)} programs "
          f"differ from Linux")
    if args.json:
        h = checker.host_info
        try:
            Path(args.json).write_text(json.dumps({
                "host": {"kernel": h.kernel, "machine": h.machine, "block_size": h.block_size,
                         "fs_type": h.fs_type},
                "model": checker.options, "programs": records, "named": named,
                "failed": len(failed), "seconds": round(elapsed, 2)}, indent=1) + "\n")
        except OSError as e:
            print(f"mkclean realcheck: writing {args.json}: {e.strerror}", file=sys.stderr)
            return 1
    return 1 if failed else 0

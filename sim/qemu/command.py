"""``mkclean qemu``: the firmware on QEMU. ``--demo`` runs the mechanism as bare-metal
code on QEMU's MMU and checks what it reports; ``--serve`` starts the bridge server and
prints its URL, for ``mkclean run --backend board --port URL`` or a script's own host.

Exit status: 0, 1 when the demo's check fails, 2 when QEMU or the cross compiler is
missing or the input is bad.
"""

import json
import sys
from pathlib import Path

from ..argcheck import BadInput, integer
from . import demo
from .machine import WINDOW_BASE, WINDOW_SIZE, BridgeProcess, QemuError, run_demo

USAGE_ERROR = 2


def add_arguments(parser):
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--demo", action="store_true",
                      help="run the demo (firmware/demo.c) and check its counts")
    what.add_argument("--serve", action="store_true",
                      help="start the bridge server; print its URL; serve until interrupted")
    parser.add_argument("--seed", default="1", metavar="S",
                        help="--demo: the user program's seed, 1 to 2**64-1 (default: 1)")
    parser.add_argument("--phys-base", default=hex(WINDOW_BASE), metavar="ADDR",
                        help=f"--serve: the window of memory served (default: "
                             f"{WINDOW_BASE:#x})")
    parser.add_argument("--phys-mb", default=str(WINDOW_SIZE >> 20), metavar="MB",
                        help=f"--serve: its size in MiB (default: {WINDOW_SIZE >> 20})")
    parser.add_argument("--json", metavar="PATH", help="--demo: write its figures here")


def main(args):
    try:
        seed = integer(args.seed, "--seed", 1)
        if seed >= 1 << 64:
            raise BadInput(f"--seed must be below 2**64, got {seed}")
        base = integer(args.phys_base, "--phys-base", 0)
        size = integer(args.phys_mb, "--phys-mb", 1) << 20
        if args.json and Path(args.json).is_dir():
            raise BadInput(f"--json {args.json!r} is a folder, not a file")
    except BadInput as e:
        print(f"mkclean qemu: {e}", file=sys.stderr)
        return USAGE_ERROR
    try:
        if args.serve:
            return serve(base, size)
        status, output = run_demo(seed)
    except QemuError as e:
        print(f"mkclean qemu: {e}", file=sys.stderr)
        return USAGE_ERROR
    result = demo.check(output, status, seed)
    print(demo.summary(result))
    if args.json:
        try:
            Path(args.json).write_text(json.dumps({**result.as_json(), "output": output},
                                                  indent=1) + "\n")
        except OSError as e:
            print(f"mkclean qemu: writing {args.json}: {e.strerror}", file=sys.stderr)
            return 1
    return 1 if result.problems else 0


def serve(base: int, size: int) -> int:
    with BridgeProcess(base, size) as qemu:
        print(qemu.url, flush=True)
        try:
            qemu.process.wait()
        except KeyboardInterrupt:
            pass
    return 0

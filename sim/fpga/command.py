"""``mkclean build``: a board's bitstream and its report (utilisation, the MMU clock's
Fmax), readable and as JSON; ``--sweep`` adds the MMU alone at 8, 16 and 32 TLB entries,
side by side."""

import json
import shutil
import sys
from pathlib import Path

from ...hdl.boards.platforms import BOARDS
from ..argcheck import BadInput, integer
from . import build, report, tools

#: The most placements --seeds asks for.
MAX_SEEDS = 16

EPILOG = """\
The bitstream, report.json and report.txt go to --out (default: BUILD/fpga/BOARD, BUILD
being $MKCLEAN_BUILD or build). Builds are cached by a hash of the gateware, the board
and the parameters: a second build with nothing changed takes a second.

Exit status: 0, 1 when a tool failed, 2 for bad input or a missing tool."""


def add_arguments(parser):
    parser.epilog = EPILOG
    parser.add_argument("--board", default="ulx3s-85f", metavar="NAME",
                        help=f"one of {', '.join(BOARDS)} (default ulx3s-85f)")
    parser.add_argument("--tlb-entries", default="16", metavar="N",
                        help="the MMU's TLB entries, a power of two (default 16)")
    parser.add_argument("--phys-kb", default="256", metavar="KB",
                        help="KiB of block RAM as the machine's physical memory, a multiple "
                             "of 4 (default 256; the 85F has 208 blocks of 2 KiB)")
    parser.add_argument("--clk-mhz", metavar="MHZ",
                        help="the MMU's clock, made by the ECP5's PLL (default: the board's "
                             "oscillator, 25 MHz on the ULX3S, 100 MHz on the ECPIX-5)")
    parser.add_argument("--sweep", action="store_true",
                        help="also build the MMU alone (out of context) at 8, 16 and 32 "
                             "TLB entries and set them side by side")
    parser.add_argument("--seeds", default="1", metavar="N",
                        help="with --sweep: place each MMU with nextpnr's seeds 1 to N "
                             "(at most 16) and give the mean Fmax and its range: one "
                             "placement moves Fmax by several MHz (default 1)")
    parser.add_argument("--json", metavar="PATH", help="write the report here as JSON")
    parser.add_argument("--out", metavar="DIR", help="where the bitstream and report go")
    parser.add_argument("--no-progress", action="store_true", help="no progress line")


def check(args):
    """The arguments, checked: ``(board, tlb_entries, phys_size, clk_freq, seeds)`` or
    BadInput."""
    if args.board not in BOARDS:
        raise BadInput(f"unknown board {args.board!r}: choose one of {', '.join(BOARDS)}")
    tlb = integer(args.tlb_entries, "--tlb-entries", minimum=1)
    if tlb & (tlb - 1):
        raise BadInput(f"--tlb-entries must be a power of two, got {tlb}")
    phys_kb = integer(args.phys_kb, "--phys-kb", minimum=4)
    if phys_kb % 4:
        raise BadInput(f"--phys-kb must be a multiple of 4 (whole pages), got {phys_kb}")
    clk_freq = None
    if args.clk_mhz is not None:
        try:
            mhz = float(args.clk_mhz)
        except ValueError:
            raise BadInput(f"--clk-mhz {args.clk_mhz!r} is not a number") from None
        if not 3.125 <= mhz <= 400:
            raise BadInput(f"--clk-mhz must be between 3.125 and 400 (the ECP5 PLL's "
                           f"output), got {args.clk_mhz}")
        clk_freq = mhz * 1e6
    for option in ("json", "out"):
        path = getattr(args, option)
        if path is not None and option == "json" and Path(path).is_dir():
            raise BadInput(f"--json {path!r} is a folder, not a file")
        if path is not None and option == "out" and Path(path).is_file():
            raise BadInput(f"--out {path!r} is a file, not a folder")
    seeds = integer(args.seeds, "--seeds", minimum=1)
    if seeds > MAX_SEEDS:
        raise BadInput(f"--seeds must be at most {MAX_SEEDS}, got {seeds}")
    if seeds > 1 and not args.sweep:
        raise BadInput("--seeds is for --sweep: the board's build is placed once")
    return args.board, tlb, phys_kb * 1024, clk_freq, seeds


def main(args):
    try:
        board, tlb, phys_size, clk_freq, seeds = check(args)
        tools.versions()
        for tool in tools.TOOLS:
            tools.tool_path(tool)
        result = build.build_board(board, clk_freq=clk_freq, tlb_entries=tlb,
                                   phys_size=phys_size, progress=not args.no_progress)
        if args.sweep:
            result["sweep"] = build.sweep(seeds=seeds, progress=not args.no_progress)
    except BadInput as e:
        print(f"mkclean build: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # a clock the PLL cannot make, a parameter the MMU refuses
        print(f"mkclean build: {e}", file=sys.stderr)
        return 2
    except tools.ToolMissing as e:
        print(f"mkclean build: {e}", file=sys.stderr)
        return 2
    except build.BuildFailed as e:
        print(f"mkclean build: {e}", file=sys.stderr)
        return 1

    out = Path(args.out) if args.out else build.fpga_root() / board
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(result["bitstream"], out / "top.bit")
    result["bitstream"] = str(out / "top.bit")
    result["program"] = BOARDS[board].program.format(bit=out / "top.bit")
    text = report.format_report(result)
    if "sweep" in result:
        text += "\n\n" + report.format_sweep(result["sweep"], build.TARGET_MHZ)
    text += f"\n\nprogram it: {result['program']}"
    print(text)
    (out / "report.txt").write_text(text + "\n")
    (out / "report.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0

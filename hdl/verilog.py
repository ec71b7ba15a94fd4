"""Verilog of the MMU's tops: the standalone MMU (:class:`~.top.MMUTop`) for other SoCs,
the batch top (:class:`~.batch.BatchTop`) that a host drives, and the board top
(:class:`~.boards.top.BoardTop`: the MMU, block RAM and the UART bridge).

Run ``python -m mkclean.hdl.verilog -o mkclean_mmu.v`` (or ``make verilog``).
"""

import argparse
import sys

from amaranth.back import verilog

from .batch import BatchTop
from .boards.top import BoardTop
from .top import MMUTop

TOP_NAME = "mkclean_mmu"
BATCH_TOP_NAME = "mkclean_batch"
BOARD_TOP_NAME = "mkclean_board"


def top_name(batch_depth=None, board=False, **params):
    """The Verilog module name of the top :func:`generate` writes for these parameters."""
    if board:
        return BOARD_TOP_NAME
    return TOP_NAME if batch_depth is None else BATCH_TOP_NAME


class _Files:
    """The platform :func:`generate` elaborates for: it takes the Verilog files that the
    design adds as a build platform would (``add_file``), for :func:`generate` to write
    after the design's own modules. The board top's :class:`~.boards.top.BlockRam` adds
    its memory's module, which a memory of Amaranth's would write word by word."""

    def __init__(self):
        self.files = {}

    def add_file(self, filename, content):
        if self.files.setdefault(filename, content) != content:
            raise ValueError(f"{filename!r} added twice, with different contents")


def generate(out, batch_depth=None, board=False, **params):
    """Write the Verilog of :class:`~.top.MMUTop`; of :class:`~.batch.BatchTop` when
    ``batch_depth`` is given; of :class:`~.boards.top.BoardTop` when ``board`` is true
    (``params`` are then its own: ``clk_freq``, ``baud``, ... ; the component's
    ``divisor`` is its UART's cycles a bit). Writes to the text stream ``out``; returns
    the component."""
    if board:
        if batch_depth is not None:
            raise ValueError("the board top has no batch queue: batch_depth is not one of "
                             "its parameters")
        top = BoardTop(**params)
    elif batch_depth is None:
        top = MMUTop(**params)
    else:
        top = BatchTop(batch_depth=batch_depth, **params)
    files = _Files()
    out.write(verilog.convert(top, name=top_name(batch_depth, board), platform=files,
                              emit_src=False))
    for text in files.files.values():
        out.write(text)
    return top


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m mkclean.hdl.verilog",
                                     description="Write the MMU as standalone Verilog.")
    parser.add_argument("-o", "--output", default="-", help="file to write (default stdout)")
    parser.add_argument("--phys-size", type=lambda s: int(s, 0), default=64 << 20)
    parser.add_argument("--phys-base", type=lambda s: int(s, 0), default=0,
                        help="the first physical address of memory (default 0)")
    parser.add_argument("--tlb-entries", type=int, default=16)
    parser.add_argument("--walk-cache-entries", type=int, default=8)
    parser.add_argument("--board", action="store_true",
                        help="the board top (MMU, block RAM, UART bridge): mkclean_board")
    parser.add_argument("--clk-freq", type=float, default=None,
                        help="with --board: the clock in Hz")
    parser.add_argument("--baud", type=int, default=115200, help="with --board")
    args = parser.parse_args(argv)
    params = dict(phys_size=args.phys_size, tlb_entries=args.tlb_entries,
                  walk_cache_entries=args.walk_cache_entries)
    if args.phys_base:
        params["phys_base"] = args.phys_base
    if args.board:
        if args.clk_freq is None:
            parser.exit(2, "mkclean.hdl.verilog: --board needs --clk-freq\n")
        params.update(board=True, clk_freq=args.clk_freq, baud=args.baud)
    elif args.clk_freq is not None:
        parser.exit(2, "mkclean.hdl.verilog: --clk-freq is for --board only\n")
    try:
        if args.output == "-":
            generate(sys.stdout, **params)
        else:
            with open(args.output, "w") as f:
                generate(f, **params)
    except ValueError as e:
        parser.exit(2, f"mkclean.hdl.verilog: {e}\n")


if __name__ == "__main__":
    main()

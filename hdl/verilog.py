"""Verilog of the MMU's tops: the standalone MMU (:class:`~.top.MMUTop`) for other SoCs,
and the batch top (:class:`~.batch.BatchTop`) that a host drives.

Run ``python -m mkclean.hdl.verilog -o mkclean_mmu.v`` (or ``make verilog``).
"""

import argparse
import sys

from amaranth.back import verilog

from .batch import BatchTop
from .top import MMUTop

TOP_NAME = "mkclean_mmu"
BATCH_TOP_NAME = "mkclean_batch"


def top_name(batch_depth=None, **params):
    """The Verilog module name of the top :func:`generate` writes for these parameters."""
    return TOP_NAME if batch_depth is None else BATCH_TOP_NAME


def generate(out, batch_depth=None, **params):
    """Write the Verilog of :class:`~.top.MMUTop`, or of :class:`~.batch.BatchTop` when
    ``batch_depth`` is given, to the text stream ``out``; returns the component."""
    if batch_depth is None:
        top = MMUTop(**params)
    else:
        top = BatchTop(batch_depth=batch_depth, **params)
    out.write(verilog.convert(top, name=top_name(batch_depth), emit_src=False))
    return top


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m mkclean.hdl.verilog",
                                     description="Write the MMU as standalone Verilog.")
    parser.add_argument("-o", "--output", default="-", help="file to write (default stdout)")
    parser.add_argument("--phys-size", type=lambda s: int(s, 0), default=64 << 20)
    parser.add_argument("--tlb-entries", type=int, default=16)
    parser.add_argument("--walk-cache-entries", type=int, default=8)
    args = parser.parse_args(argv)
    params = dict(phys_size=args.phys_size, tlb_entries=args.tlb_entries,
                  walk_cache_entries=args.walk_cache_entries)
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

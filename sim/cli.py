"""The ``mkclean`` command: one subcommand a module, each with ``add_arguments`` and ``main``.

Only the module of the command asked for is imported: ``mkclean run`` need not load cocotb.
"""

import argparse
import importlib
import sys

#: subcommand -> (module, one-line help)
COMMANDS = {
    "verify": ("mkclean.sim.cosim.verify", "random differential campaign: RTL MMU vs golden model"),
    "bench": ("mkclean.sim.bench", "measure the MMU and the kernel model, print figures"),
    "run": ("mkclean.sim.run", "run a workload on the kernel model over a hardware backend"),
    "waves": ("mkclean.sim.waves.command", "draw a window of a trace as a PNG, decoded"),
    "build": ("mkclean.sim.fpga.command", "build a board's bitstream: utilisation, Fmax"),
    "compare": ("mkclean.sim.compare", "one workload on several backends: the same traps "
                "and files"),
    "qemu": ("mkclean.sim.qemu.command", "the mechanism in firmware on QEMU's MMU (--demo)"),
    "realcheck": ("mkclean.sim.realcheck.command", "random programs on the host's Linux and "
                  "on the kernel model: the same results, faults and files"),
}


DESCRIPTION = """\
Run Linux's tracking of shared dirty pages (a kernel model: clean pages of shared
writable file mappings are mapped read-only, the store fault makes them writable and
dirty, writeback write-protects and cleans them again) on a RISC-V Sv39 MMU: a golden
Python model, the RTL of the MMU under Verilator or on an FPGA board, or QEMU's MMU through
firmware; check that no write is ever lost."""

EPILOG = """\
examples:
  mkclean run --workload db --seed 1              the kernel model on the golden MMU
  mkclean run --backend rtl --workload random     ... on the RTL MMU under Verilator
  mkclean verify --seed 7                         RTL against the golden MMU, at random
  mkclean bench                                   figures of the MMU and the kernel
  mkclean waves TRACE --at 1200 -o fault.png      a trace's window, decoded, as a PNG
  mkclean build --sweep                           a ULX3S bitstream, its LUTs and Fmax
  mkclean run --backend qemu --workload db        ... on QEMU's MMU, through firmware
  mkclean compare --backends golden,rtl,qemu      the same traps and files on all three
  mkclean qemu --demo                             the mechanism as firmware on QEMU
  mkclean realcheck --seeds 1-20                  the kernel model against the host's Linux

'mkclean COMMAND --help' tells more of each. Exit status: 0, 1 when a run failed (a lost
write, a mismatch), 2 for bad input."""


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="mkclean", description=DESCRIPTION,
                                     epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Only the command asked for is imported: `mkclean run` need not load cocotb.
    chosen = next((a for a in argv if not a.startswith("-")), None)
    module = None
    for name, (module_name, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(command)
    args = parser.parse_args(argv)
    try:
        return module.main(args) or 0
    except KeyboardInterrupt:
        print("mkclean: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

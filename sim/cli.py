"""The ``mkclean`` command: one subcommand a module, each with ``add_arguments`` and ``main``."""

import argparse
import importlib
import sys

#: subcommand -> (module, one-line help)
COMMANDS = {
    "verify": ("mkclean.sim.cosim.verify", "random differential campaign: RTL MMU vs golden model"),
    "bench": ("mkclean.sim.bench", "measure the MMU and the kernel model, print figures"),
    "run": ("mkclean.sim.run", "run a workload on the kernel model over a hardware backend"),
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="mkclean", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Only the command asked for is imported: `mkclean run` need not load cocotb.
    chosen = next((a for a in argv if not a.startswith("-")), None)
    module = None
    for name, (module_name, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
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

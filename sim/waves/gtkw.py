"""The GTKWave save file of a trace, and the filters it reads values through, written
beside the trace: ``trace.gtkw`` opens the trace with the catalogue's signals
(:mod:`.catalogue`) in their groups, each read as the catalogue reads it.

- An enum-valued signal (a walker state, a cause, a kernel event) goes through a translate
  filter file named after its enum (``filter_Cause.txt``): ``value name`` lines, the value
  in hex as GTKWave shows the signal (no prefix, padded to the signal's hex digits).
- A layout-valued signal (a PTE, a TLB entry, the walker's leaf) goes through a translate
  process (``decode_Pte.py``): a small script, run by this project's Python, that reads a
  hex value a line on stdin and writes the catalogue's decoding of it a line on stdout.
- A vector is named with its range (``top.u.x[3:0]``): GTKWave drops a vector named
  without one.

Only signals the trace holds are written (its vars as :class:`~.trace.Trace` reads them).
"""

import stat
import sys
from pathlib import Path

from vcd.gtkw import GTKWSave

from . import catalogue
from .catalogue import EnumDecoder, LayoutDecoder
from .trace import Trace, TraceError

#: What each group is called in GTKWave.
GROUP_TITLES = {
    "request": "request", "response": "response", "tlb": "TLB", "walker": "walker",
    "bus": "bus", "csr": "CSRs", "batch": "batch queue", "counters": "counters",
    "kernel": "kernel",
}


def gtkw_name(probe) -> str:
    """How GTKWave names the probe's var: a vector with its range."""
    return probe.path if probe.width == 1 else f"{probe.path}[{probe.width - 1}:0]"


def filter_file(folder: Path, decoder: EnumDecoder, width: int) -> Path:
    """Write the translate filter file of ``decoder``'s enum for a ``width``-bit signal."""
    digits = (width + 3) // 4
    path = folder / f"filter_{decoder.name}.txt"
    lines = [f"# {decoder.name} (mkclean.sim.waves.catalogue): value as GTKWave shows a "
             f"{width}-bit signal in hex, then its name"]
    lines += [f"{value:0{digits}X} {name}" for value, name in sorted(decoder.names.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


#: The translate process: {python} is this interpreter (the one with mkclean installed),
#: {name} the decoder's name in catalogue.DECODERS.
PROCESS_SCRIPT = '''#!{python}
"""GTKWave translate process: one hex value a line in, its {name} decoding a line out
(mkclean.sim.waves.catalogue). Written by mkclean.sim.waves.gtkw."""
import sys

from mkclean.sim.waves.catalogue import DECODERS

DECODER = DECODERS[{name!r}]


def main():
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        text = line.strip()
        try:
            value = int(text, 16)
        except ValueError:
            out = text      # x or z bits: as GTKWave shows them
        else:
            out = DECODER.decode(value, DECODER.width)
        sys.stdout.write(out + "\\n")
        sys.stdout.flush()   # GTKWave waits for each line before it sends the next


if __name__ == "__main__":
    main()
'''


def process_filter(folder: Path, decoder: LayoutDecoder) -> Path:
    """Write the executable translate process of ``decoder``'s layout."""
    path = folder / f"decode_{decoder.name}.py"
    path.write_text(PROCESS_SCRIPT.format(python=Path(sys.executable).absolute(),
                                          name=decoder.name))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def write_save(trace: Path) -> Path:
    """Write ``trace``'s GTKWave save file (same name, ``.gtkw``) and its filters beside
    it; returns the save file's path. Raises :class:`~.trace.TraceError` if the trace
    cannot be read."""
    trace = Path(trace)
    folder = trace.parent
    probes = catalogue.probes(Trace(trace).widths)
    filters = {}
    for probe in probes:
        decoder = probe.decoder
        if isinstance(decoder, EnumDecoder):
            key = (decoder.name, probe.width)
            if key not in filters:
                # One file per enum: every signal of an enum has the enum's width.
                assert all(k[0] != decoder.name for k in filters), key
                filters[key] = ("file", filter_file(folder, decoder, probe.width))
        elif isinstance(decoder, LayoutDecoder):
            key = (decoder.name, probe.width)
            if key not in filters:
                filters[key] = ("proc", process_filter(folder, decoder))
    save_path = trace.with_suffix(".gtkw")
    with open(save_path, "w") as out:
        save = GTKWSave(out)
        save.comment("Written by mkclean.sim.waves.gtkw: signals from "
                     "mkclean.sim.waves.catalogue")
        save.dumpfile(str(trace.resolve()))
        save.savefile(str(save_path.resolve()))
        for group in catalogue.GROUPS:
            members = [p for p in probes if p.group == group]
            if not members:
                continue
            with save.group(GROUP_TITLES[group], closed=False):
                for probe in members:
                    how, path = filters.get((probe.decoder.name, probe.width), (None, None))
                    save.trace(gtkw_name(probe), alias=probe.label,
                               datafmt="hex" if how else probe.decoder.datafmt,
                               translate_filter_file=str(path) if how == "file" else None,
                               translate_filter_proc=str(path) if how == "proc" else None)
    return save_path


def main(argv=None):
    """``python -m mkclean.sim.waves.gtkw TRACE``: (re)write a trace's save file."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m mkclean.sim.waves.gtkw TRACE (an .fst or .vcd file)",
              file=sys.stderr)
        return 2
    try:
        print(write_save(Path(args[0])))
    except TraceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

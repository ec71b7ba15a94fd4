"""What a traced run records, and the command-line options that ask for it.

:class:`Waves` is one value for everything that records a trace: ``mkclean run --waves``,
``mkclean verify --waves``, WAVES=1 for a test run (:meth:`Waves.from_env`), and the replay
command a failing run prints (:func:`replay_words`). The simulator side (which plusargs cut
the window) is sim/cosim/build.py's.
"""

import os
from dataclasses import dataclass
from pathlib import Path

from ..argcheck import BadInput, integer

#: Trace formats a traced build writes: FST (compact; Verilator links liblz4 for it,
#: Debian's liblz4-dev) or VCD (text, needs nothing).
TRACE_FORMATS = ("fst", "vcd")
#: Cycles a trace window reaches before and after the cycle it is centred on.
DEFAULT_WINDOW = 2000


@dataclass(frozen=True)
class Waves:
    """What a traced run records: ``trace.fst`` (or ``.vcd``) in ``dir``, with a GTKWave
    save file and its filters beside it (:mod:`.gtkw`).

    With ``around`` set, the simulator writes only the cycles from ``around - window``
    to ``around + window`` (cut inside the simulator, so a long run costs no more disk
    and time than its window); without it, the whole run.
    """
    dir: Path
    format: str = "fst"
    around: int | None = None
    window: int = DEFAULT_WINDOW

    def __post_init__(self):
        if self.format not in TRACE_FORMATS:
            raise ValueError(f"waves format {self.format!r}: choose one of "
                             f"{', '.join(TRACE_FORMATS)}")
        if self.window < 0:
            raise ValueError(f"a waves window is a count of cycles >= 0, got {self.window}")
        if self.around is not None and self.around < 0:
            raise ValueError(f"a waves window is centred on a cycle >= 0, got {self.around}")

    @property
    def trace(self) -> Path:
        return Path(self.dir) / f"trace.{self.format}"

    @property
    def cycles(self):
        """The first and last cycle traced (last None: to the end of the run)."""
        if self.around is None:
            return 0, None
        return max(0, self.around - self.window), self.around + self.window

    @classmethod
    def from_env(cls, default_dir):
        """For a test run: WAVES=1 in the environment traces it into MKCLEAN_WAVES_DIR
        (default ``default_dir``), as MKCLEAN_WAVES_FORMAT (fst), around the cycle
        MKCLEAN_WAVES_AT with MKCLEAN_WAVES_WINDOW cycles each side (what the replay
        command of a failing random bench sets). None without WAVES=1; ValueError naming
        the variable that is wrong."""
        env = os.environ
        if env.get("WAVES", "0") in ("", "0"):
            return None

        def number(name, default):
            text = env.get(name)
            if text is None:
                return default
            try:
                return int(text)
            except ValueError:
                raise ValueError(f"{name}={text!r} is not a number of cycles") from None
        return cls(Path(env.get("MKCLEAN_WAVES_DIR") or default_dir),
                   env.get("MKCLEAN_WAVES_FORMAT", "fst"),
                   number("MKCLEAN_WAVES_AT", None), number("MKCLEAN_WAVES_WINDOW",
                                                            DEFAULT_WINDOW))


def add_arguments(parser):
    """``--waves DIR``, ``--waves-format``, ``--waves-at``, ``--waves-window``."""
    parser.add_argument("--waves", metavar="DIR",
                        help="record the RTL's signals: DIR/trace.fst and DIR/trace.gtkw "
                             "(GTKWave, decoded), with the kernel's actions beside them")
    parser.add_argument("--waves-format", default="fst", metavar="F",
                        help=f"{' or '.join(TRACE_FORMATS)} (default: fst)")
    parser.add_argument("--waves-at", metavar="CYCLE",
                        help="record only a window around this cycle (what a failing "
                             "run's replay command gives)")
    parser.add_argument("--waves-window", default=str(DEFAULT_WINDOW), metavar="N",
                        help=f"cycles before and after --waves-at (default: {DEFAULT_WINDOW})")


def from_args(args):
    """The :class:`Waves` the options ask for, or None; BadInput naming the option that
    is wrong."""
    if args.waves is None:
        if args.waves_at is not None:
            raise BadInput("--waves-at needs --waves DIR")
        return None
    folder = Path(args.waves)
    if folder.exists() and not folder.is_dir():
        raise BadInput(f"--waves {args.waves!r} is a file, not a folder")
    if args.waves_format not in TRACE_FORMATS:
        raise BadInput(f"--waves-format {args.waves_format!r}: choose one of "
                       f"{', '.join(TRACE_FORMATS)}")
    return Waves(folder, args.waves_format,
                 None if args.waves_at is None else integer(args.waves_at, "--waves-at", 0),
                 integer(args.waves_window, "--waves-window", 0))


def replay_words(folder, around, window=DEFAULT_WINDOW):
    """The options that replay a run with a window of waves around cycle ``around``."""
    return f"--waves {folder} --waves-at {around} --waves-window {window}"

"""What every workload shares: the kernel, a seeded RNG, the shadow of the files, the final
check for lost writes, the timing and the JSON."""

import hashlib
import random
import time
from dataclasses import dataclass

from mkclean.sim.kernel import MS_SYNC


@dataclass(frozen=True)
class Option:
    """A workload option: its default (whose type is the option's), its range and what it
    means. Declared once, on the workload class; ``mkclean run --set`` and the workload's
    constructor both check values against it."""
    default: int | float
    minimum: int | float | None = None
    maximum: int | float | None = None
    help: str = ""

    def parse(self, name: str, text: str):
        """The value of ``text`` (a command-line string), of the option's type but not yet
        checked against its range (:meth:`Workload.checked_options` does that);
        ValueError naming the problem."""
        kind = type(self.default)
        try:
            value = int(text.replace("_", ""), 0) if kind is int else kind(text)
        except ValueError:
            raise ValueError(f"{name}={text!r} is not {_article(kind)}") from None
        return value

    def check(self, name: str, value):
        """``value`` if it is of the option's type and in range; ValueError otherwise."""
        kind = type(self.default)
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float
                                                     else kind):
            raise ValueError(f"{name}={value!r} is not {_article(kind)}")
        if value != value:
            raise ValueError(f"{name}={value!r} is not a number")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{name} must be at least {self.minimum}, got {value}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"{name} must be at most {self.maximum}, got {value}")
        return value

    def describe(self) -> str:
        """The range and default, for --help: ``1..4096, default 8``."""
        low = "" if self.minimum is None else self.minimum
        high = "" if self.maximum is None else self.maximum
        return f"{low}..{high}, default {self.default}"


def _article(kind) -> str:
    return {int: "an integer", float: "a number"}.get(kind, f"a {kind.__name__}")


class Workload:
    """A workload: ``run()`` does ``accesses`` loads and stores (and its syscalls) on a kernel.

    Subclasses declare their :attr:`options` and implement :meth:`setup` and :meth:`steps`
    (a generator doing the work in chunks, yielding the accesses done since the last
    yield). Each option is an attribute of the same name.
    """

    name = "?"
    #: Physical memory the workload wants by default.
    phys_size = 64 << 20
    #: name -> Option: what ``mkclean run --set NAME=VALUE`` may change
    options: dict[str, Option] = {}

    def __init__(self, kernel, seed: int, accesses: int, samples: int = 50, **options):
        for key, value in self.checked_options(**options).items():
            setattr(self, key, value)
        self.k = kernel
        self.seed = seed
        self.rng = random.Random(seed)
        self.accesses = accesses
        self.done = 0
        self.shadow: dict = {}        # File -> bytearray of what the file must hold
        self.mismatches = []          # what went wrong besides lost writes (first few)
        self.n_mismatches = 0
        self.timeline = []
        self.sample_every = max(1, accesses // samples) if samples else 0
        # Half a period off, so that samples do not all fall just after a periodic pass.
        self._next_sample = max(1, self.sample_every // 2)
        self.elapsed = 0.0
        self.dirty_known = self.dirty_real = 0
        self.lost_writes = 0
        self.lost_bytes = 0
        self.lost_pages = []          # (file name, page index) of the first few lost pages

    # -- to implement ----------------------------------------------------------------------------

    @classmethod
    def checked_options(cls, **options) -> dict:
        """Every option's value, ``options`` over the defaults, each checked against its
        declaration and then together (:meth:`check_together`); ValueError naming the
        problem. What a command calls to check its input before any work starts."""
        unknown = sorted(set(options) - set(cls.options))
        if unknown:
            raise ValueError(f"the {cls.name} workload has no option {unknown[0]!r}: its "
                             f"options are {', '.join(cls.options)}")
        values = {key: option.check(key, options.get(key, option.default))
                  for key, option in cls.options.items()}
        cls.check_together(values)
        return values

    @classmethod
    def check_together(cls, values: dict) -> None:
        """What one option's range cannot say: ValueError, or adjust ``values``."""

    def setup(self) -> None:
        raise NotImplementedError

    def steps(self):
        raise NotImplementedError

    # -- helpers ---------------------------------------------------------------------------------

    def mismatch(self, what: str) -> None:
        self.n_mismatches += 1
        if len(self.mismatches) < 10:
            self.mismatches.append(what)

    def sample(self) -> None:
        st = self.k.stats
        self.timeline.append({
            "accesses": self.done, "faults": st["faults_total"], "sfences": st["sfences"],
            "writeback_pages": st["writeback_pages"], "dirty_known": st["dirty_known"],
            "dirty_real": st["dirty_real"]})

    # -- running ---------------------------------------------------------------------------------

    def run(self, progress=None) -> dict:
        self.setup()
        clock = time.perf_counter
        elapsed = 0.0
        t = clock()
        for n in self.steps():
            self.done += n
            if progress is not None:
                progress(n)
            if self.sample_every and self.done >= self._next_sample:
                elapsed += clock() - t
                self.sample()
                self._next_sample += self.sample_every
                t = clock()
        elapsed += clock() - t
        self.elapsed = elapsed
        self.dirty_known, self.dirty_real = self.k.dirty_counts()
        self.finish()
        return self.result()

    def finish(self) -> None:
        """The last msync of every mapping, a sync, and the files against the shadow."""
        k = self.k
        for p in list(k.processes):
            for start, end, *_ in p.vmas():
                p.msync(start, end - start, MS_SYNC)
        k.sync()
        lost_pages = lost_bytes = 0
        for f, want in self.shadow.items():
            want = bytes(want[:f.size])
            got = f.on_disk(0, len(want) + 4096)
            if got == want:
                continue
            if len(got) != len(want):
                self.mismatch(f"{f.name}: {len(got)} bytes on disk, {len(want)} expected")
            for off in range(0, max(len(got), len(want)), 4096):
                a, b = got[off:off + 4096], want[off:off + 4096]
                if a != b:
                    lost_pages += 1
                    if len(self.lost_pages) < 10:
                        self.lost_pages.append((f.name, off // 4096))
                    lost_bytes += sum(1 for x, y in zip(a, b) if x != y) + abs(len(a) - len(b))
        self.lost_writes = lost_pages
        self.lost_bytes = lost_bytes

    def _mean(self, key):
        if not self.timeline:
            return None
        return round(sum(s[key] for s in self.timeline) / len(self.timeline), 1)

    def result(self) -> dict:
        st = self.k.stats
        return {
            "workload": self.name, "seed": self.seed, "policy": self.k.policy.name,
            "ad": self.k.ad, "backend": self.k.backend,
            "accesses": self.done,
            "accesses_per_s": round(self.done / self.elapsed) if self.elapsed > 0 else None,
            "elapsed_s": round(self.elapsed, 3),
            "faults": st["faults"], "faults_total": st["faults_total"], "traps": st["traps"],
            "sfences": st["sfences"], "mkclean_ptes": st["mkclean_ptes"],
            "pte_scans": st["pte_scans"], "writeback_pages": st["writeback_pages"],
            "lost_writes": self.lost_writes, "lost_bytes": self.lost_bytes,
            "lost_pages": [list(page) for page in self.lost_pages],
            "mismatches": self.n_mismatches, "first_mismatches": self.mismatches,
            "dirty_known": self.dirty_known, "dirty_real": self.dirty_real,
            "dirty_known_mean": self._mean("dirty_known"),
            "dirty_real_mean": self._mean("dirty_real"),
            "timeline": self.timeline,
            # what two backends must agree on for the same seed: each file's contents
            # (SHA-256) and, when the kernel records them, its traps (ASID, cause, address)
            "files": {f.name: hashlib.sha256(f.on_disk(0, f.size)).hexdigest()
                      for f in self.k.files.values()},
            **({"trace": [list(t) for t in self.k.trace]} if self.k.trace is not None
               else {}),
        }

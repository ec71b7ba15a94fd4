"""The demo's output, read and checked against a replay of its user program.

The firmware's demo (firmware/demo.c) prints one line of parameters, one line a round and
a closing line (firmware/README.md, "The demo"). Its user program picks the page of each
store with xorshift64 from the seed; :func:`predict` runs that generator here, so the
counts the firmware reports are checked against what Linux's mechanism must do, not
against themselves: a round faults once on each page it stores to (every page is clean
after the last round's writeback), writes each back once, and page_mkclean cleans each.
"""

import re
from dataclasses import dataclass, field

MASK64 = (1 << 64) - 1

_HEADER = re.compile(r"mkclean-demo seed=(\d+) pages=(\d+) rounds=(\d+) stores=(\d+)$")
_ROUND = re.compile(r"round (\d+): stores=(\d+) faults=(\d+) writeback=(\d+)$")
_CLOSING = re.compile(r"mkclean-demo: faults=(\d+) writebacks=(\d+) mkclean=(\d+) "
                      r"sfence=(\d+) lost=(\d+) (PASS|FAIL)$")


def xorshift64(x: int) -> int:
    """The user program's generator (firmware/demo_entry.S)."""
    x ^= (x << 13) & MASK64
    x ^= x >> 7
    x ^= (x << 17) & MASK64
    return x


def predict(seed: int, pages: int, rounds: int, stores: int) -> list[int]:
    """The pages each round must fault on (and write back): the distinct pages its
    stores go to, from the same generator."""
    x, per_round = seed, []
    for _ in range(rounds):
        touched = set()
        for _ in range(stores):
            x = xorshift64(x)
            touched.add(x & (pages - 1))
        per_round.append(len(touched))
    return per_round


@dataclass
class DemoResult:
    """What the demo printed, and what the host found wrong with it."""
    seed: int = 0
    pages: int = 0
    rounds: list = field(default_factory=list)      # (stores, faults, writeback) each
    totals: dict = field(default_factory=dict)      # faults, writebacks, mkclean, sfence, lost
    verdict: str = ""                               # the firmware's PASS or FAIL
    problems: list = field(default_factory=list)

    def as_json(self) -> dict:
        return {"seed": self.seed, "pages": self.pages,
                "rounds": [dict(zip(("stores", "faults", "writeback"), r))
                           for r in self.rounds],
                "totals": self.totals, "firmware_verdict": self.verdict,
                "problems": self.problems, "passed": not self.problems}


def check(output: str, status: int, seed: int) -> DemoResult:
    """The demo's UART output and QEMU's exit status, checked: its own verdict, no lost
    write, and each round's counts against :func:`predict`."""
    r = DemoResult()
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    header = next((m for m in map(_HEADER.match, lines) if m), None)
    closing = next((m for m in map(_CLOSING.match, lines) if m), None)
    if header is None or closing is None:
        last = lines[-1] if lines else "nothing"
        r.problems.append(f"the demo's output is incomplete (its last line: {last!r})")
        return r
    r.seed, r.pages, n_rounds, stores = map(int, header.groups())
    r.rounds = [tuple(map(int, m.groups()[1:])) for m in map(_ROUND.match, lines) if m]
    names = ("faults", "writebacks", "mkclean", "sfence", "lost")
    r.totals = dict(zip(names, map(int, closing.groups()[:5])))
    r.verdict = closing.group(6)
    if r.seed != seed:
        r.problems.append(f"the demo ran with seed {r.seed}, not the {seed} it was given")
    if status != 0 or r.verdict != "PASS":
        r.problems.append(f"the firmware says {r.verdict} (QEMU's exit status {status})")
    if r.totals["lost"]:
        r.problems.append(f"{r.totals['lost']} writes lost")
    want = predict(r.seed, r.pages, n_rounds, stores)
    if len(r.rounds) != n_rounds:
        r.problems.append(f"{len(r.rounds)} rounds reported of {n_rounds}")
    for i, ((n, faults, writeback), pages) in enumerate(zip(r.rounds, want), 1):
        if n != stores or faults != pages or writeback != pages:
            r.problems.append(f"round {i}: {faults} faults and {writeback} pages written "
                              f"back of {n} stores; the replay says {pages} and {pages} "
                              f"of {stores}")
    total = sum(want)
    expected = {"faults": total, "writebacks": total, "mkclean": total,
                # one flush in do_wp_page, one in page_mkclean, for each page
                "sfence": 2 * total}
    for name, value in expected.items():
        if r.totals[name] != value:
            r.problems.append(f"{r.totals[name]} {name} in all, the replay says {value}")
    return r


def summary(r: DemoResult) -> str:
    lines = [f"demo on QEMU's MMU, seed {r.seed}: {r.pages} file pages, "
             f"{len(r.rounds)} rounds"]
    for i, (stores, faults, writeback) in enumerate(r.rounds, 1):
        lines.append(f"  round {i}: {stores} stores, {faults} write faults, "
                     f"{writeback} pages written back")
    if r.totals:
        t = r.totals
        lines.append(f"  in all: {t['faults']} write faults (do_wp_page), {t['mkclean']} "
                     f"page_mkclean, {t['sfence']} sfence.vma, {t['writebacks']} pages "
                     f"written back, {t['lost']} writes lost")
    for p in r.problems:
        lines.append(f"  PROBLEM: {p}")
    lines.append("PASSED: the counts are the replay's and no write was lost" if not r.problems
                 else "FAILED")
    return "\n".join(lines)

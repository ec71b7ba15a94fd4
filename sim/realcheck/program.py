"""A realcheck program: files, then memory syscalls and one-byte accesses, in the text both
sides read (the executor's format, sim/realcheck/executor.c), and its random generator.

An op is a tuple: its name, then ints. Addresses are absolute and lie in :data:`ARENA`,
which is free in the executor and inside Sv39's user space in the model, so both sides
give the same addresses and every mmap is MAP_FIXED or MAP_FIXED_NOREPLACE. ``fork``
starts a child that runs the ops up to its matching ``exit``; then the parent goes on.
"""

import random
from dataclasses import dataclass

from mkclean.sim.kernel.constants import (MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE,
                                          MAP_POPULATE, MAP_PRIVATE, MAP_SHARED,
                                          MAP_SHARED_VALIDATE, MS_ASYNC, MS_INVALIDATE,
                                          MS_SYNC, PAGE_SIZE, PROT_EXEC, PROT_READ,
                                          PROT_WRITE)

#: Where programs map: 128 GiB, below Sv39's 256 GiB of user space and far from anything
#: an x86-64 process has mapped.
ARENA = 0x20_0000_0000
#: Pages of the arena a generated program uses.
ARENA_PAGES = 40
MAX_FILES = 8
#: Each op's fields after its name (the executor checks the same counts).
FIELDS = {
    "mmap": ("addr", "len", "prot", "flags", "file", "offset"),
    "munmap": ("addr", "len"),
    "mprotect": ("addr", "len", "prot"),
    "msync": ("addr", "len", "flags"),
    "mlock": ("addr", "len"),
    "munlock": ("addr", "len"),
    "load": ("addr",),
    "store": ("addr", "byte"),
    "pwrite": ("file", "offset", "len", "byte"),
    "ftruncate": ("file", "size"),
    "fork": (),
    "exit": (),
}
#: Ops that access memory: their results carry a fault count.
ACCESSES = ("load", "store")

_PROTS = {"PROT_READ": PROT_READ, "PROT_WRITE": PROT_WRITE, "PROT_EXEC": PROT_EXEC}
_MAP_FLAGS = {"MAP_FIXED": MAP_FIXED, "MAP_ANONYMOUS": MAP_ANONYMOUS,
              "MAP_POPULATE": MAP_POPULATE, "MAP_FIXED_NOREPLACE": MAP_FIXED_NOREPLACE}
_MAP_TYPES = {MAP_SHARED: "MAP_SHARED", MAP_PRIVATE: "MAP_PRIVATE",
              MAP_SHARED_VALIDATE: "MAP_SHARED_VALIDATE"}
_MS_FLAGS = {"MS_ASYNC": MS_ASYNC, "MS_INVALIDATE": MS_INVALIDATE, "MS_SYNC": MS_SYNC}


@dataclass(frozen=True)
class Program:
    """``files``: each file's size at the start (file N is ``fN``); ``ops``: the op tuples."""
    files: tuple
    ops: tuple

    def text(self) -> str:
        """The program as the executor reads it."""
        lines = [f"file {n} {size}" for n, size in enumerate(self.files)]
        lines += [" ".join([op[0]] + [_num(v) for v in op[1:]]) for op in self.ops]
        return "\n".join(lines) + "\n"

    def listing(self) -> str:
        """The program for a person: one op a line, numbered, flags by name, addresses as
        arena + offset."""
        lines = [f"file {n} {size}" for n, size in enumerate(self.files)]
        depth = 0
        for i, op in enumerate(self.ops):
            if op[0] == "exit":
                depth -= 1
            lines.append(f"{i:>3}  {'  ' * depth}{describe(op)}")
            if op[0] == "fork":
                depth += 1
        return "\n".join(lines)


def _num(v: int) -> str:
    return hex(v) if v >= 0x10000 else str(v)


def _addr(a: int) -> str:
    return f"A+{a - ARENA:#x}" if ARENA <= a < ARENA + (1 << 30) else hex(a)


def _bits(value: int, names: dict) -> str:
    parts = [name for name, bit in names.items() if value & bit]
    rest = value & ~sum(names.values())
    if rest:
        parts.append(hex(rest))
    return "|".join(parts) or "0"


def describe(op) -> str:
    """One op as a person reads it: ``mmap A+0x3000 8192 PROT_READ MAP_SHARED|MAP_FIXED f0
    @0``."""
    name, *a = op
    if name == "mmap":
        addr, length, prot, flags, f, offset = a
        mtype = _MAP_TYPES.get(flags & 0xF, hex(flags & 0xF))
        more = _bits(flags & ~0xF, _MAP_FLAGS)
        where = "anon" if f < 0 else f"f{f} @{offset:#x}"
        return (f"mmap {_addr(addr)} {length:#x} {_bits(prot, _PROTS)} "
                f"{mtype}{'' if more == '0' else '|' + more} {where}")
    if name in ("munmap", "mlock", "munlock"):
        return f"{name} {_addr(a[0])} {a[1]:#x}"
    if name == "mprotect":
        return f"mprotect {_addr(a[0])} {a[1]:#x} {_bits(a[2], _PROTS)}"
    if name == "msync":
        return f"msync {_addr(a[0])} {a[1]:#x} {_bits(a[2], _MS_FLAGS)}"
    if name == "load":
        return f"load {_addr(a[0])}"
    if name == "store":
        return f"store {_addr(a[0])} {a[1]}"
    if name == "pwrite":
        return f"pwrite f{a[0]} @{a[1]:#x} {a[2]} bytes of {a[3]}"
    if name == "ftruncate":
        return f"ftruncate f{a[0]} {a[1]:#x}"
    return name


def parse(text: str) -> Program:
    """A program from its text (what :meth:`Program.text` writes, comments and blank lines
    allowed); ValueError naming the line for anything else."""
    files, ops = [], []
    depth = 0
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        name, args = words[0], words[1:]
        try:
            values = [int(w, 0) for w in args]
        except ValueError:
            raise ValueError(f"line {number}: {line.strip()!r}: fields must be integers") \
                from None
        if name == "file":
            if ops or len(values) != 2 or values[0] != len(files) or values[1] < 0:
                raise ValueError(f"line {number}: files come first, numbered from 0, as "
                                 f"'file N SIZE'")
            if len(files) == MAX_FILES:
                raise ValueError(f"line {number}: at most {MAX_FILES} files")
            files.append(values[1])
            continue
        if name not in FIELDS:
            raise ValueError(f"line {number}: unknown op {name!r}")
        if len(values) != len(FIELDS[name]):
            raise ValueError(f"line {number}: {name} takes {' '.join(FIELDS[name]) or 'nothing'}")
        if name in ("pwrite", "ftruncate") and not 0 <= values[0] < len(files) \
                or name == "mmap" and not -1 <= values[4] < len(files):
            raise ValueError(f"line {number}: no file {values[0 if name != 'mmap' else 4]}")
        depth += {"fork": 1, "exit": -1}.get(name, 0)
        if depth < 0:
            raise ValueError(f"line {number}: exit without a fork")
        ops.append((name, *values))
    if depth:
        raise ValueError(f"{depth} fork(s) without their exit")
    return Program(tuple(files), tuple(ops))


# -- the generator ----------------------------------------------------------------------------------

def generate(seed: int, n_ops: int = 40) -> Program:
    """A random program of about ``n_ops`` ops, the same for the same seed.

    Accesses go mostly where a mapping was made, so that most of them reach a fault path
    rather than a hole; ranges of the range syscalls often span a hole or a VMA boundary.
    pwrite stays within one page: a longer write makes ext4 build a large folio, whose
    dirtiness is one for all its pages, which the model (one page a folio) does not have.
    """
    rng = random.Random(seed)
    files = tuple(rng.choices([rng.randrange(1, 12) * PAGE_SIZE,
                               rng.randrange(1, 12 * PAGE_SIZE), 0], [4, 4, 1])[0]
                  for _ in range(rng.randrange(1, 4)))
    gen = _Gen(rng, files)
    ops = [gen.op("mmap") for _ in range(rng.randrange(1, 4))]
    while len(ops) < n_ops:
        r = rng.random()
        if r < 0.06:
            block = [gen.op() for _ in range(rng.randrange(0, 6))]
            ops += [("fork",), *block, ("exit",)]
        elif r < 0.12:
            ops += gen.motif()
        else:
            ops.append(gen.op())
    return Program(files, tuple(ops))


class _Gen:
    def __init__(self, rng: random.Random, files: tuple):
        self.rng = rng
        self.files = files
        self.mapped = []            # (first page, pages) of each mmap, a hint for accesses

    def page_addr(self, page: int) -> int:
        return ARENA + page * PAGE_SIZE

    def range(self):
        """An address and length: often a mapping's range or one spanning its edge."""
        rng = self.rng
        if self.mapped and rng.random() < 0.7:
            first, pages = rng.choice(self.mapped)
            start = max(0, first + rng.choice([-1, 0, 0, rng.randrange(pages)]))
            n = max(1, rng.randrange(1, pages + 3))
        else:
            start, n = rng.randrange(ARENA_PAGES - 1), rng.randrange(1, 10)
        length = n * PAGE_SIZE - (rng.randrange(1, PAGE_SIZE) if rng.random() < 0.15 else 0)
        return self.page_addr(start), length

    def prot(self) -> int:
        # PROT_EXEC alone is rare: on x86-64 a load from it is the named difference
        # exec-only-load, which ends the comparison.
        return self.rng.choices([PROT_READ, PROT_READ | PROT_WRITE, PROT_WRITE, 0,
                                 PROT_READ | PROT_EXEC, PROT_EXEC], [6, 9, 2, 2, 1, 0.25])[0]

    def access_addr(self) -> int:
        rng = self.rng
        if self.mapped and rng.random() < 0.9:
            first, pages = rng.choice(self.mapped[-4:])
            page = first + rng.randrange(pages)
        else:
            page = rng.randrange(ARENA_PAGES)
        return self.page_addr(page) + rng.randrange(PAGE_SIZE)

    def motif(self) -> list:
        """A few ops in an order that reaches a path random ops seldom line up for: pages
        cached next to a read fault (fault-around), a private page shared by fork and
        then mprotected back to writable (PageAnonExclusive), a file grown from an
        unaligned size under a mapping (pagecache_isize_extended), a range syscall over a
        mapping with a hole punched in it."""
        rng = self.rng
        f = rng.randrange(len(self.files))
        first = rng.randrange(ARENA_PAGES - 8)
        pages = rng.randrange(2, 9)
        addr = self.page_addr(first)
        length = pages * PAGE_SIZE
        self.mapped.append((first, pages))
        kind = rng.choice(["cached", "cow", "grow", "hole"])
        if kind == "cached":
            ops = [("pwrite", f, p * PAGE_SIZE + rng.randrange(PAGE_SIZE), 1,
                    rng.randrange(1, 256)) for p in range(pages) if rng.random() < 0.7]
            ops.append(("mmap", addr, length, rng.choice([PROT_READ, PROT_READ | PROT_WRITE]),
                        rng.choice([MAP_SHARED, MAP_PRIVATE]) | MAP_FIXED, f, 0))
            ops += [("load", self.page_addr(first + rng.randrange(pages)) + 7)
                    for _ in range(3)]
            ops.append(("store", addr + rng.randrange(length), rng.randrange(1, 256)))
            return ops
        if kind == "cow":
            va = addr + rng.randrange(length)
            anon = rng.random() < 0.5
            return [("mmap", addr, length, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_FIXED | (MAP_ANONYMOUS if anon else 0),
                     -1 if anon else f, 0),
                    ("store", va, rng.randrange(1, 256)), ("fork",),
                    *([("load", va)] if rng.random() < 0.5 else []), ("exit",),
                    ("mprotect", addr, length, PROT_READ),
                    ("mprotect", addr, length, PROT_READ | PROT_WRITE),
                    ("store", va, rng.randrange(1, 256)), ("load", va)]
        if kind == "grow":
            size = rng.randrange(1, pages * PAGE_SIZE)
            eof_page = self.page_addr(first + size // PAGE_SIZE)
            beyond = eof_page + rng.randrange(PAGE_SIZE)
            return [("ftruncate", f, size),
                    ("mmap", addr, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, f, 0),
                    ("store", beyond, rng.randrange(1, 256)),
                    *([("msync", addr, length, MS_SYNC), ("load", beyond)]
                      if rng.random() < 0.5 else []),
                    ("ftruncate", f, size + rng.randrange(1, 3 * PAGE_SIZE)),
                    ("store", eof_page + rng.randrange(PAGE_SIZE), rng.randrange(1, 256)),
                    ("load", eof_page + rng.randrange(PAGE_SIZE))]
        hole = rng.randrange(1, pages)
        ops = [("ftruncate", f, max(self.files[f], length)),
               ("mmap", addr, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, f, 0)]
        ops += [("store", self.page_addr(first + p), rng.randrange(1, 256))
                for p in range(pages)]
        ops.append(("munmap", self.page_addr(first + hole), PAGE_SIZE))
        ops.append(rng.choice([("mprotect", addr, length, PROT_READ),
                               ("msync", addr, length, MS_SYNC),
                               ("mlock", addr, length), ("munlock", addr, length)]))
        ops += [("store", self.page_addr(first + p) + 1, rng.randrange(1, 256))
                for p in range(pages) if p != hole]
        return ops

    def op(self, kind=None):
        rng = self.rng
        kind = kind or rng.choices(
            ["mmap", "munmap", "mprotect", "msync", "mlock", "munlock", "load", "store",
             "pwrite", "ftruncate"],
            [14, 3, 7, 7, 1, 1, 28, 28, 6, 5])[0]
        nfiles = len(self.files)
        if kind == "mmap":
            first = rng.randrange(ARENA_PAGES - 8)
            pages = rng.randrange(1, 9)
            self.mapped.append((first, pages))
            anon = rng.random() < 0.2
            mtype = rng.choices([MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE], [6, 3, 1])[0]
            flags = mtype | rng.choices([MAP_FIXED, MAP_FIXED_NOREPLACE], [5, 1])[0]
            if anon:
                flags |= MAP_ANONYMOUS
            if rng.random() < 0.08:
                flags |= MAP_POPULATE
            length = pages * PAGE_SIZE - (rng.randrange(1, PAGE_SIZE) if rng.random() < 0.1
                                          else 0)
            f = -1 if anon else rng.randrange(nfiles)
            size_pages = 0 if anon else -(-self.files[f] // PAGE_SIZE)
            offset = 0 if anon else rng.randrange(0, max(size_pages, 1) + 1) * PAGE_SIZE
            prot = PROT_READ | PROT_WRITE if rng.random() < 0.5 else self.prot()
            if prot and not prot & PROT_READ:
                flags &= ~MAP_POPULATE          # the executor populates readable maps only
            return ("mmap", self.page_addr(first), length, prot, flags, f, offset)
        if kind in ("munmap", "mlock", "munlock"):
            return (kind, *self.range())
        if kind == "mprotect":
            return ("mprotect", *self.range(), self.prot())
        if kind == "msync":
            flags = rng.choices([MS_SYNC, MS_ASYNC, MS_SYNC | MS_INVALIDATE, MS_INVALIDATE],
                                [6, 2, 1, 1])[0]
            return ("msync", *self.range(), flags)
        if kind == "load":
            return ("load", self.access_addr())
        if kind == "store":
            return ("store", self.access_addr(), rng.randrange(1, 256))
        if kind == "pwrite":
            offset = rng.randrange(0, 12 * PAGE_SIZE)
            n = rng.randrange(1, PAGE_SIZE - offset % PAGE_SIZE + 1)
            return ("pwrite", rng.randrange(nfiles), offset, n, rng.randrange(1, 256))
        size = rng.choice([rng.randrange(0, 12) * PAGE_SIZE, rng.randrange(0, 12 * PAGE_SIZE)])
        return ("ftruncate", rng.randrange(nfiles), size)

"""``random``: processes sharing files, with random loads, stores, msync, mprotect, fork,
exit, munmap/mmap, write/read, ftruncate, and a writeback pass every ``writeback_every``
steps. Every outcome is checked against the oracle (oracle.py): the bytes of each load and
read(), and each signal; with ``check_every`` the kernel's invariants too.

Every ``plain_every``-th file has no page_mkwrite: the file systems the 2.6.19 patch was
written for, where only the fault path itself (fault_dirty_shared_page) dirties the page.
With ``full_mix`` every syscall flavour comes in too: mlock and munlock, mmap with
MAP_LOCKED or MAP_POPULATE, msync with MS_ASYNC|MS_INVALIDATE or no flag, and shared
anonymous memory from the start (what the kernel's coverage test runs).
"""

from mkclean.sim.kernel import (MAP_ANONYMOUS, MAP_FIXED, MAP_LOCKED, MAP_POPULATE, MAP_PRIVATE,
                                MAP_SHARED, MS_ASYNC, MS_INVALIDATE, MS_SYNC, PROT_READ,
                                PROT_WRITE, KernelError, Signal)
from mkclean.sim.kernel.invariants import InvariantError, check_all

from .base import Option, Workload
from .oracle import Oracle

PAGE = 4096
RW = PROT_READ | PROT_WRITE
PROTS = (RW,) * 6 + (PROT_READ, 0)
MSYNC_FLAGS = (MS_ASYNC, MS_SYNC, MS_INVALIDATE, MS_SYNC | MS_INVALIDATE)
KINDS = ("shared", "shared", "shared", "private", "anon", "shanon")


def errno_of(syscall, *args) -> int:
    """The errno a syscall fails with, or 0: what the oracle predicts."""
    try:
        syscall(*args)
    except KernelError as e:
        return e.errno
    return 0


class RandomMix(Workload):
    name = "random"

    options = {
        "files": Option(3, 1, 64, "files every process maps shared"),
        "plain_every": Option(3, 0, 64, "every Nth file has no page_mkwrite (0: none has)"),
        "file_pages": Option(16, 4, 4096, "pages of each file (the private mapping takes 4)"),
        "procs": Option(2, 1, 64, "processes at the start"),
        "max_procs": Option(5, 1, 64, "processes at most (fork stops there)"),
        "writeback_every": Option(500, 1, help="steps between writeback passes"),
        "syscall_share": Option(0.05, 0.0, 0.9, "share of the steps that are syscalls"),
        "check_every": Option(0, 0, help="steps between checks of the kernel's invariants "
                                         "(0: never)"),
        "chunk": Option(256, 1, 1 << 16, "steps between progress reports"),
        "full_mix": Option(0, 0, 1, "1: every syscall flavour (mlock, MAP_LOCKED, "
                                    "MAP_POPULATE, MS_ASYNC|MS_INVALIDATE, shared "
                                    "anonymous memory from the start)"),
    }

    def __init__(self, kernel, seed, accesses, **kw):
        super().__init__(kernel, seed, accesses, **kw)
        self.signals = 0

    @classmethod
    def check_together(cls, values):
        if values["max_procs"] < values["procs"]:
            raise ValueError(f"max_procs ({values['max_procs']}) must be at least procs "
                             f"({values['procs']})")

    # -- set-up -----------------------------------------------------------------------------------

    def setup(self):
        k, o = self.k, Oracle()
        self.o = o
        self.file_list = []
        for i in range(self.files):
            plain = self.plain_every and i % self.plain_every == self.plain_every - 1
            f = k.create_file(f"file{i}", self.file_pages * PAGE, page_mkwrite=not plain)
            o.create_file(f.name, f.size)
            self.file_list.append(f)
        self.proc_list = []
        self.pages = {}
        for _ in range(self.procs):
            p = k.spawn()
            o.spawn(p.pid)
            self.proc_list.append(p)
            for f in self.file_list:
                self.do_mmap(p, "shared", f, 0, self.file_pages, RW)
            self.do_mmap(p, "private", self.file_list[0], 0, 4, RW)
            self.do_mmap(p, "anon", None, 0, 4, RW)
            if self.full_mix:
                self.do_mmap(p, "shanon", None, 0, 4, RW)
        self.seq = self.seed << 20

    def refresh(self, p):
        self.pages[p.pid] = sorted(self.o.procs[p.pid])

    def do_mmap(self, p, kind, f, offset_pages, npages, prot, addr=None, extra=0):
        flags = {"shared": MAP_SHARED, "private": MAP_PRIVATE,
                 "anon": MAP_PRIVATE | MAP_ANONYMOUS,
                 "shanon": MAP_SHARED | MAP_ANONYMOUS}[kind] | extra
        if addr is not None:
            flags |= MAP_FIXED
        va = p.mmap(npages * PAGE, prot, flags, file=f, offset=offset_pages * PAGE, addr=addr)
        if addr is not None:
            self.o.munmap(p.pid, va, npages * PAGE)
        self.o.mmap(p.pid, va, npages * PAGE, prot, flags,
                    self.o.files[f.name] if f is not None else None, offset_pages * PAGE,
                    locked=bool(flags & MAP_LOCKED))
        self.refresh(p)
        return va

    def payload(self, n):
        self.seq += 1
        s = self.seq
        return bytes(((s * 7 + i) % 251) + 1 for i in range(n))

    # -- one step --------------------------------------------------------------------------------

    def access(self, rng):
        p = rng.choice(self.proc_list)
        pages = self.pages[p.pid]
        if not pages:
            return
        va = rng.choice(pages) + rng.randrange(PAGE)
        n = rng.randint(1, 16)
        o = self.o
        if rng.random() < 0.5:
            data = self.payload(n)
            want = o.store(p.pid, va, data)
            try:
                p.store(va, data)
                got = 0
            except Signal as e:
                got = e.signo
                self.signals += 1
            if got != want:
                self.mismatch(f"store {p.pid}@{va:#x}: signal {got}, oracle says {want}")
        else:
            want, sig = o.load(p.pid, va, n)
            try:
                got, gotsig = p.load(va, n), 0
            except Signal as e:
                got, gotsig = None, e.signo
                self.signals += 1
            if gotsig != sig or (want is not None and got != want):
                self.mismatch(f"load {p.pid}@{va:#x}: {got!r}/{gotsig}, oracle {want!r}/{sig}")

    def syscall(self, rng):
        if self.full_mix and rng.random() < 0.25:
            self.more_syscalls(rng)
            return
        o, k = self.o, self.k
        p = rng.choice(self.proc_list)
        pages = self.pages[p.pid]
        r = rng.random()
        if r < 0.25 and pages:                                         # msync
            va = rng.choice(pages)
            n = rng.randint(1, 8)
            flags = rng.choice(MSYNC_FLAGS)
            self.do_msync(p, va, n, flags)
        elif r < 0.45 and pages:                                       # mprotect
            va = rng.choice(pages)
            n = rng.randint(1, 4)
            prot = rng.choice(PROTS)
            want = o.mprotect(p.pid, va, n * PAGE, prot)
            got = errno_of(p.mprotect, va, n * PAGE, prot)
            if got != want:
                self.mismatch(f"mprotect {p.pid}@{va:#x}: errno {got}, oracle {want}")
        elif r < 0.6 and pages:                                        # munmap + mmap there
            va = rng.choice(pages)
            n = rng.randint(1, 4)
            p.munmap(va, n * PAGE)
            o.munmap(p.pid, va, n * PAGE)
            kind = rng.choice(KINDS)
            f = rng.choice(self.file_list) if kind in ("shared", "private") else None
            off = rng.randrange(self.file_pages) if f is not None else 0
            self.do_mmap(p, kind, f, off, rng.randint(1, 4), rng.choice(PROTS), addr=va)
        elif r < 0.72:                                                 # fork / exit
            if len(self.proc_list) < self.max_procs and (rng.random() < 0.6
                                                         or len(self.proc_list) == 1):
                c = p.fork()
                o.fork(p.pid, c.pid)
                self.proc_list.append(c)
                self.refresh(c)
            elif len(self.proc_list) > 1:
                p.exit()
                o.exit(p.pid)
                self.proc_list.remove(p)
                del self.pages[p.pid]
        elif r < 0.92:                                                 # write / read
            f = rng.choice(self.file_list)
            off = rng.randrange(f.size + 64)
            if rng.random() < 0.5:
                data = self.payload(rng.randint(1, 300))
                p.write(f, off, data)
                o.write(f.name, off, data)
            else:
                n = rng.randint(1, 300)
                if p.read(f, off, n) != o.read(f.name, off, n):
                    self.mismatch(f"read {f.name}@{off}")
        elif r < 0.97:                                                 # ftruncate
            f = rng.choice(self.file_list)
            size = self.file_pages * PAGE
            if rng.random() < 0.4:
                size = rng.randrange(size + 1)
            p.ftruncate(f, size)
            o.ftruncate(f.name, size)
        else:
            k.age()

    def more_syscalls(self, rng):
        """The flavours of ``full_mix``: mlock/munlock, a mapping with MAP_LOCKED or
        MAP_POPULATE in place of another, msync with MS_ASYNC|MS_INVALIDATE, no flag, or
        (rare in the main mix) MS_SYNC|MS_INVALIDATE."""
        o = self.o
        p = rng.choice(self.proc_list)
        pages = self.pages[p.pid]
        if not pages:
            return
        va = rng.choice(pages)
        n = rng.randint(1, 4)
        r = rng.random()
        if r < 0.4:                                                    # mlock / munlock
            on = rng.random() < 0.6
            want = o.mlock(p.pid, va, n * PAGE, on)
            got = errno_of(p.mlock if on else p.munlock, va, n * PAGE)
            if got != want:
                self.mismatch(f"{'mlock' if on else 'munlock'} {p.pid}@{va:#x}: errno {got}, "
                              f"oracle {want}")
        elif r < 0.7:                                                  # a populated mapping
            p.munmap(va, n * PAGE)
            o.munmap(p.pid, va, n * PAGE)
            kind = rng.choice(KINDS)
            f = rng.choice(self.file_list) if kind in ("shared", "private") else None
            off = rng.randrange(self.file_pages) if f is not None else 0
            self.do_mmap(p, kind, f, off, rng.randint(1, 4), rng.choice(PROTS), addr=va,
                         extra=rng.choice((MAP_LOCKED, MAP_POPULATE)))
        else:                                                          # msync, other flags
            flags = rng.choice((MS_ASYNC | MS_INVALIDATE, 0, MS_SYNC | MS_INVALIDATE))
            self.do_msync(p, va, n, flags)

    def do_msync(self, p, va, npages, flags):
        """msync on the kernel, its errno checked against the oracle's."""
        want = self.o.msync_errno(p.pid, va, npages * PAGE, flags)
        got = errno_of(p.msync, va, npages * PAGE, flags)
        if got != want:
            self.mismatch(f"msync {p.pid}@{va:#x} flags {flags}: errno {got}, oracle {want}")

    def steps(self):
        rng = self.rng
        left = self.accesses
        step = 0
        while left > 0:
            n = min(self.chunk, left)
            done = 0
            while done < n:
                step += 1
                if rng.random() < self.syscall_share:
                    self.syscall(rng)
                else:
                    self.access(rng)
                    done += 1
                if step % self.writeback_every == 0:
                    self.k.writeback(wait=rng.random() < 0.7)
                if self.check_every and step % self.check_every == 0:
                    try:
                        check_all(self.k)
                    except InvariantError as e:
                        self.mismatch(f"step {step}: {e}")
            left -= n
            yield n

    def finish(self):
        for f in self.file_list:
            self.shadow[f] = bytearray(self.o.files[f.name].contents())
        super().finish()

    def result(self):
        out = super().result()
        out["signals"] = self.signals
        out["processes"] = len(self.proc_list)
        return out

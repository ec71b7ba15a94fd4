"""A hypothesis state machine over every syscall, loads, stores, writeback passes, forks and
exits, on each policy and A/D mode. After every step the kernel's invariants are checked
(ARCHITECTURE.md 1-3: the golden MMU's TLB keeps stale entries as long as the spec allows,
so a missing flush shows up as a lost or misplaced write), and every load, read() and the
files at the end are compared with the oracle's shadow.

The kernel's coverage model samples every run (mkclean.sim.coverage.kernel): no sample may
fall on a combination the model excludes as unreachable, and the summary is printed (-s).

Examples per configuration: MKCLEAN_EXAMPLES (default small enough for `make test`).
Each run prints its seed; MKCLEAN_SEED=S replays it.
"""

import errno
import os
import random

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, seed, settings
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition,
                                 rule, run_state_machine_as_test)

from mkclean.sim.coverage.kernel import KernelCoverage
from mkclean.sim.kernel import (MAP_ANONYMOUS, MAP_FIXED, MAP_LOCKED, MAP_PRIVATE, MAP_SHARED,
                                MS_ASYNC, MS_INVALIDATE, MS_SYNC, PROT_EXEC, PROT_READ,
                                PROT_WRITE, Kernel, KernelError, Signal)
from mkclean.sim.kernel.invariants import check_all
from mkclean.sim.workloads.oracle import Oracle

PAGE = 4096


# The oracle's answers leave everything as it was on an error. Linux's range walks do not:
# do_mprotect_pkey and apply_vma_lock_flags change the mapped pages before the first hole,
# then answer ENOMEM; sys_msync answers ENOMEM at the first hole for exactly MS_ASYNC, and
# otherwise EBUSY at the first VM_LOCKED page under MS_INVALIDATE, else ENOMEM after the
# walk. These follow the walks over the oracle's pages (test_kernel_linux_syscalls.py has
# the host's answers).

SLOT_BASE = 0x2000_0000
SLOTS = 12
MAX_PROCS = 4
PROTS = [PROT_READ, PROT_READ | PROT_WRITE, 0, PROT_WRITE, PROT_READ | PROT_WRITE | PROT_EXEC,
         PROT_READ | PROT_EXEC]
MSYNC_FLAGS = [MS_ASYNC, MS_SYNC, MS_INVALIDATE, MS_ASYNC | MS_INVALIDATE,
               MS_SYNC | MS_INVALIDATE]
EXAMPLES = int(os.environ.get("MKCLEAN_EXAMPLES", "80"))
STEPS = int(os.environ.get("MKCLEAN_STEPS", "40"))


class KernelMachine(RuleBasedStateMachine):
    policy = "writenotify"
    ad = "svadu"
    #: A KernelCoverage that samples every kernel of the machine, or None.
    coverage = None

    def __init__(self):
        super().__init__()
        self.k = Kernel(policy=self.policy, ad=self.ad, phys_size=2 << 20,
                        coverage=self.coverage)
        self.o = Oracle()
        self.procs = []
        self.files = []
        self.seq = 0
        p = self.k.spawn()
        self.o.spawn(p.pid)
        self.procs.append(p)

    # -- set-up -------------------------------------------------------------------------------

    @initialize(sizes=st.lists(st.one_of(st.integers(1, 5).map(lambda n: n * PAGE),
                                         st.integers(0, 5 * PAGE)), min_size=1, max_size=2),
                mkwrite=st.lists(st.booleans(), min_size=2, max_size=2))
    def create_files(self, sizes, mkwrite):
        """One or two files, each with page_mkwrite or without it. Without is hypothesis's
        simplest choice (False): the file systems the 2.6.19 patch was written for, where
        only fault_dirty_shared_page dirties a page."""
        for size, page_mkwrite in zip(sizes, mkwrite):
            name = f"f{len(self.files)}"
            self.files.append(self.k.create_file(name, size, page_mkwrite=page_mkwrite))
            self.o.create_file(name, size)
        # The first process maps each file shared and writable, whole: every example starts
        # with pages that loads and stores reach (the random workload's set-up too).
        p = self.procs[0]
        for f in self.files:
            length = max(1, -(-f.i_size // PAGE)) * PAGE
            va = p.mmap(length, PROT_READ | PROT_WRITE, MAP_SHARED, file=f)
            self.o.mmap(p.pid, va, length, PROT_READ | PROT_WRITE, MAP_SHARED,
                        self.o.files[f.name], 0)

    # -- helpers ------------------------------------------------------------------------------

    def payload(self, n):
        """Bytes no store or write has left anywhere yet: every write changes memory."""
        self.seq += 1
        return bytes(((self.seq * 7 + i) % 251) + 1 for i in range(n))

    def proc(self, data):
        return data.draw(st.sampled_from(self.procs), label="proc")

    def addr(self, data, p):
        """A mapped page of ``p`` most of the time, else any slot."""
        pages = sorted(self.o.procs[p.pid])
        if pages and data.draw(st.integers(0, 9), label="mapped?") < 8:
            return data.draw(st.sampled_from(pages), label="page")
        return SLOT_BASE + data.draw(st.integers(0, SLOTS - 1), label="slot") * PAGE

    # -- mappings -----------------------------------------------------------------------------

    @rule(data=st.data())
    def mmap(self, data):
        p = self.proc(data)
        kind = data.draw(st.sampled_from(["shared", "shared", "shared", "private", "anon",
                                          "shanon"]), label="kind")
        npages = data.draw(st.integers(1, 4), label="pages")
        prot = data.draw(st.sampled_from(PROTS[1:2] * 4 + PROTS), label="prot")
        fixed = data.draw(st.booleans(), label="fixed")
        locked = data.draw(st.integers(0, 9), label="locked") == 0
        flags = {"shared": MAP_SHARED, "private": MAP_PRIVATE,
                 "anon": MAP_PRIVATE | MAP_ANONYMOUS,
                 "shanon": MAP_SHARED | MAP_ANONYMOUS}[kind]
        f = None
        offset = 0
        if kind in ("shared", "private"):
            f = data.draw(st.sampled_from(self.files), label="file")
            offset = data.draw(st.integers(0, 3), label="offset") * PAGE
        addr = None
        if fixed:
            flags |= MAP_FIXED
            addr = SLOT_BASE + data.draw(st.integers(0, SLOTS - 1), label="slot") * PAGE
        if locked:
            flags |= MAP_LOCKED
        va = p.mmap(npages * PAGE, prot, flags, file=f, offset=offset, addr=addr)
        if fixed:
            assert va == addr
        if fixed:
            self.o.munmap(p.pid, va, npages * PAGE)
        assert not any(va + i * PAGE in self.o.procs[p.pid] for i in range(npages))
        self.o.mmap(p.pid, va, npages * PAGE, prot, flags,
                    self.o.files[f.name] if f is not None else None, offset, locked)

    @rule(data=st.data())
    def munmap(self, data):
        p = self.proc(data)
        va = self.addr(data, p)
        n = data.draw(st.integers(1, 4), label="pages")
        p.munmap(va, n * PAGE)
        self.o.munmap(p.pid, va, n * PAGE)

    @rule(data=st.data())
    def mprotect_more(self, data):
        self.mprotect(data)

    @rule(data=st.data())
    def mprotect(self, data):
        p = self.proc(data)
        va = self.addr(data, p)
        n = data.draw(st.integers(0, 3), label="pages")
        prot = data.draw(st.sampled_from(PROTS), label="prot")
        want = self.o.mprotect(p.pid, va, n * PAGE, prot)    # Linux's walk: up to a hole
        try:
            p.mprotect(va, n * PAGE, prot)
            got = 0
        except KernelError as e:
            got = e.errno
        assert got == want, f"mprotect: {errno.errorcode.get(got)} != {errno.errorcode.get(want)}"

    @rule(data=st.data())
    def mprotect_cycle(self, data):
        """Take W (or all access) away from a range and give the old protection back."""
        p = self.proc(data)
        va = self.addr(data, p)
        pg = self.o.procs[p.pid].get(va)
        if pg is None:
            return
        old = pg.prot
        tmp = data.draw(st.sampled_from([PROT_READ, 0]), label="prot")
        p.mprotect(va, PAGE, tmp)
        self.o.mprotect(p.pid, va, PAGE, tmp)
        p.mprotect(va, PAGE, old)
        self.o.mprotect(p.pid, va, PAGE, old)

    @rule(data=st.data())
    def msync(self, data):
        p = self.proc(data)
        va = self.addr(data, p)
        n = data.draw(st.integers(0, 3), label="pages")
        flags = data.draw(st.sampled_from(MSYNC_FLAGS), label="flags")
        want = self.o.msync_errno(p.pid, va, n * PAGE, flags)
        try:
            p.msync(va, n * PAGE, flags)
            got = 0
        except KernelError as e:
            got = e.errno
        assert got == want, f"msync: {errno.errorcode.get(got)} != {errno.errorcode.get(want)}"

    @rule(data=st.data(), on=st.booleans())
    def mlock(self, data, on):
        p = self.proc(data)
        va = self.addr(data, p)
        n = data.draw(st.integers(0, 3), label="pages")
        want = self.o.mlock(p.pid, va, n * PAGE, on)     # Linux's walk, then population
        try:
            (p.mlock if on else p.munlock)(va, n * PAGE)
            got = 0
        except KernelError as e:
            got = e.errno
        assert got == want, f"mlock: {errno.errorcode.get(got)} != {errno.errorcode.get(want)}"

    # -- loads and stores ---------------------------------------------------------------------

    @rule(data=st.data())
    def store(self, data, p=None):
        p = p or self.proc(data)
        va = self.addr(data, p) + data.draw(st.integers(0, PAGE - 1), label="offset")
        payload = self.payload(data.draw(st.integers(1, 16), label="n"))
        want = self.o.store(p.pid, va, payload)
        try:
            p.store(va, payload)
            got = 0
        except Signal as e:
            got = e.signo
        assert got == want, f"store at {va:#x}: signal {got}, expected {want}"

    @rule(data=st.data())
    def store_more(self, data):
        self.store(data)

    @rule(data=st.data())
    def store_again(self, data):
        self.store(data)

    @rule(data=st.data())
    def load_more(self, data):
        self.load(data)

    @rule(data=st.data())
    def load(self, data, p=None):
        p = p or self.proc(data)
        va = self.addr(data, p) + data.draw(st.integers(0, PAGE - 1), label="offset")
        n = data.draw(st.integers(1, 16), label="n")
        want, sig = self.o.load(p.pid, va, n)
        try:
            got = p.load(va, n)
            gotsig = 0
        except Signal as e:
            got, gotsig = None, e.signo
        assert gotsig == sig, f"load at {va:#x}: signal {gotsig}, expected {sig}"
        if not sig and want is not None:    # None: beyond EOF, where writeback zeroes
            assert got == want, f"load at {va:#x}: {got!r}, expected {want!r}"

    # -- file syscalls ------------------------------------------------------------------------

    @rule(data=st.data())
    def write(self, data):
        p = self.proc(data)
        f = data.draw(st.sampled_from(self.files), label="file")
        offset = data.draw(st.integers(0, f.i_size + PAGE), label="offset")
        payload = self.payload(data.draw(st.integers(0, 64), label="n"))
        assert p.write(f, offset, payload) == len(payload)
        self.o.write(f.name, offset, payload)

    @rule(data=st.data())
    def read(self, data):
        p = self.proc(data)
        f = data.draw(st.sampled_from(self.files), label="file")
        offset = data.draw(st.integers(0, f.i_size + 16), label="offset")
        n = data.draw(st.integers(0, 64), label="n")
        assert p.read(f, offset, n) == self.o.read(f.name, offset, n)

    @rule(data=st.data())
    def ftruncate(self, data):
        p = self.proc(data)
        f = data.draw(st.sampled_from(self.files), label="file")
        size = data.draw(st.integers(0, 5 * PAGE), label="size")
        p.ftruncate(f, size)
        self.o.ftruncate(f.name, size)

    # -- processes ----------------------------------------------------------------------------

    @precondition(lambda self: len(self.procs) < MAX_PROCS)
    @rule(data=st.data())
    def fork(self, data):
        p = self.proc(data)
        c = p.fork()
        self.o.fork(p.pid, c.pid)
        for pg in self.o.procs[c.pid].values():
            pg.locked = False
        self.procs.append(c)

    @precondition(lambda self: len(self.procs) < MAX_PROCS)
    @rule(data=st.data())
    def short_lived_child(self, data):
        """fork, touch a few pages in the child, exit (its ASID goes back to the pool)."""
        p = self.proc(data)
        c = p.fork()
        self.o.fork(p.pid, c.pid)
        self.procs.append(c)
        for _ in range(data.draw(st.integers(1, 3), label="accesses")):
            if data.draw(st.booleans(), label="store?"):
                self.store(data, c)
            else:
                self.load(data, c)
        c.exit()
        self.o.exit(c.pid)
        self.procs.remove(c)

    @precondition(lambda self: len(self.procs) > 1)
    @rule(data=st.data())
    def exit(self, data):
        p = self.proc(data)
        p.exit()
        self.o.exit(p.pid)
        self.procs.remove(p)

    # -- the kernel's own work ------------------------------------------------------------------

    @rule(wait=st.booleans())
    def writeback(self, wait):
        self.k.writeback(wait=wait)

    @rule()
    def complete_io(self):
        self.k.complete_io()

    @rule()
    def age(self):
        self.k.age()

    @rule()
    def sync_all(self):
        """Invariant 1 in full: msync(MS_SYNC) every mapping, sync; the files are the shadow."""
        self.final_sync()

    def final_sync(self):
        for p in self.procs:
            for start, end, *_ in p.vmas():
                p.msync(start, end - start, MS_SYNC)
        self.k.sync()
        for f in self.files:
            want = self.o.files[f.name].contents()
            got = f.on_disk(0, len(want) + PAGE)
            assert got == want, f"{f.name} on disk differs from the shadow (lost write) " \
                                f"at byte {next((i for i in range(min(len(got), len(want))) if got[i] != want[i]), min(len(got), len(want)))}"

    # -- after every step -------------------------------------------------------------------------

    @invariant()
    def kernel_invariants(self):
        check_all(self.k)
        hw = self.k.hw
        for f in self.files:
            shadow = self.o.files[f.name]
            for index, page in f.pages.items():
                # Up to EOF: beyond it, writeback zeroes the last page whenever it runs
                # (ext4_bio_write_folio), which the shadow does not follow.
                valid = max(0, min(PAGE, shadow.size - index * PAGE))
                want = bytes(shadow.data[index * PAGE:index * PAGE + valid])
                got = hw.read(page.paddr, valid)
                assert got == want, f"{f.name}[{index}] in the page cache differs from the " \
                                    f"shadow at {next(i for i in range(valid) if got[i] != want[i])}"

    def teardown(self):
        try:
            self.final_sync()
            check_all(self.k)
        finally:
            self.k.close()


CONFIGS = [(p, a) for p in ("writenotify", "legacy", "hwdirty") for a in ("svadu", "svade")]


@pytest.mark.parametrize("policy,ad", CONFIGS, ids=[f"{p}-{a}" for p, a in CONFIGS])
def test_kernel_state_machine(policy, ad):
    cov = KernelCoverage(f"statemachine_{policy}_{ad}")
    machine = type(f"Machine_{policy}_{ad}", (KernelMachine,),
                   {"policy": policy, "ad": ad, "coverage": cov})
    s = int(os.environ.get("MKCLEAN_SEED") or random.randrange(1 << 32))
    print(f"state machine {policy}/{ad}: seed {s} (replay with MKCLEAN_SEED={s}), "
          f"{EXAMPLES} examples of up to {STEPS} steps")
    run = seed(s)(lambda: run_state_machine_as_test(machine, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, database=None,
        suppress_health_check=list(HealthCheck), print_blob=True)))
    try:
        run()
        print(cov.summary())
        assert not cov.excluded_hits, f"bins the coverage model says no run reaches were " \
                                      f"hit: {cov.excluded_hits}"
    finally:
        cov.forget()

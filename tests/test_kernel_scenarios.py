"""The scenarios of REFERENCES.md ("Scenarios a model of this must pass"), on every policy and
A/D mode where they apply, plus the page states of a writenotify page."""

import errno
import signal

import pytest

from mkclean.sim.kernel import (MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, MS_ASYNC,
                                MS_INVALIDATE, MS_SYNC, PROT_READ, PROT_WRITE, Kernel, KernelError,
                                Signal)
from mkclean.sim.kernel.invariants import check_all

POLICIES = ("writenotify", "legacy", "hwdirty")
ADS = ("svadu", "svade")
RW = PROT_READ | PROT_WRITE
PAGE = 4096


@pytest.fixture(params=[(p, a) for p in POLICIES for a in ADS], ids=lambda pa: f"{pa[0]}-{pa[1]}")
def k(request):
    policy, ad = request.param
    kernel = Kernel(policy=policy, ad=ad, phys_size=4 << 20)
    yield kernel
    check_all(kernel)
    kernel.close()


@pytest.fixture(params=ADS)
def wn(request):
    """The patch's policy only."""
    kernel = Kernel(policy="writenotify", ad=request.param, phys_size=4 << 20)
    yield kernel
    check_all(kernel)
    kernel.close()


def faults(kernel, what):
    return kernel.counters["faults"].get(what, 0)


# -- the page states of a shared file page in a writenotify VMA -------------------------------------

def test_read_fault_maps_readonly_clean(wn):
    f = wn.create_file("f", 2 * PAGE)
    p = wn.spawn()
    va = p.mmap(2 * PAGE, RW, MAP_SHARED, file=f)
    assert p.load(va, 4) == bytes(4)
    pte = p.pte(va)
    assert pte.v and pte.r and not pte.w and pte.a and not pte.d
    assert not wn.page_dirty(f, 0)


def test_write_fault_maps_writable_dirty(wn):
    f = wn.create_file("f", 2 * PAGE)
    p = wn.spawn()
    va = p.mmap(2 * PAGE, RW, MAP_SHARED, file=f)
    p.store(va + PAGE + 8, b"x")
    pte = p.pte(va + PAGE)
    assert pte.w and pte.d and pte.a
    assert wn.page_dirty(f, 1)
    assert faults(wn, "shared") == 1


def test_store_to_clean_page_faults_then_dirty(wn):
    f = wn.create_file("f", PAGE)
    p = wn.spawn()
    va = p.mmap(PAGE, RW, MAP_SHARED, file=f)
    p.load(va, 1)
    p.store(va, b"abc")
    assert faults(wn, "wp_shared") == 1
    assert wn.counters["page_mkwrite"] == 1
    pte = p.pte(va)
    assert pte.w and pte.d
    assert wn.page_dirty(f, 0)


def test_writeback_mkcleans_every_mapping(wn):
    f = wn.create_file("f", PAGE)
    procs = [wn.spawn() for _ in range(3)]
    vas = [p.mmap(PAGE, RW, MAP_SHARED, file=f) for p in procs]
    for i, (p, va) in enumerate(zip(procs, vas)):
        p.store(va + i, bytes([65 + i]))
    sfences = wn.counters["sfences"]
    assert wn.writeback() == 1
    assert f.on_disk(0, 3) == b"ABC"
    assert not wn.page_dirty(f, 0)
    for p, va in zip(procs, vas):
        pte = p.pte(va)
        assert not pte.w and not pte.d
    assert wn.counters["mkclean_ptes"] >= 3
    assert wn.counters["sfences"] - sfences == 3        # one per cleaned PTE, with its ASID
    # Each process's next store faults again and dirties the page.
    before = faults(wn, "wp_shared")
    procs[1].store(vas[1], b"Z")
    assert faults(wn, "wp_shared") == before + 1
    assert wn.page_dirty(f, 0)


def test_mprotect_gives_w_back_only_to_dirty_ptes(wn):
    f = wn.create_file("f", 2 * PAGE)
    p = wn.spawn()
    va = p.mmap(2 * PAGE, RW, MAP_SHARED, file=f)
    p.store(va, b"d")            # page 0: dirty
    p.load(va + PAGE, 1)         # page 1: clean
    p.mprotect(va, 2 * PAGE, PROT_READ)
    assert not p.pte(va).w and not p.pte(va + PAGE).w
    p.mprotect(va, 2 * PAGE, RW)
    assert p.pte(va).w and p.pte(va).d
    assert not p.pte(va + PAGE).w


# -- a file system without page_mkwrite: the case the 2.6.19 patch was written for -------------------

def assert_dirty_exact(kernel, f, dirty: set):
    """PG_dirty is set on exactly the pages ``dirty`` of ``f``, and every counter agrees."""
    assert {i for i, page in f.pages.items() if page.dirty} == dirty
    assert f.nrdirty == len(dirty) and f.dirty_idx == dirty
    assert kernel.nr_dirty == sum(g.nrdirty for g in kernel.files.values())


@pytest.mark.parametrize("first", ["load", "store"])
def test_store_to_clean_page_without_page_mkwrite(k, first):
    """A store to a clean page of a shared mapping of a file with no page_mkwrite: nothing
    but the fault path itself (fault_dirty_shared_page: set_page_dirty) marks the page
    dirty. After a load the page is mapped clean (read-only with the patch: the store takes
    wp_page_shared's branch without page_mkwrite); with no PTE yet the store takes
    do_shared_fault. Written back, the file has the data and no dirty page is left."""
    f = k.create_file("plain", 2 * PAGE, page_mkwrite=False)
    p = k.spawn()
    va = p.mmap(2 * PAGE, RW, MAP_SHARED, file=f)
    if first == "load":
        assert p.load(va + PAGE, 4) == bytes(4)
        assert_dirty_exact(k, f, set())
    p.store(va + PAGE + 10, b"no page_mkwrite")
    assert k.counters["page_mkwrite"] == 0
    writenotify = k.policy.name == "writenotify"
    if writenotify:
        assert faults(k, "wp_shared" if first == "load" else "shared") == 1
        assert p.pte(va + PAGE).w and p.pte(va + PAGE).d
    # The patch dirties the page in the fault, and so does hwdirty's do_shared_fault;
    # hwdirty's read fault maps the page writable (the store sets D, or takes a Svade D
    # fault), and before the patch the dirtiness is the PTE's alone until msync.
    fault_dirtied = writenotify or (k.policy.name == "hwdirty" and first == "store")
    assert_dirty_exact(k, f, {1} if fault_dirtied else set())
    assert k.stats["dirty_real"] == 1
    if writenotify:
        assert k.stats["dirty_known"] == 1
    check_all(k)
    p.msync(va, 2 * PAGE, MS_SYNC)
    assert f.on_disk(PAGE + 10, 15) == b"no page_mkwrite"
    assert_dirty_exact(k, f, set())
    assert k.stats["dirty_known"] == k.stats["dirty_real"] == 0
    if writenotify:
        assert not p.pte(va + PAGE).w                 # cleaned: the next store faults again
    # Again, written back by the flusher this time (msync before the patch: it alone finds
    # a dirty PTE). Only the patch write-protected the page: without it the store goes
    # through the writable PTE (or a Svade D fault) and the dirtiness is the PTE's.
    p.store(va + PAGE + 100, b"twice")
    if writenotify:
        assert faults(k, "wp_shared") == (2 if first == "load" else 1)
    assert_dirty_exact(k, f, {1} if writenotify else set())
    assert k.stats["dirty_real"] == 1
    check_all(k)
    if k.policy.name == "legacy":
        p.msync(va, 2 * PAGE, MS_SYNC)
    else:
        assert k.writeback() == 1
    assert f.on_disk(PAGE + 100, 5) == b"twice" and f.on_disk(PAGE + 10, 15) == b"no page_mkwrite"
    assert f.on_disk(0, PAGE) == bytes(PAGE)
    assert_dirty_exact(k, f, set())
    assert k.stats["dirty_known"] == k.stats["dirty_real"] == 0


# -- msync01 / msync02 / msync04 ---------------------------------------------------------------------

def test_msync01_async(k):
    f = k.create_file("f", 2 * PAGE)
    p = k.spawn()
    va = p.mmap(2 * PAGE, RW, MAP_SHARED, file=f)
    p.store(va + 100, b"msync01 data")
    assert p.msync(va, 2 * PAGE, MS_ASYNC) is None
    assert p.read(f, 100, 12) == b"msync01 data"
    k.sync()
    assert f.on_disk(100, 12) == b"msync01 data"


def test_msync02_invalidate_shows_write(k):
    f = k.create_file("f", 2 * PAGE)
    p = k.spawn()
    va = p.mmap(2 * PAGE, RW, MAP_SHARED, file=f)
    assert p.load(va + 10, 4) == bytes(4)        # the mapping is populated before the write
    assert p.write(f, 10, b"abcd") == 4
    p.msync(va, 2 * PAGE, MS_INVALIDATE)
    assert p.load(va + 10, 4) == b"abcd"
    p.write(f, PAGE + 1, b"xyz")                 # a page not mapped yet
    p.msync(va, 2 * PAGE, MS_INVALIDATE)
    assert p.load(va + PAGE + 1, 3) == b"xyz"


def test_msync04_sync_cleans(k):
    f = k.create_file("f", PAGE)
    p = k.spawn()
    va = p.mmap(PAGE, RW, MAP_SHARED, file=f)
    p.load(va, 1)
    p.store(va + 7, b"msync04")
    if k.policy.name == "writenotify":
        assert k.page_dirty(f, 0)
    assert k.stats["dirty_real"] == 1
    p.msync(va, PAGE, MS_SYNC)
    assert not k.page_dirty(f, 0)
    assert f.on_disk(7, 7) == b"msync04"
    st = k.stats
    assert st["dirty_known"] == st["dirty_real"] == 0


def test_legacy_knows_less_than_real(k):
    """Before the patch, a store through a writable clean PTE is invisible until msync."""
    f = k.create_file("f", 4 * PAGE)
    p = k.spawn()
    va = p.mmap(4 * PAGE, RW, MAP_SHARED, file=f)
    for i in range(4):
        p.load(va + i * PAGE, 1)
    for i in range(4):
        p.store(va + i * PAGE, b"x")
    st = k.stats
    assert st["dirty_real"] == 4
    if k.policy.name == "writenotify":
        assert st["dirty_known"] == 4
    else:
        assert st["dirty_known"] == 0
    k.writeback()
    if k.policy.name == "legacy":
        assert f.on_disk(0, 1) == b"\0"          # writeback cannot see it
        p.msync(va, 4 * PAGE, MS_ASYNC)          # the old msync moves D to the page
        assert k.stats["dirty_known"] == 4
        k.writeback()
    for i in range(4):
        assert f.on_disk(i * PAGE, 1) == b"x"


# -- soft-dirty mprotect ------------------------------------------------------------------------------

def test_soft_dirty_mprotect(k):
    f = k.create_file("f", PAGE)
    p = k.spawn()
    va = p.mmap(PAGE, RW, MAP_SHARED, file=f)
    p.store(va, b"1")
    p.msync(va, PAGE, MS_SYNC)                   # clean
    p.mprotect(va, PAGE, PROT_READ)
    p.mprotect(va, PAGE, RW)
    pte = p.pte(va)
    before = dict(k.counters["faults"])
    p.store(va, b"2")
    if k.policy.name == "writenotify":
        assert not pte.w                          # still needs its write fault
        assert faults(k, "wp_shared") == before.get("wp_shared", 0) + 1
        assert k.page_dirty(f, 0)
    p.msync(va, PAGE, MS_SYNC)
    assert f.on_disk(0, 1) == b"2"


# -- mmap19: swapped mappings after unmap -----------------------------------------------------------

def test_mmap19_swapped_files(k):
    f1 = k.create_file("f1", PAGE)
    f2 = k.create_file("f2", PAGE)
    p = k.spawn()
    p.write(f1, 0, b"one")
    p.write(f2, 0, b"two")
    a = p.mmap(PAGE, RW, MAP_SHARED, file=f1)
    b = p.mmap(PAGE, RW, MAP_SHARED, file=f2)
    assert p.load(a, 3) == b"one" and p.load(b, 3) == b"two"
    p.store(a + 8, b"A")
    p.store(b + 8, b"B")
    p.munmap(a, PAGE)
    p.munmap(b, PAGE)
    assert p.mmap(PAGE, RW, MAP_SHARED | MAP_FIXED, file=f2, addr=a) == a
    assert p.mmap(PAGE, RW, MAP_SHARED | MAP_FIXED, file=f1, addr=b) == b
    assert p.load(a, 3) == b"two" and p.load(b, 3) == b"one"
    p.store(a + 9, b"a")
    p.store(b + 9, b"b")
    p.msync(a, PAGE, MS_SYNC)
    p.msync(b, PAGE, MS_SYNC)
    assert f1.on_disk(8, 2) == b"Ab"
    assert f2.on_disk(8, 2) == b"Ba"


def test_mmap19_fixed_over_live_mappings(k):
    f1 = k.create_file("f1", PAGE)
    f2 = k.create_file("f2", PAGE)
    p = k.spawn()
    a = p.mmap(PAGE, RW, MAP_SHARED, file=f1)
    b = p.mmap(PAGE, RW, MAP_SHARED, file=f2)
    p.store(a, b"1")
    p.store(b, b"2")
    p.mmap(PAGE, RW, MAP_SHARED | MAP_FIXED, file=f2, addr=a)
    p.mmap(PAGE, RW, MAP_SHARED | MAP_FIXED, file=f1, addr=b)
    assert p.load(a, 1) == b"2" and p.load(b, 1) == b"1"
    k.sync()
    assert f1.on_disk(0, 1) == b"1" and f2.on_disk(0, 1) == b"2"


def test_unmap_frees_page_tables_and_flushes_walk_cache(k):
    """A freed PTE table must not be walked again through the walker's cache."""
    p = k.spawn()
    f = k.create_file("f", PAGE)
    va = p.mmap(PAGE, RW, MAP_SHARED, file=f)
    p.store(va, b"old")
    p.munmap(va, PAGE)
    # Reuse the freed table frame as data, then map something else at the same place.
    q = k.spawn()
    junk = q.mmap(16 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    for i in range(16):
        q.store(junk + i * PAGE, b"\xff" * 64)
    g = k.create_file("g", PAGE)
    p.write(g, 0, b"new")
    assert p.mmap(PAGE, RW, MAP_SHARED | MAP_FIXED, file=g, addr=va) == va
    assert p.load(va, 3) == b"new"


# -- truncate while mapped ----------------------------------------------------------------------------

def test_truncate_sigbus(k):
    f = k.create_file("f", 3 * PAGE)
    p = k.spawn()
    va = p.mmap(3 * PAGE, RW, MAP_SHARED, file=f)
    for i in range(3):
        p.store(va + i * PAGE, b"data")
    p.ftruncate(f, PAGE + 100)
    with pytest.raises(Signal) as e:
        p.store(va + 2 * PAGE, b"lost?")
    assert e.value.signo == signal.SIGBUS
    with pytest.raises(Signal) as e:
        p.load(va + 2 * PAGE, 1)
    assert e.value.signo == signal.SIGBUS
    # Within the last, partial page: fine; its tail beyond EOF reads zero.
    assert p.load(va + PAGE, 4) == b"data"
    assert p.load(va + PAGE + 100, 4) == bytes(4)
    p.store(va + PAGE + 50, b"ok")
    p.msync(va, 2 * PAGE, MS_SYNC)
    assert f.on_disk(PAGE + 50, 2) == b"ok"
    assert f.on_disk(0, 1 << 20) == b"data" + bytes(PAGE - 4) + b"data" + bytes(46) + b"ok" + bytes(48)
    # Extend again: the old tail and the new pages read zero.
    p.store(va + PAGE + 200, b"beyond EOF")     # into the tail of the EOF page: not file data
    p.ftruncate(f, 3 * PAGE)
    assert p.load(va + PAGE + 200, 10) == bytes(10)
    assert p.load(va + 2 * PAGE, 4) == bytes(4)
    k.sync()
    assert f.on_disk(PAGE + 200, 10) == bytes(10)


def test_truncate_drops_private_copies(k):
    f = k.create_file("f", 2 * PAGE)
    p = k.spawn()
    va = p.mmap(2 * PAGE, RW, MAP_PRIVATE, file=f)
    p.store(va + PAGE, b"cow")
    p.ftruncate(f, PAGE)
    with pytest.raises(Signal) as e:
        p.load(va + PAGE, 1)
    assert e.value.signo == signal.SIGBUS


# -- fork ----------------------------------------------------------------------------------------------

def test_fork_shared_stays_shared(k):
    f = k.create_file("f", 2 * PAGE)
    p = k.spawn()
    va = p.mmap(2 * PAGE, RW, MAP_SHARED, file=f)
    p.store(va, b"parent")
    c = p.fork()
    assert c.load(va, 6) == b"parent"
    c.store(va + PAGE, b"child")
    assert p.load(va + PAGE, 5) == b"child"
    p.store(va, b"PARENT")
    assert c.load(va, 6) == b"PARENT"
    c.exit()                                      # dirty PTE bits move to the page at exit
    p.msync(va, 2 * PAGE, MS_SYNC)
    assert f.on_disk(0, 6) == b"PARENT" and f.on_disk(PAGE, 5) == b"child"


def test_fork_private_copies_on_write(k):
    p = k.spawn()
    va = p.mmap(2 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    p.store(va, b"before")
    c = p.fork()
    # The parent's TLB still holds a writable entry: fork must have flushed it.
    p.store(va, b"parent")
    assert c.load(va, 6) == b"before"
    c.store(va + 8, b"child")
    assert p.load(va + 8, 5) == bytes(5)
    assert p.load(va, 6) == b"parent"
    f = k.create_file("f", PAGE)
    p.write(f, 0, b"file")
    vb = p.mmap(PAGE, RW, MAP_PRIVATE, file=f)
    p.store(vb + 4, b"!")                         # COW of the file page
    c2 = p.fork()
    c2.store(vb, b"F")
    assert p.load(vb, 5) == b"file!"
    assert c2.load(vb, 5) == b"File!"
    assert f.on_disk(0, 5) == bytes(5)            # private: never written to the file
    k.sync()
    assert f.on_disk(0, 5) == b"file\0"


@pytest.mark.parametrize("how", ["mlock", "MAP_POPULATE"])
def test_populate_breaks_cow_of_private_writable_pages(k, how):
    """populate_vma_page_range faults a private writable mapping in with write faults
    (FOLL_WRITE) to break COW: every page in the file gets its private copy then, also one
    already mapped read-only; a later write() to the file no longer shows through it."""
    from mkclean.sim.kernel import MAP_POPULATE
    f = k.create_file("f", 3 * PAGE)
    p = k.spawn()
    p.write(f, 0, b"old0")
    p.write(f, PAGE, b"old1")
    if how == "mlock":
        va = p.mmap(4 * PAGE, RW, MAP_PRIVATE, file=f)
        assert p.load(va, 4) == b"old0"           # page 0: the file page, read-only
        assert not p.pte(va).w
        # Page 3 is beyond EOF: __mm_populate stops there, and do_mlock answers ENOMEM
        # (its EFAULT, through __mlock_posix_error_return), as Linux 6.18 does.
        with pytest.raises(KernelError) as e:
            p.mlock(va, 4 * PAGE)
        assert e.value.errno == errno.ENOMEM
    else:
        va = p.mmap(4 * PAGE, RW, MAP_PRIVATE | MAP_POPULATE, file=f)
    for i in range(3):
        pte = p.pte(va + i * PAGE)
        assert pte.w and pte.d
        assert k.mem.pfn_to_page(pte.ppn).PageAnon()
    assert p.pte(va + 3 * PAGE) is None          # beyond EOF: SIGBUS, nothing mapped
    p.write(f, 0, b"new0")
    p.write(f, PAGE, b"new1")
    assert p.load(va, 4) == b"old0" and p.load(va + PAGE, 4) == b"old1"
    assert p.read(f, 0, 4) == b"new0"


def test_fork_keeps_hardware_dirty_bit(k):
    """The wrprotect of fork is atomic: a D the hardware sets concurrently survives it."""
    from mkclean.sim.kernel.pgtable import pte_dirty
    hw = k.hw
    p = k.spawn()
    va = p.mmap(PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    p.store(va, b"x")
    ptep = p.mm.pte_tables[va >> 21] + ((va >> 12) & 511) * 8
    # Make the PTE writable and clean, as after MADV_FREE, with its TLB entry gone.
    hw.write_pte(ptep, hw.read_pte(ptep) & ~0x80)
    hw.sfence_vma(None, None)
    real_cas = hw.cas_pte
    raced = []

    def cas_with_walker(paddr, expected, new):
        if paddr == ptep and not raced:
            # The walker's locked A/D update lands between the kernel's read and its CAS.
            raced.append(True)
            hw.write_pte(paddr, hw.read_pte(paddr) | 0x80)
        return real_cas(paddr, expected, new)

    hw.cas_pte = cas_with_walker
    try:
        c = p.fork()
    finally:
        del hw.cas_pte
    assert raced
    pte = p.pte(va)
    assert not pte.w and pte_dirty(pte.value)
    assert c.load(va, 1) == b"x"


# -- a write fault during writeback ------------------------------------------------------------------

def test_write_fault_during_writeback_waits(wn):
    f = wn.create_file("f", PAGE)
    p = wn.spawn()
    va = p.mmap(PAGE, RW, MAP_SHARED, file=f)
    p.store(va, b"first")
    assert wn.writeback(wait=False) == 1
    page = wn.page(f, 0)
    assert page.writeback and not page.dirty
    assert not p.pte(va).w
    p.store(va, b"again")                         # waits for the I/O, then dirties
    assert not page.writeback
    assert wn.page_dirty(f, 0)
    assert f.on_disk(0, 5) == b"first"
    wn.writeback()
    assert f.on_disk(0, 5) == b"again"
    assert not wn.page_dirty(f, 0)


def test_write_syscall_during_writeback_waits(k):
    f = k.create_file("f", PAGE)
    p = k.spawn()
    p.write(f, 0, b"one")
    k.writeback(wait=False)
    p.write(f, 0, b"two")
    assert k.page_dirty(f, 0) and not k.page(f, 0).writeback
    k.writeback()
    assert f.on_disk(0, 3) == b"two"


# -- munmap moves dirty bits to the page ---------------------------------------------------------------

def test_munmap_moves_dirty_to_page(k):
    f = k.create_file("f", 4 * PAGE)
    p = k.spawn()
    va = p.mmap(4 * PAGE, RW, MAP_SHARED, file=f)
    for i in range(4):
        p.load(va + i * PAGE, 1)
        p.store(va + i * PAGE + 1, b"m")
    p.munmap(va + PAGE, 2 * PAGE)                 # a hole in the middle: the VMA splits
    assert [v[:2] for v in p.vmas()] == [(va, va + PAGE), (va + 3 * PAGE, va + 4 * PAGE)]
    assert k.page_dirty(f, 1) and k.page_dirty(f, 2)
    with pytest.raises(Signal) as e:
        p.load(va + PAGE, 1)
    assert e.value.signo == signal.SIGSEGV
    k.writeback()
    assert f.on_disk(PAGE + 1, 1) == b"m" and f.on_disk(2 * PAGE + 1, 1) == b"m"
    p.msync(va, PAGE, MS_SYNC)
    p.msync(va + 3 * PAGE, PAGE, MS_SYNC)
    for i in range(4):
        assert f.on_disk(i * PAGE + 1, 1) == b"m"


def test_sigsegv_on_protection(k):
    f = k.create_file("f", PAGE)
    p = k.spawn()
    va = p.mmap(PAGE, PROT_READ, MAP_SHARED, file=f)
    p.load(va, 1)
    with pytest.raises(Signal) as e:
        p.store(va, b"no")
    assert e.value.signo == signal.SIGSEGV
    with pytest.raises(Signal) as e:
        p.fetch(va)
    assert e.value.signo == signal.SIGSEGV
    with pytest.raises(Signal):
        p.load(0x1000, 1)


def test_svade_access_and_dirty_faults():
    k = Kernel(policy="legacy", ad="svade", phys_size=4 << 20)
    try:
        f = k.create_file("f", PAGE)
        p = k.spawn()
        va = p.mmap(PAGE, RW, MAP_SHARED, file=f)
        p.load(va, 1)                             # writable, clean
        assert p.pte(va).w and not p.pte(va).d
        p.store(va, b"d")                          # D fault: the kernel sets D
        assert faults(k, "svade_dirty") == 1
        assert p.pte(va).d
        k.age()                                    # A cleared, TLB entry may stay
        assert not p.pte(va).a
        k.hw.sfence_vma(None, None)
        p.load(va, 1)
        assert faults(k, "svade_access") == 1
        assert p.pte(va).a
    finally:
        check_all(k)
        k.close()

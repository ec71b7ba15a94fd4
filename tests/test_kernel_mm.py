"""Unit tests of the kernel model's pieces: PTE format and helpers, the Sv39 tables in
memory, vma_wants_writenotify's rules, the policies, locks and the scheduler hook."""

import errno

import pytest

from mkclean.sim.kernel import (MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE,
                                Kernel, KernelBug, KernelError, Signal, backend_names,
                                register_backend)
from mkclean.sim.kernel.constants import (VM_MAYWRITE, VM_PFNMAP, VM_READ, VM_SHARED,
                                          VM_SOFTDIRTY, VM_UFFD_WP, VM_WRITE)
from mkclean.sim.kernel.invariants import check_all
from mkclean.sim.kernel.locking import Sched, lock_page, unlock_page
from mkclean.sim.kernel.mm import Vma, vma_set_page_prot, vma_wants_writenotify
from mkclean.sim.kernel.pgtable import (PAGE_SHARED, mk_pte, pte_dirty, pte_mkclean,
                                        pte_mkdirty, pte_wrprotect, pte_young, ptep_set_wrprotect,
                                        vm_get_page_prot, walk_tables)

RW = PROT_READ | PROT_WRITE
PAGE = 4096


@pytest.fixture
def k():
    kernel = Kernel(phys_size=2 << 20)
    yield kernel
    kernel.close()


def test_pte_bits():
    pte = mk_pte(0x1234, PAGE_SHARED)
    assert pte >> 10 == 0x1234
    assert pte & 1 and pte & 2 and pte & 4 and pte & 0x10      # V R W U
    assert pte_young(pte) and pte & (1 << 6)                    # born with A (bit 6)
    assert not pte_dirty(pte)
    d = pte_mkdirty(pte)
    assert d & (1 << 7)                                          # D is bit 7
    assert pte_mkclean(d) == pte                                  # clears D only
    assert pte_mkclean(d) & 4                                     # W stays
    assert not pte_wrprotect(d) & 4 and pte_dirty(pte_wrprotect(d))
    assert not vm_get_page_prot(VM_READ | VM_WRITE) & 4           # private: copy on write
    assert vm_get_page_prot(VM_READ | VM_WRITE | VM_SHARED) & 4


def test_tables_live_in_memory(k):
    f = k.create_file("f", 4 * PAGE)
    p = k.spawn()
    va = p.mmap(4 * PAGE, RW, MAP_SHARED, file=f)
    p.load(va, 1)
    slot = walk_tables(p.mm, va)
    assert slot is not None and k.hw.read_pte(slot) == p.pte(va).value
    assert k.hw.csr.ppn == p.mm.pgd >> 12 and k.hw.csr.asid == p.mm.asid
    assert k.hw.csr.mode == 8 and k.hw.csr.adue


def test_wrprotect_is_atomic(k):
    """A D bit the walker sets between the kernel's read and its CAS survives."""
    p = k.spawn()
    va = p.mmap(PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    p.store(va, b"x")
    slot = walk_tables(p.mm, va)
    hw = k.hw
    hw.write_pte(slot, hw.read_pte(slot) & ~0x80)
    real = hw.cas_pte
    calls = []

    def racing(paddr, expected, new):
        if not calls:
            hw.write_pte(paddr, hw.read_pte(paddr) | 0x80)
        calls.append(1)
        return real(paddr, expected, new)

    hw.cas_pte = racing
    try:
        new = ptep_set_wrprotect(hw, slot)
    finally:
        del hw.cas_pte
    assert len(calls) == 2 and pte_dirty(new) and not new & 4


def vma_of(k, flags, file=None):
    p = k.spawn()
    return Vma(p.mm, 0x1000_0000, 0x1000_1000, flags, file, 0)


@pytest.mark.parametrize("policy", ["writenotify", "legacy", "hwdirty"])
def test_vma_wants_writenotify_rules(policy):
    k = Kernel(policy=policy, phys_size=2 << 20)
    try:
        on = policy == "writenotify"
        shared_rw = VM_READ | VM_WRITE | VM_SHARED | VM_MAYWRITE
        f = k.create_file("f", PAGE)                                     # has page_mkwrite
        plain = k.create_file("plain", PAGE, page_mkwrite=False)         # can write back
        ramfs = k.create_file("ramfs", PAGE, page_mkwrite=False, can_writeback=False)
        drv = k.create_file("drv", PAGE, page_mkwrite=False, driver_prot=1 << 8)

        def wants(flags, file):
            vma = vma_of(k, flags, file)
            return vma_wants_writenotify(vma, vm_get_page_prot(flags) | (
                file.driver_prot or 0 if file is not None else 0))

        assert wants(shared_rw, f) is on
        assert wants(shared_rw & ~VM_WRITE, f) is False                # not writable
        assert wants(shared_rw & ~VM_SHARED, f) is False               # private
        assert wants(shared_rw, plain) is on                           # cap_account_dirty
        assert wants(shared_rw, ramfs) is False                        # no writeback
        assert wants(shared_rw, drv) is False                          # prot changed by driver
        assert wants(shared_rw | VM_PFNMAP, plain) is False            # special mapping
        assert wants(shared_rw | VM_UFFD_WP, ramfs) is on              # uffd-wp wants faults
        assert wants(shared_rw, None) is False                         # anonymous
        k.soft_dirty = True
        assert wants(shared_rw, ramfs) is on                           # soft-dirty tracking
        assert wants(shared_rw | VM_SOFTDIRTY, ramfs) is False
        vma = vma_of(k, shared_rw, f)
        vma_set_page_prot(vma)
        assert bool(vma.vm_page_prot & 4) is not on                    # W dropped if wanted
    finally:
        k.close()


def test_page_lock_deadlock_is_reported(k):
    f = k.create_file("f", PAGE)
    p = k.spawn()
    p.write(f, 0, b"x")
    page = k.page(f, 0)
    lock_page(k, page)
    with pytest.raises(KernelBug):
        lock_page(k, page)
    unlock_page(k, page)
    with pytest.raises(KernelBug):
        unlock_page(k, page)


def test_sched_sees_the_lock_points():
    """The points a scheduler can interleave at, for the store fault on a clean shared page."""

    class Recorder(Sched):
        def __init__(self):
            self.points = []

        def point(self, where, obj=None):
            self.points.append(where)

    sched = Recorder()
    k = Kernel(phys_size=2 << 20, sched=sched)
    try:
        f = k.create_file("f", PAGE)
        p = k.spawn()
        va = p.mmap(PAGE, RW, MAP_SHARED, file=f)
        p.load(va, 1)
        sched.points.clear()
        p.store(va, b"x")                   # do_wp_page -> wp_page_shared
        assert sched.points == [
            "pte_lock",                     # handle_pte_fault
            "pte_unlock",                   # wp_page_shared drops it for page_mkwrite
            "lock_page",                    # filemap_page_mkwrite (sets the page dirty)
            "pte_lock",                     # finish_mkwrite_fault
            "pte_unlock",                   # wp_page_reuse: writable + dirty
            "unlock_page",                  # fault_dirty_shared_page
        ]
        sched.points.clear()
        k.writeback()
        assert sched.points[:4] == ["lock_page", "pte_lock", "pte_unlock", "unlock_page"]
    finally:
        k.close()


def test_backend_registry(k):
    assert "golden" in backend_names()
    made = []

    def factory(**kw):
        from mkclean.sim.model.backend import GoldenHardware
        made.append(kw)
        return GoldenHardware(phys_size=kw["phys_size"])

    register_backend("test-golden", factory)
    k2 = Kernel(backend="test-golden", phys_size=1 << 20)
    try:
        assert made and made[0]["phys_size"] == 1 << 20
        p = k2.spawn()
        va = p.mmap(PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS)
        p.store(va, b"ok")
        assert p.load(va, 2) == b"ok"
    finally:
        k2.close()
    with pytest.raises(ValueError, match="choose one of"):
        Kernel(backend="nope")


def test_out_of_memory_kills(k):
    p = k.spawn()
    va = p.mmap(1024 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    with pytest.raises(Signal) as e:
        for i in range(1024):
            p.store(va + i * PAGE, b"x")
    assert e.value.signo == 9
    check_all(k)


def test_reclaim_makes_room(k):
    """Clean, unmapped page-cache pages are dropped when frames run out."""
    f = k.create_file("f", 1024 * PAGE)
    p = k.spawn()
    for i in range(0, 1024 * PAGE, PAGE):
        p.write(f, i, b"y")
        if i % (64 * PAGE) == 0:
            k.writeback()
    k.sync()
    assert p.read(f, 5 * PAGE, 1) == b"y"
    check_all(k)


def test_exit_frees_everything(k):
    free = k.mem.nr_free
    f = k.create_file("f", 8 * PAGE)
    p = k.spawn()
    c = None
    va = p.mmap(8 * PAGE, RW, MAP_SHARED, file=f)
    anon = p.mmap(8 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    for i in range(8):
        p.store(va + i * PAGE, b"s")
        p.store(anon + i * PAGE, b"a")
    c = p.fork()
    c.store(anon, b"c")
    c.exit()
    p.exit()
    assert k.mem.nr_free == free - 8            # only the file's page cache remains
    assert k.nr_dirty == 8
    with pytest.raises(KernelError) as e:
        p.mmap(PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    assert e.value.errno == errno.ESRCH


def test_shared_anonymous_memory(k):
    p = k.spawn()
    free = k.mem.nr_free
    va = p.mmap(4 * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS)
    p.store(va + PAGE, b"shm")
    c = p.fork()
    assert c.load(va + PAGE, 3) == b"shm"
    c.store(va, b"from child")
    assert p.load(va, 10) == b"from child"
    c.exit()
    p.munmap(va, 4 * PAGE)
    check_all(k)
    assert k.mem.nr_free == free and not k.shmem     # the object and its pages are gone


def test_trace_of_traps():
    k = Kernel(phys_size=2 << 20, trace=True)
    try:
        f = k.create_file("f", PAGE)
        p = k.spawn()
        va = p.mmap(PAGE, RW, MAP_SHARED, file=f)
        p.load(va, 1)
        p.store(va, b"x")
        assert k.trace == [(p.mm.asid, 13, va), (p.mm.asid, 15, va)]
    finally:
        k.close()


class EventLog(Sched):
    def __init__(self):
        self.events = []

    def point(self, where, obj=None):
        self.events.append(where)


def logged_kernel(policy="writenotify"):
    log = EventLog()
    k = Kernel(policy=policy, phys_size=2 << 20, sched=log)
    real = k.hw.sfence_vma

    def sfence(vaddr=None, asid=None):
        log.events.append("sfence" if vaddr is not None else "sfence-all")
        real(vaddr, asid)

    k.hw.sfence_vma = sfence
    return k, log


@pytest.mark.parametrize("policy", ["writenotify", "legacy"])
def test_zap_flushes_dirty_pte_before_dropping_the_lock(policy):
    """1cf35d47712d: unmapping a dirty shared PTE flushes the TLB before the PTE lock goes,
    so that page_mkclean, which takes that lock, cannot miss a stale writable entry."""
    k, log = logged_kernel(policy)
    try:
        f = k.create_file("f", PAGE)
        p = k.spawn()
        va = p.mmap(PAGE, RW, MAP_SHARED, file=f)
        p.store(va, b"dirty")
        log.events.clear()
        p.munmap(va, PAGE)
        ev = log.events
        assert ev.index("sfence") < ev.index("pte_unlock")
        assert k.page_dirty(f, 0)
        assert ev[-1] == "sfence-all"          # the freed PTE table: walk cache too
    finally:
        k.close()


def test_mkclean_flushes_under_the_pte_lock():
    k, log = logged_kernel()
    try:
        f = k.create_file("f", PAGE)
        p = k.spawn()
        va = p.mmap(PAGE, RW, MAP_SHARED, file=f)
        p.store(va, b"dirty")
        log.events.clear()
        k.writeback()
        ev = log.events
        assert ev[:5] == ["lock_page", "pte_lock", "sfence", "pte_unlock", "unlock_page"]
    finally:
        k.close()

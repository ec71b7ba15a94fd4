"""The syscalls' answers where a range has a hole, or two errors apply: Linux 6.18's.

Each case was asked of a Linux 6.18 x86_64 host first (ctypes: syscall(2) on files of an
ext4 directory, MAP_FIXED at 0x2000000000, the effect read back from /proc/self/maps and
smaps); the comment over each test names the function of mm/ that decides it and what the
host answered. A range walk that stops at an error keeps what it did before, as Linux's does.
"""

import errno
import signal

import pytest

from mkclean.sim.kernel import (MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_LOCKED,
                                MAP_POPULATE, MAP_PRIVATE, MAP_SHARED, MAP_SHARED_VALIDATE,
                                MS_ASYNC, MS_INVALIDATE, MS_SYNC, PROT_EXEC, PROT_NONE, PROT_READ,
                                PROT_WRITE, Kernel, KernelError, Signal)
from mkclean.sim.kernel.constants import (LEGACY_MAP_MASK, MAP_GROWSDOWN, MAP_HUGE_1GB,
                                          MAP_HUGE_2MB, MAP_HUGETLB, MAP_NONBLOCK, MAP_SYNC,
                                          PROT_GROWSDOWN, PROT_GROWSUP, VM_LOCKED, VM_MAYEXEC,
                                          VM_MAYWRITE, VM_READ, VM_WRITE)
from mkclean.sim.kernel.invariants import check_all

RW = PROT_READ | PROT_WRITE
PAGE = 4096
BASE = 0x20_0000_0000
TASK_SIZE = 1 << 38


@pytest.fixture(params=["writenotify", "legacy", "hwdirty"])
def k(request):
    kernel = Kernel(policy=request.param, phys_size=4 << 20)
    yield kernel
    check_all(kernel)
    kernel.close()


def errno_of(fn, *args, **kwargs):
    """The name of the errno that ``fn`` fails with (EOPNOTSUPP, not its alias ENOTSUP)."""
    with pytest.raises(KernelError) as e:
        fn(*args, **kwargs)
    if e.value.errno == errno.EOPNOTSUPP:
        return "EOPNOTSUPP"
    return errno.errorcode[e.value.errno]


def hole_layout(k, prot=RW, flags=MAP_SHARED):
    """[BASE, +2P) file a, a hole at BASE+2P, [BASE+3P, +2P) file b: the host's layout."""
    a, b = k.create_file("a", 4 * PAGE), k.create_file("b", 4 * PAGE)
    p = k.spawn()
    assert p.mmap(2 * PAGE, prot, flags | MAP_FIXED, file=a, addr=BASE) == BASE
    assert p.mmap(2 * PAGE, prot, flags | MAP_FIXED, file=b, addr=BASE + 3 * PAGE) \
        == BASE + 3 * PAGE
    return p, a, b


def flags_at(p, va):
    """vm_flags of the VMA containing va (None in a hole)."""
    for start, end, vm_flags, _, _ in p.vmas():
        if start <= va < end:
            return vm_flags
    return None


def store_faults(k, p, va):
    """Whether a store to va traps (a write fault, or a D-bit update trap under svade)."""
    before = sum(k.counters["traps"].values())
    p.store(va, b"w")
    return sum(k.counters["traps"].values()) > before


# -- 1. mprotect: do_mprotect_pkey (mm/mprotect.c) walks the VMAs one by one -------------------

def test_mprotect_stops_at_a_hole_keeping_the_part_before(k):
    # do_mprotect_pkey: mprotect_fixup on each VMA in turn; at a VMA that does not start
    # where the last one ended (vma->vm_start != tmp) it breaks out with ENOMEM.
    # Host: mprotect(BASE, 5P, PROT_READ) over [a a hole b b] -> ENOMEM; maps then shows
    # a r--s, b still rw-s.
    p, a, b = hole_layout(k)
    p.store(BASE, b"x")
    p.store(BASE + 3 * PAGE, b"x")
    assert errno_of(p.mprotect, BASE, 5 * PAGE, PROT_READ) == "ENOMEM"
    assert flags_at(p, BASE) & (VM_READ | VM_WRITE) == VM_READ
    assert flags_at(p, BASE + PAGE) & (VM_READ | VM_WRITE) == VM_READ
    assert flags_at(p, BASE + 3 * PAGE) & (VM_READ | VM_WRITE) == VM_READ | VM_WRITE
    with pytest.raises(Signal) as e:
        p.store(BASE, b"y")
    assert e.value.signo == signal.SIGSEGV
    p.store(BASE + 3 * PAGE, b"y")             # after the hole: still writable
    assert p.load(BASE + 3 * PAGE, 1) == b"y"


def test_mprotect_runs_past_the_last_vma(k):
    # do_mprotect_pkey: after the loop, tmp < end -> ENOMEM; the VMA walked keeps its change.
    # Host: mprotect(BASE+3P, 8P, PROT_READ) -> ENOMEM, b r--s.
    p, a, b = hole_layout(k)
    assert errno_of(p.mprotect, BASE + 3 * PAGE, 8 * PAGE, PROT_READ) == "ENOMEM"
    assert flags_at(p, BASE + 4 * PAGE) & (VM_READ | VM_WRITE) == VM_READ
    with pytest.raises(Signal):
        p.store(BASE + 4 * PAGE, b"y")
    # Up to the end of user space: the same walk, the same answer.
    assert errno_of(p.mprotect, BASE, TASK_SIZE - BASE, PROT_NONE) == "ENOMEM"
    assert flags_at(p, BASE) & (VM_READ | VM_WRITE) == PROT_NONE


def test_mprotect_start_in_a_hole_changes_nothing(k):
    # do_mprotect_pkey: the first VMA (vma_find) starts above start -> ENOMEM before the loop.
    # Host: mprotect(BASE+2P, 3P, PROT_READ) -> ENOMEM, b still rw-s.
    p, a, b = hole_layout(k)
    before = p.vmas()
    assert errno_of(p.mprotect, BASE + 2 * PAGE, 3 * PAGE, PROT_READ) == "ENOMEM"
    assert errno_of(p.mprotect, BASE + 20 * PAGE, PAGE, PROT_READ) == "ENOMEM"
    assert p.vmas() == before
    p.store(BASE + 3 * PAGE, b"y")


def test_mprotect_eacces_keeps_the_vmas_before(k):
    # do_mprotect_pkey: the VM_MAY% check ((newflags & ~(newflags >> 4)) & VM_ACCESS_FLAGS)
    # is made per VMA in the loop: EACCES breaks out, the VMAs before keep the change.
    # Host: [anon rw][shared file opened O_RDONLY, r][anon r], mprotect(BASE, 6P, RWX)
    # -> EACCES; maps: rwxp, r--s, r--p.
    # The model has no read-only open file: the middle VMA loses VM_MAYWRITE by hand, as
    # do_mmap clears it for a file without FMODE_WRITE.
    p = k.spawn()
    f = k.create_file("ro", 2 * PAGE)
    p.mmap(2 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, addr=BASE)
    p.mmap(2 * PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, file=f, addr=BASE + 2 * PAGE)
    p.mmap(2 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, addr=BASE + 4 * PAGE)
    p.mm.vmas[1].vm_flags &= ~VM_MAYWRITE
    assert errno_of(p.mprotect, BASE, 6 * PAGE, RW | PROT_EXEC) == "EACCES"
    assert flags_at(p, BASE) & 7 == 7
    assert flags_at(p, BASE + 2 * PAGE) & 7 == VM_READ
    assert flags_at(p, BASE + 4 * PAGE) & 7 == VM_READ
    p.mm.vmas[1].vm_flags |= VM_MAYWRITE
    # VM_MAYEXEC missing in the first VMA: EACCES before anything changes.
    p.mm.vmas[0].vm_flags &= ~VM_MAYEXEC
    assert errno_of(p.mprotect, BASE, 6 * PAGE, PROT_EXEC) == "EACCES"
    assert [flags_at(p, BASE + i * PAGE) & 7 for i in (0, 2, 4)] == [7, VM_READ, VM_READ]


def test_mprotect_argument_order(k):
    # do_mprotect_pkey's checks: PROT_GROWSDOWN|PROT_GROWSUP, the alignment of start, len 0
    # (-> 0, before prot is looked at), the wrap, then arch_validate_prot (PROT_SEM allowed).
    # Host: mprotect(BASE, 0, 0x80) -> 0; mprotect(BASE, -1, 0x80) -> ENOMEM;
    # mprotect(BASE+1, 0, 0x80) -> EINVAL; mprotect(BASE, P, 0x80) -> EINVAL;
    # mprotect(BASE, P, PROT_SEM) -> 0; mprotect(BASE+20P, P, 0x80) (a hole) -> EINVAL;
    # mprotect(-P, P, R) -> ENOMEM; PROT_GROWSDOWN on a VMA without VM_GROWSDOWN -> EINVAL,
    # in a hole -> ENOMEM; PROT_GROWSUP -> EINVAL.
    p, a, b = hole_layout(k)
    p.mprotect(BASE, 0, 0x80)
    assert errno_of(p.mprotect, BASE, -1, 0x80) == "ENOMEM"
    assert errno_of(p.mprotect, BASE + 1, 0, 0x80) == "EINVAL"
    assert errno_of(p.mprotect, BASE, PAGE, 0x80) == "EINVAL"
    assert errno_of(p.mprotect, BASE + 20 * PAGE, PAGE, 0x80) == "EINVAL"
    assert errno_of(p.mprotect, -PAGE, PAGE, PROT_READ) == "ENOMEM"
    p.mprotect(BASE, PAGE, RW | 0x8)             # PROT_SEM
    assert errno_of(p.mprotect, BASE, PAGE, PROT_READ | PROT_GROWSDOWN) == "EINVAL"
    assert errno_of(p.mprotect, BASE + 2 * PAGE, PAGE, PROT_READ | PROT_GROWSDOWN) == "ENOMEM"
    assert errno_of(p.mprotect, BASE + 2 * PAGE, 2 * PAGE,
                    PROT_READ | PROT_GROWSDOWN) == "EINVAL"
    assert errno_of(p.mprotect, BASE, PAGE, PROT_READ | PROT_GROWSUP) == "EINVAL"
    assert errno_of(p.mprotect, BASE + 1, PAGE,
                    PROT_READ | PROT_GROWSUP | PROT_GROWSDOWN) == "EINVAL"
    assert flags_at(p, BASE) & 7 == VM_READ | VM_WRITE


# -- 2. msync: sys_msync (mm/msync.c) ------------------------------------------------------------

def dirty_both(p):
    p.store(BASE, b"x")
    p.store(BASE + 3 * PAGE, b"x")


def dirty(k, p, f, va):
    """The page of ``f`` mapped at ``va`` is dirty: PG_dirty, or (legacy, hwdirty) its
    PTE's D bit, what smaps's Shared/Private_Dirty count."""
    start, _, _, name, pgoff = next(v for v in p.vmas() if v[0] <= va < v[1])
    assert name == f.name
    pte = p.pte(va)
    return k.page_dirty(f, pgoff + (va - start) // PAGE) or (pte is not None and pte.d)


def test_msync_sync_writes_each_part_then_enomem(k):
    # sys_msync: a hole sets unmapped_error and the walk goes on; vfs_fsync_range for each
    # shared file VMA's part; ENOMEM at the end.
    # Host: msync(BASE, 5P, MS_SYNC) over [a a hole b b], both dirty -> ENOMEM; smaps:
    # a and b 0 kB dirty.
    p, a, b = hole_layout(k)
    dirty_both(p)
    assert dirty(k, p, a, BASE) and dirty(k, p, b, BASE + 3 * PAGE)
    assert errno_of(p.msync, BASE, 5 * PAGE, MS_SYNC) == "ENOMEM"
    assert not dirty(k, p, a, BASE) and not dirty(k, p, b, BASE + 3 * PAGE)
    assert a.on_disk(0, 1) == b"x" and b.on_disk(0, 1) == b"x"
    if k.policy.name == "writenotify":          # mkcleaned: the next store faults again
        assert not p.pte(BASE).w and not p.pte(BASE + 3 * PAGE).w
        assert store_faults(k, p, BASE) and store_faults(k, p, BASE + 3 * PAGE)


def test_msync_async_enomem_at_the_first_hole(k):
    # sys_msync: "if (flags == MS_ASYNC) goto out_unlock" at the first hole: ENOMEM, and
    # nothing after it is looked at. Host: msync(BASE, 5P, MS_ASYNC) -> ENOMEM, a and b
    # still 4 kB dirty; msync(BASE, 3P, MS_ASYNC) over [a][hole][b locked] -> ENOMEM.
    p, a, b = hole_layout(k)
    dirty_both(p)
    assert errno_of(p.msync, BASE, 5 * PAGE, MS_ASYNC) == "ENOMEM"
    assert dirty(k, p, a, BASE) and dirty(k, p, b, BASE + 3 * PAGE)
    p.mlock(BASE + 3 * PAGE, PAGE)
    assert errno_of(p.msync, BASE, 5 * PAGE, MS_ASYNC) == "ENOMEM"
    # Not exactly MS_ASYNC: the walk goes on past the hole and finds the locked VMA.
    # Host: msync(BASE, 3P, MS_ASYNC|MS_INVALIDATE) and (.., MS_INVALIDATE) -> EBUSY.
    assert errno_of(p.msync, BASE, 5 * PAGE, MS_ASYNC | MS_INVALIDATE) == "EBUSY"
    assert errno_of(p.msync, BASE, 5 * PAGE, MS_INVALIDATE) == "EBUSY"
    # ... and without the lock, the hole's ENOMEM. Host: msync(BASE, 2P, MS_INVALIDATE)
    # over [a][hole] -> ENOMEM; msync(BASE, 5P, 0) -> ENOMEM.
    assert errno_of(p.msync, BASE, 3 * PAGE, MS_INVALIDATE) == "ENOMEM"
    assert errno_of(p.msync, BASE, 5 * PAGE, 0) == "ENOMEM"
    assert dirty(k, p, a, BASE) and dirty(k, p, b, BASE + 3 * PAGE)


def test_msync_hole_at_the_start_and_the_end(k):
    # sys_msync: start in a hole -> start = vma->vm_start, unmapped_error; the VMA after is
    # synced, then ENOMEM. No VMA at all (find_vma NULL) -> ENOMEM; the first VMA beyond
    # end -> ENOMEM. End beyond the last VMA: it is synced, then vma NULL -> ENOMEM.
    # Host: msync(BASE+2P, 3P, MS_SYNC) -> ENOMEM, b 0 kB dirty; msync(BASE+2P, P, MS_SYNC)
    # -> ENOMEM; msync(BASE+20P, P, MS_SYNC) -> ENOMEM; msync(BASE+3P, 10P, MS_SYNC) ->
    # ENOMEM, b 0 kB dirty; msync(BASE, 0, ..) and msync(BASE+20P, 0, ..) -> 0;
    # msync(BASE, -1, MS_SYNC) -> 0 (the length rounds up to 0); msync(BASE, -P, ..) and
    # msync(-P, 2P, ..) -> ENOMEM (end < start).
    p, a, b = hole_layout(k)
    dirty_both(p)
    assert errno_of(p.msync, BASE + 2 * PAGE, 3 * PAGE, MS_SYNC) == "ENOMEM"
    assert dirty(k, p, a, BASE) and not dirty(k, p, b, BASE + 3 * PAGE)
    assert errno_of(p.msync, BASE + 2 * PAGE, PAGE, MS_SYNC) == "ENOMEM"
    assert errno_of(p.msync, BASE + 20 * PAGE, PAGE, MS_SYNC) == "ENOMEM"
    p.store(BASE + 4 * PAGE, b"z")
    assert errno_of(p.msync, BASE + 3 * PAGE, 10 * PAGE, MS_SYNC) == "ENOMEM"
    assert not dirty(k, p, b, BASE + 4 * PAGE)
    p.msync(BASE, 0, MS_SYNC)
    p.msync(BASE + 20 * PAGE, 0, MS_SYNC)
    p.msync(BASE, -1, MS_SYNC)
    assert dirty(k, p, a, BASE)
    assert errno_of(p.msync, BASE, -PAGE, MS_SYNC) == "ENOMEM"
    assert errno_of(p.msync, -PAGE, 2 * PAGE, MS_SYNC) == "ENOMEM"


def test_msync_ebusy_in_walk_order(k):
    # sys_msync: the MS_INVALIDATE/VM_LOCKED check is per VMA as the walk reaches it: the
    # VMAs before were synced. Host: [a][b MAP_LOCKED][c], a and c dirty,
    # msync(BASE, 6P, MS_SYNC|MS_INVALIDATE) -> EBUSY; a 0 kB dirty, c 4 kB dirty.
    a, b, c = (k.create_file(n, 2 * PAGE) for n in "abc")
    p = k.spawn()
    p.mmap(2 * PAGE, RW, MAP_SHARED | MAP_FIXED, file=a, addr=BASE)
    p.mmap(2 * PAGE, RW, MAP_SHARED | MAP_FIXED | MAP_LOCKED, file=b, addr=BASE + 2 * PAGE)
    p.mmap(2 * PAGE, RW, MAP_SHARED | MAP_FIXED, file=c, addr=BASE + 4 * PAGE)
    p.store(BASE, b"x")
    p.store(BASE + 4 * PAGE, b"x")
    assert errno_of(p.msync, BASE, 6 * PAGE, MS_SYNC | MS_INVALIDATE) == "EBUSY"
    assert not dirty(k, p, a, BASE) and dirty(k, p, c, BASE + 4 * PAGE)


# -- 3, 4. mmap: the syscall entry, ksys_mmap_pgoff, do_mmap (mm/mmap.c) --------------------------

def test_mmap_shared_validate_anonymous_is_einval(k):
    # do_mmap: the anonymous switch on flags & MAP_TYPE has MAP_SHARED, MAP_DROPPABLE and
    # MAP_PRIVATE; MAP_SHARED_VALIDATE falls to default -> EINVAL.
    # Host: mmap(NULL, P, RW, MAP_SHARED_VALIDATE|MAP_ANONYMOUS, -1, 0) -> EINVAL (also with
    # 0x80000000 added); type 0 -> EINVAL.
    p = k.spawn()
    assert errno_of(p.mmap, PAGE, RW, MAP_SHARED_VALIDATE | MAP_ANONYMOUS) == "EINVAL"
    assert errno_of(p.mmap, PAGE, RW, MAP_SHARED_VALIDATE | MAP_ANONYMOUS | 0x8000_0000) \
        == "EINVAL"
    assert errno_of(p.mmap, PAGE, RW, MAP_ANONYMOUS) == "EINVAL"
    assert p.vmas() == []


def test_mmap_legacy_map_mask(k):
    # do_mmap: MAP_SHARED drops the flags outside LEGACY_MAP_MASK; MAP_SHARED_VALIDATE
    # refuses them (EOPNOTSUPP): MAP_FIXED_NOREPLACE and MAP_SYNC are not in it.
    # Host: MAP_SHARED_VALIDATE|MAP_FIXED_NOREPLACE, a free range -> EOPNOTSUPP (nothing
    # mapped); MAP_SHARED|MAP_FIXED_NOREPLACE -> mapped; MAP_SHARED_VALIDATE|MAP_SYNC ->
    # EOPNOTSUPP; |0x200 and |0x80000000 -> EOPNOTSUPP; MAP_SHARED|0x80000000 -> mapped;
    # MAP_SHARED_VALIDATE|0x40000000 (a MAP_HUGE_ size bit, in the mask) -> mapped;
    # MAP_SHARED_VALIDATE|MAP_POPULATE|MAP_LOCKED -> mapped.
    f = k.create_file("f", 4 * PAGE)
    p = k.spawn()
    for extra in (MAP_FIXED_NOREPLACE, MAP_SYNC, 0x200, 0x8000_0000):
        assert errno_of(p.mmap, PAGE, RW, MAP_SHARED_VALIDATE | extra, file=f, addr=BASE) \
            == "EOPNOTSUPP", hex(extra)
    assert p.vmas() == []
    assert p.mmap(PAGE, RW, MAP_SHARED | MAP_FIXED_NOREPLACE, file=f, addr=BASE) == BASE
    p.mmap(PAGE, RW, MAP_SHARED | 0x8000_0000, file=f)
    p.mmap(PAGE, RW, MAP_PRIVATE | 0x8000_0000, file=f)
    p.mmap(PAGE, RW, MAP_SHARED | MAP_ANONYMOUS | 0x8000_0000)
    p.mmap(PAGE, RW, MAP_SHARED_VALIDATE | 0x4000_0000, file=f)
    va = p.mmap(PAGE, RW, MAP_SHARED_VALIDATE | MAP_POPULATE | MAP_LOCKED, file=f)
    assert p.pte(va) is not None and flags_at(p, va) & VM_LOCKED
    assert LEGACY_MAP_MASK & (MAP_HUGE_2MB | MAP_HUGE_1GB) == 0x7C00_0000
    assert not LEGACY_MAP_MASK & (MAP_FIXED_NOREPLACE | MAP_SYNC)


def test_mmap_check_order(k):
    # The order Linux checks in: the syscall entry's offset (EINVAL), ksys_mmap_pgoff's fget
    # (EBADF) and MAP_HUGETLB of a file (EINVAL), then do_mmap: len 0 (EINVAL), the rounded
    # len (ENOMEM), __get_unmapped_area (ENOMEM beyond TASK_SIZE, then EINVAL for an
    # unaligned MAP_FIXED address), MAP_FIXED_NOREPLACE (EEXIST), file_mmap_ok
    # (EOVERFLOW), the map type (EOPNOTSUPP, EINVAL), MAP_GROWSDOWN of a file (EINVAL).
    # Host answers, in the order below (fd 999 is not open):
    #   mmap(0, 0, RW, MAP_SHARED, 999, 100)                        -> EINVAL
    #   mmap(0, 0, RW, MAP_SHARED, 999, 0)                          -> EBADF
    #   mmap(0, P, RW, 0, 999, 0)                                   -> EBADF
    #   mmap(0, P, RW, MAP_SHARED_VALIDATE|0x40000000, 999, 0)      -> EBADF
    #   mmap(0, 0, RW, MAP_SHARED|MAP_HUGETLB, fd, 0)               -> EINVAL
    #   mmap(0, 0, RW, 0, fd, 0) and (.., MAP_SHARED_VALIDATE|0x80000000..) -> EINVAL
    #   mmap(0, -1, RW, MAP_SHARED, fd, 0) and (0, -P, RW, 0, fd, 0) -> ENOMEM
    #   mmap(0, 1<<50, RW, MAP_ANONYMOUS, -1, 0)                    -> ENOMEM
    #   mmap(A, P, RW, MAP_FIXED_NOREPLACE, fd, 0), A mapped        -> EEXIST
    #   mmap(A, P, RW, MAP_SHARED_VALIDATE|0x80000000|MAP_FIXED_NOREPLACE, fd, 0) -> EEXIST
    #   mmap(A, P, RW, MAP_SHARED|MAP_FIXED_NOREPLACE, fd, 1<<62)   -> EEXIST
    #   mmap(A+1, P, RW, MAP_FIXED, fd, 1<<62)                      -> EINVAL
    #   mmap(0x7ffffffff001, 2P, RW, MAP_SHARED|MAP_FIXED, fd, 0)   -> ENOMEM (x86 TASK_SIZE)
    #   mmap(0, P, RW, MAP_SHARED_VALIDATE|0x80000000|MAP_GROWSDOWN, fd, 0) -> EOPNOTSUPP
    #   mmap(0, P, RW, MAP_PRIVATE|MAP_GROWSDOWN, fd, 0)            -> EINVAL
    #   mmap(0, P, RW, MAP_SHARED|MAP_ANONYMOUS|MAP_GROWSDOWN, -1, 0) -> EINVAL
    #   mmap(0, P, RW, MAP_SHARED, fd, -P)                          -> EOVERFLOW
    #   mmap(0, P, RW, MAP_PRIVATE|MAP_ANONYMOUS, -1, -P or 1<<41)  -> mapped
    #   mmap(0, P, RW, MAP_PRIVATE|MAP_ANONYMOUS, -1, 100)          -> EINVAL
    #   mmap(0, P, 0x80 or PROT_SEM, MAP_SHARED, fd, 0)             -> mapped
    # (The model's largest file is 2**40 bytes, so its EOVERFLOW comes for offsets the
    # host takes; it comes where file_mmap_ok's does.)
    f = k.create_file("f", 4 * PAGE)
    p = k.spawn()
    A = BASE + 8 * PAGE
    p.mmap(PAGE, RW, MAP_SHARED | MAP_FIXED, file=f, addr=A)
    cases = [
        ("EINVAL", (0, RW, MAP_SHARED), {"offset": 100}),
        ("EBADF", (0, RW, MAP_SHARED), {}),
        ("EBADF", (PAGE, RW, 0), {}),
        ("EBADF", (PAGE, RW, MAP_SHARED_VALIDATE | 0x4000_0000), {}),
        ("EINVAL", (0, RW, MAP_SHARED | MAP_HUGETLB), {"file": f}),
        ("EINVAL", (0, RW, 0), {"file": f}),
        ("EINVAL", (0, RW, MAP_SHARED_VALIDATE | 0x8000_0000), {"file": f}),
        ("ENOMEM", (-1, RW, MAP_SHARED), {"file": f}),
        ("ENOMEM", (-PAGE, RW, 0), {"file": f}),
        ("ENOMEM", (1 << 50, RW, MAP_ANONYMOUS), {}),
        ("EEXIST", (PAGE, RW, MAP_FIXED_NOREPLACE), {"file": f, "addr": A}),
        ("EEXIST", (PAGE, RW, MAP_SHARED_VALIDATE | 0x8000_0000 | MAP_FIXED_NOREPLACE),
         {"file": f, "addr": A}),
        ("EEXIST", (PAGE, RW, MAP_SHARED | MAP_FIXED_NOREPLACE),
         {"file": f, "addr": A, "offset": 1 << 40}),
        ("EOVERFLOW", (PAGE, RW, 0), {"file": f, "offset": 1 << 40}),
        ("EINVAL", (PAGE, RW, MAP_FIXED), {"file": f, "addr": A + 1, "offset": 1 << 40}),
        ("ENOMEM", (2 * PAGE, RW, MAP_SHARED | MAP_FIXED), {"file": f, "addr": TASK_SIZE - PAGE + 1}),
        ("EOPNOTSUPP", (PAGE, RW, MAP_SHARED_VALIDATE | 0x8000_0000 | MAP_GROWSDOWN),
         {"file": f}),
        ("EINVAL", (PAGE, RW, MAP_PRIVATE | MAP_GROWSDOWN), {"file": f}),
        ("EINVAL", (PAGE, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_GROWSDOWN), {}),
        ("EOVERFLOW", (PAGE, RW, MAP_SHARED), {"file": f, "offset": -PAGE}),
        ("EINVAL", (PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS), {"offset": 100}),
    ]
    before = p.vmas()
    for err, args, kwargs in cases:
        assert errno_of(p.mmap, *args, **kwargs) == err, (args, kwargs)
    assert p.vmas() == before
    p.mmap(PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, offset=-PAGE)
    p.mmap(PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, offset=1 << 41)
    va = p.mmap(PAGE, 0x80 | PROT_READ, MAP_SHARED, file=f)
    assert flags_at(p, va) & 7 == VM_READ
    p.mmap(PAGE, 0x8, MAP_SHARED, file=f)


def test_mmap_populate_nonblock(k):
    # do_mmap: *populate only when (flags & (MAP_POPULATE | MAP_NONBLOCK)) == MAP_POPULATE.
    # Host: MAP_SHARED|MAP_POPULATE|MAP_NONBLOCK -> Rss 0 kB; MAP_SHARED|MAP_POPULATE -> 8 kB.
    f = k.create_file("f", 2 * PAGE)
    p = k.spawn()
    va = p.mmap(2 * PAGE, RW, MAP_SHARED | MAP_POPULATE | MAP_NONBLOCK, file=f)
    assert p.pte(va) is None and p.pte(va + PAGE) is None
    va = p.mmap(2 * PAGE, RW, MAP_SHARED | MAP_POPULATE, file=f)
    assert p.pte(va) is not None and p.pte(va + PAGE) is not None


# -- 5. mlock/munlock: apply_vma_lock_flags and do_mlock (mm/mlock.c); munmap ------------------

def test_mlock_stops_at_a_hole_and_does_not_populate(k):
    # apply_vma_lock_flags: mlock_fixup VMA by VMA, ENOMEM at the hole; do_mlock returns
    # that error before __mm_populate. Host: mlock(BASE, 5P) over [a a hole b b] -> ENOMEM;
    # smaps: a VmFlags has "lo" with Rss 0 kB, b no "lo".
    p, a, b = hole_layout(k)
    assert errno_of(p.mlock, BASE, 5 * PAGE) == "ENOMEM"
    assert flags_at(p, BASE) & VM_LOCKED and flags_at(p, BASE + PAGE) & VM_LOCKED
    assert not flags_at(p, BASE + 3 * PAGE) & VM_LOCKED
    assert p.pte(BASE) is None and p.pte(BASE + PAGE) is None   # not faulted in
    # Past the last VMA: the same (host: mlock(BASE+3P, 10P) -> ENOMEM, b locked, Rss 0).
    assert errno_of(p.mlock, BASE + 3 * PAGE, 10 * PAGE) == "ENOMEM"
    assert flags_at(p, BASE + 4 * PAGE) & VM_LOCKED and p.pte(BASE + 3 * PAGE) is None
    # The whole of a VMA: populated.
    p.mlock(BASE, 2 * PAGE)
    assert p.pte(BASE) is not None and p.pte(BASE + PAGE) is not None


def test_mlock_start_in_a_hole_changes_nothing(k):
    # apply_vma_lock_flags: vma_iter_load(start) finds no VMA -> ENOMEM before the loop.
    # Host: mlock(BASE+2P, 3P) -> ENOMEM, b not locked.
    p, a, b = hole_layout(k)
    before = p.vmas()
    assert errno_of(p.mlock, BASE + 2 * PAGE, 3 * PAGE) == "ENOMEM"
    assert errno_of(p.munlock, BASE + 2 * PAGE, 3 * PAGE) == "ENOMEM"
    assert p.vmas() == before


def test_munlock_stops_at_a_hole(k):
    # apply_vma_lock_flags for munlock: the same walk. Host: both locked, munlock(BASE, 5P)
    # -> ENOMEM; smaps Locked: a 0 kB, b 8 kB.
    p, a, b = hole_layout(k)
    p.mlock(BASE, 2 * PAGE)
    p.mlock(BASE + 3 * PAGE, 2 * PAGE)
    assert errno_of(p.munlock, BASE, 5 * PAGE) == "ENOMEM"
    assert not flags_at(p, BASE) & VM_LOCKED
    assert flags_at(p, BASE + 3 * PAGE) & VM_LOCKED


def test_mlock_lengths(k):
    # do_mlock/munlock: len = PAGE_ALIGN(len + offset_in_page(start)), start rounded down;
    # apply_vma_lock_flags: end < start -> EINVAL, end == start -> 0.
    # Host: mlock(BASE+20P, 0) -> 0; mlock(BASE, -1) -> 0 (the length rounds to 0, nothing
    # locked); mlock(BASE+1, 0) -> 0, locking [BASE, BASE+P); mlock(BASE, -P) and
    # munlock(BASE, -P) -> EINVAL; mlock(-P, P) -> EINVAL; mlock(BASE+1, P) -> 0, locking
    # [BASE, BASE+2P).
    p, a, b = hole_layout(k)
    p.mlock(BASE + 20 * PAGE, 0)
    p.mlock(BASE, -1)
    assert not flags_at(p, BASE) & VM_LOCKED
    p.mlock(BASE + 1, 0)
    assert [v[:2] for v in p.vmas() if v[2] & VM_LOCKED] == [(BASE, BASE + PAGE)]
    assert errno_of(p.mlock, BASE, -PAGE) == "EINVAL"
    assert errno_of(p.munlock, BASE, -PAGE) == "EINVAL"
    assert errno_of(p.mlock, -PAGE, PAGE) == "EINVAL"
    p.mlock(BASE + 1, PAGE)                     # [BASE, BASE+2P): both pages
    assert flags_at(p, BASE + PAGE) & VM_LOCKED and not flags_at(p, BASE + 3 * PAGE) & VM_LOCKED


def test_munmap_over_a_hole(k):
    # do_vmi_munmap: vma_find of the first VMA in the range, then do_vmi_align_munmap of
    # all there is: a hole is no error, an all-hole range is 0 too.
    # Host: munmap(BASE, 5P) over [a a hole b b] -> 0, both gone; munmap(BASE+20P, P) -> 0;
    # munmap(BASE, 0) and munmap(BASE, -1) -> EINVAL.
    p, a, b = hole_layout(k)
    p.store(BASE, b"x")
    p.munmap(BASE, 5 * PAGE)
    assert p.vmas() == []
    p.munmap(BASE + 20 * PAGE, PAGE)
    assert errno_of(p.munmap, BASE, 0) == "EINVAL"
    assert errno_of(p.munmap, BASE, -1) == "EINVAL"
    with pytest.raises(Signal):
        p.load(BASE, 1)


def test_mlock_that_cannot_fault_in_is_enomem_and_stays_locked(k):
    # do_mlock: after apply_vma_lock_flags, __mm_populate(start, len, 0) stops at the
    # first page get_user_pages cannot fault in, and __mlock_posix_error_return turns its
    # EFAULT into ENOMEM; the VMAs stay locked and the pages before are populated.
    # Host (realcheck): mlock of a PROT_NONE file mapping -> ENOMEM (no FOLL_FORCE on an
    # inaccessible VMA); mlock of a mapping running past EOF -> ENOMEM.
    f = k.create_file("f", PAGE + 100)
    p = k.spawn()
    assert p.mmap(2 * PAGE, 0, MAP_PRIVATE | MAP_FIXED, file=f, addr=BASE) == BASE
    assert errno_of(p.mlock, BASE, 2 * PAGE) == "ENOMEM"
    assert flags_at(p, BASE) & VM_LOCKED
    assert p.mmap(4 * PAGE, RW, MAP_SHARED | MAP_FIXED, file=f, addr=BASE + 8 * PAGE) \
        == BASE + 8 * PAGE
    assert errno_of(p.mlock, BASE + 8 * PAGE, 4 * PAGE) == "ENOMEM"
    assert flags_at(p, BASE + 8 * PAGE) & VM_LOCKED
    assert p.pte(BASE + 8 * PAGE) is not None and p.pte(BASE + 9 * PAGE) is not None
    assert p.pte(BASE + 10 * PAGE) is None
    # MAP_POPULATE ignores the same errors (__mm_populate with ignore_errors).
    assert p.mmap(4 * PAGE, RW, MAP_SHARED | MAP_FIXED | MAP_POPULATE, file=f,
                  addr=BASE + 16 * PAGE) == BASE + 16 * PAGE
    assert p.pte(BASE + 17 * PAGE) is not None and p.pte(BASE + 18 * PAGE) is None


def test_mprotect_making_a_locked_private_vma_writable_faults_it_in(k):
    # mprotect_fixup: "Private VM_LOCKED VMA becoming writable: trigger COW to avoid major
    # fault on access" (populate_vma_page_range). realcheck seed 877, shrunk: an mlock
    # that failed (ENOMEM) still locked the read-only anonymous VMA; mprotect RW then
    # faulted it in writable, and the host's store took 0 faults.
    p = k.spawn()
    p.mmap(2 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, addr=BASE)
    p.mlock(BASE, 2 * PAGE)
    p.mprotect(BASE, 2 * PAGE, RW)
    assert p.pte(BASE).w and p.pte(BASE + PAGE).w
    before = sum(k.counters["traps"].values())
    p.store(BASE + 5, b"s")
    assert sum(k.counters["traps"].values()) == before
    # Not locked: no population, the store faults.
    p.mmap(PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, addr=BASE + 8 * PAGE)
    p.mprotect(BASE + 8 * PAGE, PAGE, RW)
    assert p.pte(BASE + 8 * PAGE) is None

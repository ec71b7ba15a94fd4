"""Every syscall's bad-argument cases: the errno, and every state left as it was (but for
a range with a hole, where Linux's walk changes the part before it: see
test_kernel_linux_syscalls.py)."""

import copy
import errno
import hashlib

import pytest

from mkclean.sim.kernel import (MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_LOCKED,
                                MAP_PRIVATE, MAP_SHARED, MAP_SHARED_VALIDATE, MS_ASYNC,
                                MS_INVALIDATE, MS_SYNC, PROT_EXEC, PROT_READ, PROT_WRITE,
                                Kernel, KernelError)
from mkclean.sim.kernel.invariants import check_all, mapped_ptes

RW = PROT_READ | PROT_WRITE
PAGE = 4096
TASK_SIZE = 1 << 38


def snapshot(k):
    """Everything a syscall could change."""
    files = {}
    for name, f in k.files.items():
        files[name] = (f.i_size, sorted((i, p.pfn, p.dirty, p.writeback, p.mapcount)
                                        for i, p in f.pages.items()),
                       f.on_disk(0, 1 << 20), len(f.i_mmap))
    tlb = getattr(getattr(k.hw, "mmu", None), "tlb", None)
    return {
        "vmas": {p.pid: p.vmas() for p in k.processes},
        "ptes": sorted((mm.asid, va, pte) for mm, va, pte in mapped_ptes(k)),
        "files": files,
        "nr_dirty": k.nr_dirty,
        "free": list(k.mem.free),
        "counters": copy.deepcopy(k.counters),
        "memory": hashlib.sha1(k.hw.read(0, k.hw.phys_size)).hexdigest(),
        "tlb": tlb.entries if tlb is not None else None,
    }


@pytest.fixture(params=["writenotify", "legacy", "hwdirty"])
def setup(request):
    """A kernel with a process, two files, a dirty shared mapping and a private one."""
    k = Kernel(policy=request.param, phys_size=2 << 20)
    f = k.create_file("f", 4 * PAGE)
    g = k.create_file("g", PAGE)
    p = k.spawn()
    shared = p.mmap(4 * PAGE, RW, MAP_SHARED, file=f)
    p.store(shared, b"dirty")
    p.load(shared + PAGE, 1)
    private = p.mmap(2 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    p.store(private, b"anon")
    locked = p.mmap(PAGE, RW, MAP_SHARED | MAP_LOCKED, file=g)
    yield k, p, f, g, shared, private, locked
    check_all(k)
    k.close()


def expect(k, err, fn, *args, **kwargs):
    before = snapshot(k)
    with pytest.raises(KernelError) as e:
        fn(*args, **kwargs)
    assert e.value.errno == err, f"{fn.__name__}{args}: {errno.errorcode[e.value.errno]}, " \
                                 f"expected {errno.errorcode[err]}"
    after = snapshot(k)
    for key in before:
        assert before[key] == after[key], f"{fn.__name__}{args} changed {key}"


def test_mmap_bad_arguments(setup):
    k, p, f, g, shared, private, locked = setup
    other = Kernel(phys_size=1 << 20)
    try:
        foreign = other.create_file("x", PAGE)
        cases = [
            (errno.EINVAL, (0, RW, MAP_SHARED), {"file": f}),                 # length 0
            (errno.ENOMEM, (-PAGE, RW, MAP_SHARED), {"file": f}),             # wraps
            (errno.ENOMEM, (TASK_SIZE + PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS), {}),
            (errno.EINVAL, (PAGE, RW, 0), {"file": f}),                       # no type
            (errno.EINVAL, (PAGE, RW, 0x04), {"file": f}),                    # bad type
            # 0x40000000 is a MAP_HUGE_ bit, in LEGACY_MAP_MASK; bit 31 is not.
            (errno.EOPNOTSUPP, (PAGE, RW, MAP_SHARED_VALIDATE | 0x80000000), {"file": f}),
            (errno.EINVAL, (PAGE, RW, MAP_SHARED), {"file": f, "offset": 100}),
            # -PAGE is page aligned: file_mmap_ok finds it beyond the largest file.
            (errno.EOVERFLOW, (PAGE, RW, MAP_SHARED), {"file": f, "offset": -PAGE}),
            (errno.EOVERFLOW, (PAGE, RW, MAP_SHARED), {"file": f, "offset": 1 << 40}),
            (errno.EBADF, (PAGE, RW, MAP_SHARED), {}),                        # no file
            (errno.EBADF, (PAGE, RW, MAP_SHARED), {"file": "f"}),
            (errno.EBADF, (PAGE, RW, MAP_SHARED), {"file": foreign}),
            (errno.EPERM, (PAGE, RW, MAP_SHARED | MAP_FIXED), {"file": f}),   # no addr: 0
            (errno.EINVAL, (PAGE, RW, MAP_SHARED | MAP_FIXED), {"file": f, "addr": shared + 1}),
            (errno.EPERM, (PAGE, RW, MAP_SHARED | MAP_FIXED), {"file": f, "addr": 0}),
            (errno.ENOMEM, (2 * PAGE, RW, MAP_SHARED | MAP_FIXED),
             {"file": f, "addr": TASK_SIZE - PAGE}),
            (errno.EEXIST, (PAGE, RW, MAP_SHARED | MAP_FIXED_NOREPLACE),
             {"file": f, "addr": shared}),
            (errno.EINVAL, ("4096", RW, MAP_SHARED), {"file": f}),            # not an int
            (errno.EINVAL, (PAGE, RW, MAP_SHARED), {"file": f, "offset": 1.5}),
        ]
        for err, args, kwargs in cases:
            expect(k, err, p.mmap, *args, **kwargs)
    finally:
        other.close()
    # No room left for another mapping.
    q = k.spawn()
    q.mmap(TASK_SIZE - (1 << 28) - PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS)
    expect(k, errno.ENOMEM, q.mmap, 2 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS)


def test_munmap_bad_arguments(setup):
    k, p, f, g, shared, private, locked = setup
    expect(k, errno.EINVAL, p.munmap, shared + 1, PAGE)
    expect(k, errno.EINVAL, p.munmap, shared, 0)
    expect(k, errno.EINVAL, p.munmap, shared, -PAGE)
    expect(k, errno.EINVAL, p.munmap, TASK_SIZE - PAGE, 2 * PAGE)
    expect(k, errno.EINVAL, p.munmap, None, PAGE)
    p.munmap(0x7000_0000, PAGE)                    # a hole: not an error


def test_mprotect_bad_arguments(setup):
    k, p, f, g, shared, private, locked = setup
    expect(k, errno.EINVAL, p.mprotect, shared + 8, PAGE, PROT_READ)
    expect(k, errno.EINVAL, p.mprotect, shared, PAGE, 0x10)
    expect(k, errno.ENOMEM, p.mprotect, shared, -1, PROT_READ)
    expect(k, errno.ENOMEM, p.mprotect, 0x7000_0000, PAGE, PROT_READ)
    expect(k, errno.ENOMEM, p.mprotect, TASK_SIZE - PAGE, 2 * PAGE, PROT_READ)
    before = snapshot(k)
    p.mprotect(shared, 0, 0)          # zero length (PROT_NONE): nothing to do
    p.mprotect(shared, 0, 0x10)       # ... before prot is looked at (do_mprotect_pkey)
    assert snapshot(k)["ptes"] == before["ptes"]
    # Partly mapped: do_mprotect_pkey changes the mapped part, then finds the hole (ENOMEM).
    with pytest.raises(KernelError) as e:
        p.mprotect(shared, 64 * PAGE, PROT_READ)
    assert e.value.errno == errno.ENOMEM
    assert all(v[2] & PROT_WRITE == 0 for v in p.vmas())


def test_msync_bad_arguments(setup):
    k, p, f, g, shared, private, locked = setup
    expect(k, errno.EINVAL, p.msync, shared, PAGE, 0x8)
    expect(k, errno.EINVAL, p.msync, shared + 1, PAGE, MS_SYNC)
    expect(k, errno.EINVAL, p.msync, shared, PAGE, MS_ASYNC | MS_SYNC)
    expect(k, errno.ENOMEM, p.msync, 0x7000_0000, PAGE, MS_SYNC)
    expect(k, errno.ENOMEM, p.msync, shared, -PAGE, MS_ASYNC)   # end < start
    p.msync(shared, -1, MS_ASYNC)     # the length rounds up to 0 (sys_msync): nothing
    expect(k, errno.EBUSY, p.msync, locked, PAGE, MS_INVALIDATE)
    expect(k, errno.EBUSY, p.msync, locked, PAGE, MS_INVALIDATE | MS_SYNC)
    p.msync(locked, PAGE, MS_SYNC)                 # a locked mapping can still be synced
    p.msync(shared, 0, MS_SYNC)                    # zero length: nothing
    # Partly mapped: sys_msync writes the mapped, dirty part, then answers ENOMEM.
    with pytest.raises(KernelError) as e:
        p.msync(shared, 64 * PAGE, MS_SYNC)
    assert e.value.errno == errno.ENOMEM
    assert not f.pages[0].dirty and f.on_disk(0, 5) == b"dirty"


def test_mlock_bad_arguments(setup):
    k, p, f, g, shared, private, locked = setup
    expect(k, errno.ENOMEM, p.munlock, 0x7000_0000, PAGE)
    expect(k, errno.EINVAL, p.mlock, -PAGE, PAGE)
    # Partly mapped: apply_vma_lock_flags locks the mapped part, then finds the hole
    # (ENOMEM), and do_mlock returns before __mm_populate.
    with pytest.raises(KernelError) as e:
        p.mlock(shared, 64 * PAGE)
    assert e.value.errno == errno.ENOMEM
    assert all(v[2] & 0x2000 for v in p.vmas())                    # VM_LOCKED
    assert p.pte(private + PAGE) is None                            # not faulted in


def test_write_read_ftruncate_bad_arguments(setup):
    k, p, f, g, shared, private, locked = setup
    expect(k, errno.EBADF, p.write, "f", 0, b"x")
    expect(k, errno.EBADF, p.write, None, 0, b"x")
    expect(k, errno.EINVAL, p.write, f, -1, b"x")
    expect(k, errno.EFAULT, p.write, f, 0, "text")
    expect(k, errno.EFBIG, p.write, f, (1 << 40) - 1, b"xy")
    expect(k, errno.EBADF, p.read, 3, 0, 1)
    expect(k, errno.EINVAL, p.read, f, -1, 1)
    expect(k, errno.EINVAL, p.read, f, 0, -1)
    expect(k, errno.EBADF, p.ftruncate, object(), 0)
    expect(k, errno.EINVAL, p.ftruncate, f, -1)
    expect(k, errno.EINVAL, p.ftruncate, f, "0")
    expect(k, errno.EFBIG, p.ftruncate, f, (1 << 40) + 1)
    assert p.write(f, 0, b"") == 0
    assert p.read(f, 1 << 30, 10) == b""


def test_exited_process(setup):
    k, p, f, g, shared, private, locked = setup
    c = p.fork()
    c.exit()
    for fn, args in ((c.mmap, (PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS)), (c.munmap, (shared, PAGE)),
                     (c.mprotect, (shared, PAGE, PROT_READ)), (c.msync, (shared, PAGE, MS_SYNC)),
                     (c.write, (f, 0, b"x")), (c.read, (f, 0, 1)), (c.ftruncate, (f, 0)),
                     (c.fork, ()), (c.exit, ()), (c.store, (shared, b"x")),
                     (c.load, (shared, 1)), (c.pte, (shared,))):
        expect(k, errno.ESRCH, fn, *args)


def test_create_file_bad_arguments(setup):
    k, p, f, g, shared, private, locked = setup
    expect(k, errno.EEXIST, k.create_file, "f", PAGE)
    for name in ("", "a/b", "..", 7):
        expect(k, errno.EINVAL, k.create_file, name, PAGE)
    expect(k, errno.EINVAL, k.create_file, "n", -1)
    expect(k, errno.EFBIG, k.create_file, "n", (1 << 40) + 1)


def test_kernel_bad_choices():
    with pytest.raises(ValueError, match="writenotify"):
        Kernel(policy="nosuch")
    with pytest.raises(ValueError, match="svadu"):
        Kernel(ad="svadx")
    with pytest.raises(ValueError, match="golden"):
        Kernel(backend="fpga")


def test_errno_values_are_pythons():
    e = KernelError(errno.ENOMEM, "x")
    assert isinstance(e, OSError) and e.errno == errno.ENOMEM
    assert "ENOMEM" in str(e)


def test_good_calls_after_errors(setup):
    """Sanity: the same objects work right after all those refusals."""
    k, p, f, g, shared, private, locked = setup
    va = p.mmap(PAGE, RW | PROT_EXEC, MAP_SHARED | MAP_FIXED_NOREPLACE, file=f,
                offset=PAGE, addr=0x7000_0000)
    assert va == 0x7000_0000
    p.store(va, b"ok")
    assert p.read(f, PAGE, 2) == b"ok"

"""Fault handling checked against Linux 6.18 (mm/): read fault-around, PageAnonExclusive
after fork, and growing a file from an unaligned size.

Each test writes in what Linux does, and names the mm/ (or ext4) function that decides it.
The fault counts were measured on a Linux 6.18 x86_64 host, ext4 with 4 KiB blocks, with a
small C program counting ru_minflt around single accesses:

* fault-around: pwrite 1 byte into each page 0..15 of a 16-page file (cached), mmap it
  MAP_SHARED PROT_READ, madvise(MADV_RANDOM), load page 0: 1 fault; pages 1..15: 0 each.
  A 16-page file only ftruncate'd (nothing cached): every page faults once. A 20-page
  cached file: pages 0 and 16 fault, nothing else.
* growing from an unaligned size: a byte stored beyond EOF in the last page through a
  MAP_SHARED mapping reads back zero after ftruncate up, and after a pwrite starting
  beyond EOF (only up to the write's start); a store to the page after ftruncate up takes
  no fault.
"""

import errno
from signal import SIGBUS

import pytest

from mkclean.sim.kernel import (MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, MS_SYNC,
                                PROT_READ, PROT_WRITE, Kernel, KernelError, Signal)
from mkclean.sim.kernel.invariants import check_all
from mkclean.sim.kernel.pagecache import filemap_map_pages

PAGE = 4096
RW = PROT_READ | PROT_WRITE
#: A fixed place for mappings: 2 MiB-aligned, so PTE-table arithmetic is easy to follow.
BASE = 0x20_0000_0000
PMD = 2 << 20


def kernel(**kw):
    return Kernel(phys_size=8 << 20, **kw)


@pytest.fixture(params=["svadu", "svade"])
def k(request):
    kern = kernel(ad=request.param)
    yield kern
    check_all(kern)
    kern.close()


def faults(kern) -> int:
    return sum(kern.counters["faults"].values())


def cached_file(kern, name, pages, size=None):
    """A file whose pages are all in the page cache (written by pwrite, as on the host)."""
    f = kern.create_file(name, 0)
    p = kern.spawn()
    for i in range(pages):
        p.write(f, i * PAGE, b"%d" % i)
    if size is not None:
        p.ftruncate(f, size)
    p.exit()
    return f


def mapped(p, va) -> bool:
    pte = p.pte(va)
    return pte is not None and pte.v


# -- 7. read fault-around (do_read_fault -> do_fault_around -> filemap_map_pages) -------------------

def test_read_fault_maps_the_cached_window_around_it(k):
    # do_read_fault: should_fault_around (->map_pages, fault_around_pages 16 > 1), so
    # do_fault_around maps the cached pages 0..15 first; the faulting page was one of them,
    # so ->fault is never called. Host: 1 fault, then 0 for each of pages 1..15.
    f = cached_file(k, "f", 16)
    p = k.spawn()
    va = p.mmap(16 * PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, file=f, addr=BASE)
    assert p.load(va, 1) == b"0"
    assert faults(k) == 1 and k.counters["faults"] == {"read": 1}
    assert k.counters["fault_around_ptes"] == 15
    for i in range(1, 16):
        assert p.load(va + i * PAGE, 2).rstrip(b"\0") == b"%d" % i
    assert faults(k) == 1
    for i in range(16):
        # filemap_map_pages -> set_pte_range: vm_page_prot (no W), young, not dirty; the
        # file rmap as a normal read fault's page (folio_add_file_rmap_ptes).
        pte = p.pte(va + i * PAGE)
        assert pte.v and pte.r and not pte.w and pte.a and not pte.d
        assert f.pages[i].mapcount == 1


def test_pages_not_cached_fault_one_by_one(k):
    # filemap_map_pages maps only what is cached: a file only ftruncate'd has nothing, so
    # each page takes its own fault (->fault reads it). Host: 16 faults for 16 pages.
    f = k.create_file("f", 16 * PAGE)
    p = k.spawn()
    va = p.mmap(16 * PAGE, PROT_READ, MAP_SHARED, file=f)
    for i in range(16):
        p.load(va + i * PAGE, 1)
        assert faults(k) == i + 1
    assert k.counters["fault_around_ptes"] == 0


def test_the_window_is_aligned_down_to_fault_around_bytes(k):
    # do_fault_around: from_pte = ALIGN_DOWN(pte_off, 16): a fault on page 20 maps 16..31.
    # Host, 20-page file: pages 0 and 16 fault, no others.
    f = cached_file(k, "f", 64)
    p = k.spawn()
    va = p.mmap(64 * PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, file=f, addr=BASE)
    p.load(va + 20 * PAGE, 1)
    assert [i for i in range(64) if mapped(p, va + i * PAGE)] == list(range(16, 32))
    assert faults(k) == 1 and k.counters["fault_around_ptes"] == 15


@pytest.mark.parametrize("nbytes, pages", [(4096, 1), (0, 1), (100, 1), (8192, 2),
                                           (3 * 4096, 2), (65536, 16), (65537, 16),
                                           (2 << 20, 512)])
def test_fault_around_bytes_is_taken_as_linux_takes_it(nbytes, pages):
    # fault_around_bytes_set: val = max(val, PAGE_SIZE), rounded down to a power of two;
    # PAGE_SIZE is no fault-around at all (should_fault_around: fault_around_pages > 1).
    with kernel(fault_around_bytes=nbytes) as kern:
        assert kern.fault_around_pages == pages
        assert kern.fault_around_bytes == pages * PAGE


@pytest.mark.parametrize("bad", [(2 << 20) + PAGE, -1, True, 1.5, "65536"])
def test_fault_around_bytes_beyond_a_pte_table_is_refused(bad):
    # fault_around_bytes_set: val / PAGE_SIZE > PTRS_PER_PTE is -EINVAL.
    with pytest.raises(ValueError):
        kernel(fault_around_bytes=bad)


def test_fault_around_off_is_one_fault_per_page():
    with kernel(fault_around_bytes=4096) as kern:
        f = cached_file(kern, "f", 16)
        p = kern.spawn()
        va = p.mmap(16 * PAGE, PROT_READ, MAP_SHARED, file=f)
        for i in range(16):
            p.load(va + i * PAGE, 1)
        assert faults(kern) == 16 and kern.counters["fault_around_ptes"] == 0
        check_all(kern)


def test_fault_around_bytes_sets_the_window():
    with kernel(fault_around_bytes=4 * PAGE) as kern:
        f = cached_file(kern, "f", 16)
        p = kern.spawn()
        va = p.mmap(16 * PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, file=f, addr=BASE)
        p.load(va + 6 * PAGE, 1)
        assert [i for i in range(16) if mapped(p, va + i * PAGE)] == [4, 5, 6, 7]
        check_all(kern)


def test_the_window_is_clamped_to_the_vma(k):
    # do_fault_around: from_pte no lower than the VMA's first page, to_pte no higher than
    # its last. Two VMAs map the file side by side: a fault in the second maps none of
    # the first's pages, though they are cached and in the same aligned window.
    f = cached_file(k, "f", 16)
    p = k.spawn()
    a = p.mmap(3 * PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, file=f, offset=0, addr=BASE)
    b = p.mmap(5 * PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, file=f, offset=3 * PAGE,
               addr=BASE + 3 * PAGE)
    assert b == BASE + 3 * PAGE
    p.load(b + PAGE, 1)
    assert [i for i in range(16) if mapped(p, BASE + i * PAGE)] == [3, 4, 5, 6, 7]
    assert not any(mapped(p, a + i * PAGE) for i in range(3))
    assert k.counters["fault_around_ptes"] == 4
    assert all(f.pages[i].mapcount == (1 if 3 <= i < 8 else 0) for i in range(16))


def test_the_window_is_clamped_to_the_pte_table(k):
    # do_fault_around: to_pte is at most PTRS_PER_PTE - 1: the window stays within the
    # PTE table (one PMD entry, 2 MiB) of the fault. A VMA across a 2 MiB boundary, 8
    # pages before it and 24 after: a fault on the last page before it maps only those 8
    # (the window 496..511 clamped to the VMA's start, 504); one on the first page after
    # it maps pages 0..15 of the next table only.
    f = cached_file(k, "f", 32)
    p = k.spawn()
    va = p.mmap(32 * PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, file=f, addr=BASE + PMD - 8 * PAGE)
    p.load(va + 7 * PAGE, 1)
    assert [i for i in range(32) if mapped(p, va + i * PAGE)] == list(range(8))
    p.load(va + 8 * PAGE, 1)
    assert [i for i in range(32) if mapped(p, va + i * PAGE)] == list(range(24))
    assert faults(k) == 2 and k.counters["fault_around_ptes"] == 7 + 15


def test_the_window_stops_at_eof(k):
    # filemap_map_pages / next_uptodate_folio: no page at or beyond
    # DIV_ROUND_UP(i_size, PAGE_SIZE). The partial last page is mapped (host: a 5.5-page
    # file, all cached, faults once for all six pages).
    f = cached_file(k, "f", 6, size=5 * PAGE + 100)
    p = k.spawn()
    va = p.mmap(8 * PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, file=f, addr=BASE)
    p.load(va, 1)
    assert [i for i in range(8) if mapped(p, va + i * PAGE)] == list(range(6))
    assert faults(k) == 1


def test_cached_pages_beyond_eof_are_not_mapped(k):
    # Pages still cached beyond EOF (truncate_setsize has written the new i_size and not
    # yet run truncate_pagecache): filemap_map_pages reads i_size and stops there.
    f = cached_file(k, "f", 8)
    p = k.spawn()
    va = p.mmap(8 * PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, file=f, addr=BASE)
    f.i_size = 5 * PAGE + 1                # the moment inside truncate_setsize
    try:
        p.load(va, 1)
        assert [i for i in range(8) if mapped(p, va + i * PAGE)] == list(range(6))
    finally:
        f.i_size = 8 * PAGE


def test_locked_or_not_uptodate_pages_are_skipped(k):
    # next_uptodate_folio: a folio it cannot trylock, or not uptodate, is left to its own
    # fault.
    f = cached_file(k, "f", 4)
    p = k.spawn()
    va = p.mmap(4 * PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, file=f, addr=BASE)
    f.pages[1].locked = True
    f.pages[2].uptodate = False
    try:
        p.load(va, 1)
        assert [i for i in range(4) if mapped(p, va + i * PAGE)] == [0, 3]
    finally:
        f.pages[1].locked = False
        f.pages[2].uptodate = True


def test_present_ptes_are_left_alone(k):
    # filemap_map_order0_folio: a PTE that is not none is skipped. A private writable
    # mapping: page 3 is COWed (an anonymous page, writable); a shared one: page 5 was
    # stored to (writable, dirty). A read fault on page 0 maps the rest around them.
    f = cached_file(k, "f", 16)
    p = k.spawn()
    priv = p.mmap(16 * PAGE, RW, MAP_PRIVATE | MAP_FIXED, file=f, addr=BASE)
    p.store(priv + 3 * PAGE, b"private")
    p.load(priv, 1)
    pte = p.pte(priv + 3 * PAGE)
    assert pte.w and p.load(priv + 3 * PAGE, 7) == b"private"
    assert f.pages[3].mapcount == 0
    shared = p.mmap(16 * PAGE, RW, MAP_SHARED | MAP_FIXED, file=f, addr=BASE + PMD)
    p.store(shared + 5 * PAGE, b"shared")
    before = faults(k)
    p.load(shared, 1)
    assert faults(k) == before + 1
    pte = p.pte(shared + 5 * PAGE)
    assert pte.w and pte.d
    # Page 5: the private VMA's read-only PTE (faulted around) and the shared store's.
    # Page 3: only the shared VMA's, faulted around (the private one maps the copy).
    assert f.pages[5].mapcount == 2 and f.pages[3].mapcount == 1


def test_map_pages_does_nothing_when_the_fault_page_is_not_cached(k):
    # ->map_pages returns 0 when it did not map the faulting page: __do_fault runs.
    f = k.create_file("f", 4 * PAGE)
    p = k.spawn()
    p.write(f, 2 * PAGE, b"two")
    va = p.mmap(4 * PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, file=f, addr=BASE)
    p.load(va, 1)                          # page 0 read by ->fault; page 2 mapped around
    assert mapped(p, va + 2 * PAGE) and not mapped(p, va + PAGE)
    assert faults(k) == 1 and k.counters["pagecache_reads"] >= 1
    assert filemap_map_pages is f.vm_ops.map_pages


def test_a_store_to_a_page_faulted_around_takes_its_write_notify_fault(k):
    # The page was mapped read-only and clean (set_pte_range for a read fault, vm_page_prot
    # without W in a writenotify VMA): the store faults (do_wp_page -> wp_page_shared ->
    # page_mkwrite) and dirties the page; nothing written is lost.
    f = cached_file(k, "f", 16)
    k.sync()
    assert not any(pg.dirty for pg in f.pages.values())
    p = k.spawn()
    va = p.mmap(16 * PAGE, RW, MAP_SHARED | MAP_FIXED, file=f, addr=BASE)
    p.load(va, 1)
    assert k.counters["faults"] == {"read": 1}
    pte = p.pte(va + 7 * PAGE)
    assert pte.v and not pte.w and not pte.d
    p.store(va + 7 * PAGE + 100, b"through the mapping")
    assert k.counters["faults"] == {"read": 1, "wp_shared": 1}
    assert f.pages[7].dirty
    pte = p.pte(va + 7 * PAGE)
    assert pte.w and pte.d
    k.sync()
    assert f.on_disk(7 * PAGE + 100, 19) == b"through the mapping"
    assert f.on_disk(7 * PAGE, 1) == b"7"


def test_shared_anonymous_memory_faults_around_too(k):
    # shmem_anon_vm_ops has .map_pages = filemap_map_pages: a child that reads the shared
    # anonymous memory its parent filled (fork copies no PTEs of a shared VMA) faults once
    # for the window.
    p = k.spawn()
    va = p.mmap(16 * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, addr=BASE)
    for i in range(16):
        p.store(va + i * PAGE, b"%d" % i)
    c = p.fork()
    before = faults(k)
    for i in range(16):
        assert c.load(va + i * PAGE, 2).rstrip(b"\0") == b"%d" % i
    assert faults(k) == before + 1
    c.exit()


# -- 6. PageAnonExclusive: mprotect and the write fault after fork ---------------------------------

def test_mprotect_gives_w_back_only_to_an_exclusive_anonymous_page(k):
    # can_change_pte_writable, private VMA: PageAnon && PageAnonExclusive. The page was born
    # by a write fault in this mm (folio_add_new_anon_rmap, RMAP_EXCLUSIVE): exclusive, so
    # mprotect(RW) makes it writable again and the next store takes no fault.
    p = k.spawn()
    va = p.mmap(PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    p.store(va, b"x")
    page = k.mem.pfn_to_page(p.pte(va).ppn)
    assert page.anon_exclusive
    p.mprotect(va, PAGE, PROT_READ)
    p.mprotect(va, PAGE, RW)
    assert p.pte(va).w
    before = faults(k)
    p.store(va, b"y")
    assert faults(k) == before


def test_fork_then_exit_leaves_the_page_not_exclusive(k):
    # Parent writes a private anonymous page, forks, the child exits; the parent
    # mprotects it READ then READ|WRITE. fork cleared PageAnonExclusive
    # (copy_present_pte -> __folio_try_dup_anon_rmap), and the child's exit does not set
    # it again, so can_change_pte_writable says no: the parent's next store takes a write
    # fault (Linux: 1 minor fault), where do_wp_page finds the page not exclusive but
    # wp_can_reuse_anon_folio's refcount says only us: reuse it, mark it exclusive.
    p = k.spawn()
    va = p.mmap(PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    p.store(va, b"parent")
    page = k.mem.pfn_to_page(p.pte(va).ppn)
    c = p.fork()
    assert not page.anon_exclusive and page.mapcount == 2
    c.exit()
    assert page.mapcount == 1 and not page.anon_exclusive
    p.mprotect(va, PAGE, PROT_READ)
    p.mprotect(va, PAGE, RW)
    assert not p.pte(va).w
    before = dict(k.counters["faults"])
    p.store(va, b"again!")
    assert faults(k) == sum(before.values()) + 1
    assert k.counters["faults"].get("wp_reuse", 0) == before.get("wp_reuse", 0) + 1
    assert k.mem.pfn_to_page(p.pte(va).ppn) is page       # reused in place, not copied
    assert page.anon_exclusive and p.pte(va).w
    # Exclusive again: another mprotect round trip gives W back at once.
    p.mprotect(va, PAGE, PROT_READ)
    p.mprotect(va, PAGE, RW)
    assert p.pte(va).w
    assert p.load(va, 6) == b"again!"


def test_a_page_still_shared_is_copied_on_write(k):
    # The child is alive: the page is mapped twice, not exclusive, and its refcount is not
    # ours alone: do_wp_page copies (wp_page_copy); the copy is born exclusive.
    p = k.spawn()
    va = p.mmap(PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    p.store(va, b"parent")
    c = p.fork()
    p.mprotect(va, PAGE, PROT_READ)
    p.mprotect(va, PAGE, RW)
    assert not p.pte(va).w
    p.store(va, b"P")
    assert k.counters["faults"].get("wp_copy") == 1
    new = k.mem.pfn_to_page(p.pte(va).ppn)
    assert new.anon_exclusive
    assert c.load(va, 6) == b"parent"
    c.exit()


def test_the_child_copy_leaves_the_parent_page_reusable(k):
    # The child writes first (wp_page_copy: its own exclusive copy); the parent's page is
    # mapped once but still not marked exclusive, so mprotect keeps it read-only and the
    # parent's store reuses it (wp_can_reuse_anon_folio) with one fault.
    p = k.spawn()
    va = p.mmap(PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    p.store(va, b"parent")
    page = k.mem.pfn_to_page(p.pte(va).ppn)
    c = p.fork()
    c.store(va, b"child")
    assert k.mem.pfn_to_page(c.pte(va).ppn).anon_exclusive
    assert page.mapcount == 1 and not page.anon_exclusive
    p.mprotect(va, PAGE, PROT_READ)
    p.mprotect(va, PAGE, RW)
    assert not p.pte(va).w
    p.store(va, b"P")
    assert k.counters["faults"].get("wp_reuse") == 1 and page.anon_exclusive
    c.exit()


def test_a_freed_page_is_not_exclusive():
    with kernel() as kern:
        p = kern.spawn()
        va = p.mmap(PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS)
        p.store(va, b"x")
        page = kern.mem.pfn_to_page(p.pte(va).ppn)
        p.munmap(va, PAGE)
        assert page.kind == "free" and not page.anon_exclusive


# -- 5. growing a file from an unaligned size --------------------------------------------------------

def _dirty_eof_page(kern, block_size, size=100):
    f = kern.create_file("g", 0, block_size=block_size)
    p = kern.spawn()
    p.write(f, 0, b"a" * size)
    va = p.mmap(4 * PAGE, RW, MAP_SHARED | MAP_FIXED, file=f, addr=BASE)
    p.store(va, b"b")                      # write fault: writable, dirty
    return f, p, va


def test_block_size_of_a_page_does_not_write_protect_the_old_eof_page(k):
    # pagecache_isize_extended: `if (from >= to || bsize >= PAGE_SIZE) return;` ext4 with
    # 4 KiB blocks: the page straddling the old EOF keeps its writable PTE. Host: the
    # store after ftruncate up takes 0 faults.
    f, p, va = _dirty_eof_page(k, 4096)
    assert f.block_size == 4096 and f.i_blkbits == 12
    p.ftruncate(f, 3 * PAGE)
    assert p.pte(va).w
    before = faults(k)
    p.store(va + 1, b"c")
    assert faults(k) == before


@pytest.mark.parametrize("block_size", [512, 1024, 2048])
def test_small_blocks_write_protect_the_old_eof_page(k, block_size):
    # pagecache_isize_extended, blocks smaller than a page: rounded_from = round_up(100,
    # bsize) is inside the page and the file grows past it, so the page gets a hole block
    # behind it: folio_mkclean write-protects it (and folio_mark_dirty keeps it dirty) so
    # that page_mkwrite runs on the next store.
    f, p, va = _dirty_eof_page(k, block_size)
    p.ftruncate(f, 3 * PAGE)
    assert not p.pte(va).w and not p.pte(va).d and f.pages[0].dirty
    before = faults(k)
    p.store(va + 1, b"c")
    assert faults(k) == before + 1
    k.sync()
    assert f.on_disk(0, 3) == b"bca"


@pytest.mark.parametrize("block_size, old, new, protect", [
    (1024, 100, 1024, False),      # to <= rounded_from: the old EOF block holds the new EOF
    (1024, 100, 1025, True),
    (2048, 3000, 8192, False),     # rounded_from 4096 is page-aligned: no hole in the page
    (512, 4000, 4096, False),      # rounded_from 4096 is page-aligned
    (512, 100, 600, True),
    (1024, 5000, 9000, True),      # page 1 straddles 5000; rounded_from 5120
    (4096, 5000, 9000, False),     # bsize >= PAGE_SIZE
])
def test_isize_extended_follows_rounded_from(k, block_size, old, new, protect):
    f, p, va = _dirty_eof_page(k, block_size, size=old)
    eof_va = va + (old // PAGE) * PAGE
    p.store(eof_va, b"s")
    p.ftruncate(f, new)
    assert p.pte(eof_va).w == (not protect)


@pytest.mark.parametrize("bad", [0, 256, 1000, 3 * 1024, 131072, True, "4096", None])
def test_create_file_refuses_a_bad_block_size(k, bad):
    with pytest.raises(KernelError) as e:
        k.create_file("bad", 0, block_size=bad)
    assert e.value.errno == errno.EINVAL and "block size" in str(e.value)


def _post_eof_stores(kern, block_size=4096):
    """Size 100; bytes stored beyond EOF through the shared mapping at 200, 1000, 4000."""
    f, p, va = _dirty_eof_page(kern, block_size)
    for off, b in ((200, b"Z"), (1000, b"X"), (4000, b"Y")):
        p.store(va + off, b)
    return f, p, va


def test_ftruncate_up_zeroes_the_old_eof_block(k):
    # ext4_setattr zeroes the old EOF block from the old size to its end
    # (ext4_block_zero_eof(inode, oldsize, LLONG_MAX)) before the size grows; with 4 KiB
    # blocks pagecache_isize_extended does nothing. Host: all three bytes read zero, even
    # growing only to 250 (within the same page), and on disk.
    f, p, va = _post_eof_stores(k)
    p.ftruncate(f, 250)
    assert p.load(va + 200, 1) == b"\0" and p.load(va + 1000, 1) == b"\0"
    assert p.load(va + 4000, 1) == b"\0"
    p.ftruncate(f, 3 * PAGE)
    k.sync()
    assert f.on_disk(0, PAGE) == b"b" + b"a" * 99 + bytes(PAGE - 100)


def test_pwrite_beyond_eof_zeroes_up_to_the_write(k):
    # ext4_write_checks: a write starting beyond EOF zeroes the EOF block from the old EOF
    # to the write's start (ext4_block_zero_eof(inode, old_size, pos)). Host, pwrite of 1
    # byte at 250: byte 200 reads zero, 1000 and 4000 (beyond the new EOF) keep what the
    # stores left.
    f, p, va = _post_eof_stores(k)
    p.write(f, 250, b"q")
    assert p.load(va + 200, 1) == b"\0"
    assert p.load(va + 1000, 1) == b"X" and p.load(va + 4000, 1) == b"Y"
    assert f.size == 251
    k.sync()
    assert f.on_disk(0, PAGE) == b"b" + b"a" * 99 + bytes(150) + b"q"


def test_pwrite_far_beyond_eof_zeroes_the_rest_of_the_block(k):
    # Host, pwrite at 2 pages + 10: the old EOF block is zeroed to its end.
    f, p, va = _post_eof_stores(k)
    p.write(f, 2 * PAGE + 10, b"q")
    assert p.load(va + 200, 1) == b"\0" and p.load(va + 4000, 1) == b"\0"
    k.sync()
    assert f.on_disk(0, PAGE) == b"b" + b"a" * 99 + bytes(PAGE - 100)


def test_a_write_over_eof_zeroes_nothing(k):
    # ext4_write_checks zeroes only when the write starts beyond EOF: a write from 95 to
    # 105 covers the old EOF; byte 200 (beyond the new EOF) keeps what the store left.
    # Host: the mapping still reads 'Z' at 200.
    f, p, va = _post_eof_stores(k)
    p.write(f, 95, b"q" * 10)
    assert p.load(va + 200, 1) == b"Z"
    k.sync()
    assert f.on_disk(0, 200) == b"b" + b"a" * 94 + b"q" * 10


def test_small_blocks_zero_the_dirty_eof_page_to_the_new_size(k):
    # Blocks of 1 KiB: ext4 zeroes only the old EOF block ([100, 1024)); then
    # pagecache_isize_extended (rounded_from 1024, not page-aligned) write-protects the
    # page and, as it is dirty, zeroes [from, min(to, page end)): [100, 3000) for a write
    # at 3000. Byte 3500 (beyond the new EOF) keeps what the store left.
    f, p, va = _dirty_eof_page(k, 1024)
    p.store(va + 2000, b"Z")
    p.store(va + 3500, b"Y")
    p.write(f, 3000, b"q")
    assert p.load(va + 2000, 1) == b"\0" and p.load(va + 3500, 1) == b"Y"
    assert not p.pte(va).w


def test_writeback_zeroes_the_eof_page_beyond_eof(k):
    # ext4_bio_write_folio (and __block_write_full_folio, iomap alike): the folio
    # straddling i_size is zeroed beyond it on every writeback, because it may be mmapped.
    # Host (realcheck, file of 100 bytes): store 7 at 200 through MAP_SHARED, msync(MS_SYNC),
    # the load at 200 reads 0; a later store there reads back until the next writeback.
    f, p, va = _dirty_eof_page(k, 4096)
    p.store(va + 200, b"\7")
    p.msync(va, PAGE, MS_SYNC)
    assert p.load(va + 200, 1) == b"\0" and p.load(va, 1) == b"b"
    p.store(va + 201, b"\10")
    assert p.load(va + 201, 1) == b"\10"
    k.sync()
    assert p.load(va + 201, 1) == b"\0" and f.on_disk(0, PAGE) == b"b" + b"a" * 99


# -- fault-around and the PTE table: filemap_map_pmd, and filemap_fault's retry -------------
#
# Measured with realcheck on Linux 6.18.44 (each a program on the host and the model):
# with no PTE table yet, a fault whose window's first cached page is the file's last one
# maps nothing (filemap_map_pages calls filemap_map_pmd, which installs the table
# do_fault_around preallocated, only when file_end >= folio_next_index); with a table
# there, or a cached page before the last, the window is mapped; a cold page is read with
# the mmap lock dropped and the fault retried (VM_FAULT_RETRY), whose fault-around maps
# the page and its cached neighbours; a fault that fails (SIGBUS) leaves no table.

def traps(kern) -> int:
    return sum(kern.counters["traps"].values())


def _eof_page_cached(kern, pages_before=()):
    """A file of 4197 bytes (pages 0 and 1) with page 1 cached, and pages_before too."""
    f = kern.create_file("e", 0)
    p = kern.spawn()
    for i in pages_before:
        p.write(f, i * PAGE + 100, b"b")
    p.write(f, PAGE + 100, b"e")
    va = p.mmap(8 * PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, file=f, addr=BASE)
    return f, p, va


def _sigbus(p, va):
    with pytest.raises(Signal) as e:
        p.load(va, 1)
    assert e.value.signo == SIGBUS


def test_a_fault_with_no_table_maps_nothing_when_the_eof_page_comes_first(k):
    # Host: load page 2 (beyond EOF): SIGBUS, 0 faults; then page 1: 1 fault.
    f, p, va = _eof_page_cached(k)
    _sigbus(p, va + 2 * PAGE)
    assert p.pte(va + PAGE) is None
    assert p.mm.pte_tables.get(va >> 21) is None          # the failed fault left no table
    before = traps(k)
    assert p.load(va + PAGE + 100, 1) == b"e" and traps(k) == before + 1


def test_a_cached_page_before_the_eof_page_lets_fault_around_map_both(k):
    # Host (page 0 cached too): SIGBUS at page 3, then pages 0 and 1 with 0 faults.
    f, p, va = _eof_page_cached(k, pages_before=(0,))
    _sigbus(p, va + 3 * PAGE)
    before = traps(k)
    assert p.load(va + 100, 1) == b"b" and p.load(va + PAGE + 100, 1) == b"e"
    assert traps(k) == before


def test_with_a_table_already_there_the_eof_page_is_mapped(k):
    # Host: an anonymous page stored at BASE + 16 pages first (the same PTE table), then
    # SIGBUS at page 2 maps page 1: its load takes 0 faults.
    f = k.create_file("e", 0)
    p = k.spawn()
    p.write(f, PAGE + 100, b"e")
    p.mmap(PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, addr=BASE + 16 * PAGE)
    p.store(BASE + 16 * PAGE, b"a")
    va = p.mmap(8 * PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, file=f, addr=BASE)
    _sigbus(p, va + 2 * PAGE)
    before = traps(k)
    assert p.load(va + PAGE + 100, 1) == b"e" and traps(k) == before


def test_a_cold_fault_is_retried_and_its_fault_around_maps_the_neighbours(k):
    # Host: page 1 cached, page 0 cold: the load of page 0 takes 1 fault (read, retry),
    # the retried fault-around maps page 0 and page 1, whose load then takes 0.
    f, p, va = _eof_page_cached(k)
    before = traps(k)
    assert p.load(va, 1) == b"\0" and traps(k) == before + 1
    assert p.load(va + PAGE + 100, 1) == b"e" and traps(k) == before + 1


def test_a_store_that_gets_sigbus_leaves_no_table_either(k):
    # realcheck seed 106, shrunk: a store beyond EOF (SIGBUS), a pwrite into page 1, a
    # load beyond EOF (SIGBUS): the table is still not there, so page 1 is not mapped and
    # its load takes 1 fault on the host.
    f = k.create_file("s", 1099)
    p = k.spawn()
    va = p.mmap(8 * PAGE, RW, MAP_SHARED | MAP_FIXED, file=f, addr=BASE)
    with pytest.raises(Signal):
        p.store(va + 7 * PAGE, b"x")
    p.write(f, 7979, b"\xd4" * 196)
    _sigbus(p, va + 2 * PAGE)
    before = traps(k)
    assert p.load(va + PAGE + 0xb3, 1) == b"\0" and traps(k) == before + 1

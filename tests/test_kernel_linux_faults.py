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

import pytest

from mkclean.sim.kernel import (MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PROT_READ,
                                PROT_WRITE, Kernel, KernelError)
from mkclean.sim.kernel.invariants import check_all

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

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

import pytest

from mkclean.sim.kernel import MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE, Kernel
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

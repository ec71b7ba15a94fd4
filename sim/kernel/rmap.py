"""The reverse map: from a page to every (mm, address) mapping it (mm/rmap.c).

A file page is found through its file's i_mmap (every VMA mapping the file) and
vma_address; an anonymous page through its anon_vma. The cost of a walk grows with the
VMAs that map the page's file, not with the size of any address space.

``folio_mkclean`` is the patch's page_mkclean: write-protect and clean every PTE that maps
the page writable or dirty, flushing each from the TLB, so that the next store faults.
"""

from mkclean.sim.hw.seam import KernelEvent

from .constants import VM_SHARED
from .errors import KernelBug
from .locking import pte_lock, pte_unlock
from .mm import linear_page_index, vma_address
from .pgtable import (pte_dirty, pte_mkclean, pte_pfn, pte_present, pte_write, pte_wrprotect,
                      pte_offset_map, ptep_get_and_clear, ptep_test_and_clear_young, set_pte_at)
from .tlbflush import flush_tlb_page


# -- mapcount --------------------------------------------------------------------------------------

def page_add_file_rmap(page, vma) -> None:
    page.mapcount += 1


def page_add_new_anon_rmap(page, vma, addr: int) -> None:
    """A new anonymous page, mapped once at ``addr`` of ``vma``."""
    if vma.anon_vma is None:
        raise KernelBug(f"anon page in {vma!r} without an anon_vma")
    page.kind = "anon"
    page.anon_vma = vma.anon_vma
    page.index = linear_page_index(vma, addr)
    page.mapcount = 1
    page.anon_exclusive = True                   # RMAP_EXCLUSIVE: born in this mm


def folio_move_anon_rmap(page, vma) -> None:
    """A write fault reuses the page: it now belongs to ``vma``'s anon_vma."""
    page.anon_vma = vma.anon_vma


def folio_try_dup_anon_rmap(page) -> None:
    """fork: the child maps the parent's anonymous page too, so it is no longer exclusive
    to either (__folio_try_dup_anon_rmap clears PageAnonExclusive; the model has no
    pinned pages, so it never fails and copies)."""
    page.anon_exclusive = False
    page.mapcount += 1


def page_dup_rmap(page) -> None:
    """fork: one more PTE maps the page."""
    page.mapcount += 1


def page_remove_rmap(kernel, page) -> None:
    page.mapcount -= 1
    if page.mapcount < 0:
        raise KernelBug(f"mapcount of {page!r} went negative")


# -- walking --------------------------------------------------------------------------------------

def rmap_vmas(page):
    """The VMAs that may map ``page``: its anon_vma's, or its file's i_mmap."""
    if page.PageAnon():
        return list(page.anon_vma.vmas) if page.anon_vma is not None else []
    if page.mapping is None:
        return []
    return list(page.mapping.i_mmap)


def rmap_walk(kernel, page, rmap_one, invalid_vma=None) -> None:
    """Call ``rmap_one(page, vma, addr)`` for each VMA that may map the page; stop on False."""
    for vma in rmap_vmas(page):
        if invalid_vma is not None and invalid_vma(vma):
            continue
        addr = vma_address(page, vma)
        if addr is None:
            continue
        if rmap_one(page, vma, addr) is False:
            return


def page_vma_mapped_walk(kernel, page, vma, addr: int):
    """(ptep, ptl) with the PTE lock held if ``vma`` maps ``page`` at ``addr``, else None."""
    kernel.counters["rmap_ptes"] += 1
    ptep = pte_offset_map(vma.vm_mm, addr)
    if ptep is None:
        return None
    pte = kernel.hw.read_pte(ptep)
    if not pte_present(pte) or pte_pfn(pte) != page.pfn:
        return None
    ptl = pte_lock(kernel, ptep)
    pte = kernel.hw.read_pte(ptep)              # again, under the lock
    if not pte_present(pte) or pte_pfn(pte) != page.pfn:
        pte_unlock(kernel, ptl)
        return None
    return ptep, ptl


def ptep_clear_flush(kernel, vma, addr: int, ptep: int) -> int:
    """Clear the PTE and flush its translation; returns the old PTE (with any hardware A/D)."""
    old = ptep_get_and_clear(kernel.hw, ptep)
    if pte_present(old):
        flush_tlb_page(kernel, vma.vm_mm, addr)
    return old


# -- page_mkclean -----------------------------------------------------------------------------------

def page_vma_mkclean_one(kernel, page, vma, addr: int) -> int:
    """Write-protect and clean the PTE mapping ``page`` in ``vma``; 1 if it was writable or dirty."""
    kernel.counters["mkclean_ptes"] += 1
    found = page_vma_mapped_walk(kernel, page, vma, addr)
    if found is None:
        return 0
    ptep, ptl = found
    hw = kernel.hw
    cleaned = 0
    entry = hw.read_pte(ptep)
    if pte_dirty(entry) or pte_write(entry):
        if kernel.plant == "missing-flush":
            entry = ptep_get_and_clear(hw, ptep)
        else:
            entry = ptep_clear_flush(kernel, vma, addr, ptep)
        entry = pte_wrprotect(entry)
        entry = pte_mkclean(entry)
        set_pte_at(hw, ptep, entry)
        cleaned = 1
    pte_unlock(kernel, ptl)
    return cleaned


def invalid_mkclean_vma(vma) -> bool:
    return not vma.vm_flags & VM_SHARED


def folio_mkclean(kernel, page) -> bool:
    """page_mkclean: clean every shared mapping of the (locked) page; True if any was dirty/writable."""
    if not page.locked:
        raise KernelBug(f"folio_mkclean on an unlocked page {page!r}")
    return _mkclean_walk(kernel, page, page_vma_mkclean_one)


def _mkclean_walk(kernel, page, mkclean_one) -> bool:
    """Apply ``mkclean_one`` to every shared mapping of the page through the reverse map;
    True if any of them was dirty (or writable)."""
    kernel.event(KernelEvent.PAGE_MKCLEAN, page.paddr)
    if not page.mapcount or page.mapping is None:
        return False
    cleaned = 0

    def one(page, vma, addr):
        nonlocal cleaned
        cleaned += mkclean_one(kernel, page, vma, addr)

    rmap_walk(kernel, page, one, invalid_mkclean_vma)
    kernel.counters["mkclean_calls"] += 1
    kernel.counters["mkclean_cleaned"] += cleaned
    return cleaned > 0


page_mkclean = folio_mkclean


def page_vma_mkclean_dirty_one(kernel, page, vma, addr: int) -> int:
    """hwdirty: harvest the hardware D bit of one PTE (clear D with a flush, keep W)."""
    kernel.counters["mkclean_ptes"] += 1
    found = page_vma_mapped_walk(kernel, page, vma, addr)
    if found is None:
        return 0
    ptep, ptl = found
    hw = kernel.hw
    dirty = 0
    entry = hw.read_pte(ptep)
    if pte_dirty(entry):
        entry = ptep_clear_flush(kernel, vma, addr, ptep)
        set_pte_at(hw, ptep, pte_mkclean(entry))
        dirty = 1
    pte_unlock(kernel, ptl)
    return dirty


def folio_mkclean_dirty(kernel, page) -> bool:
    """hwdirty's page_mkclean: collect and clear the D bits of every mapping; W stays."""
    return _mkclean_walk(kernel, page, page_vma_mkclean_dirty_one)


def folio_test_pte_dirty(kernel, page) -> bool:
    """Does any PTE map the page dirty? (a look, no change: for statistics and checks)"""
    hw = kernel.hw
    for vma in rmap_vmas(page):
        addr = vma_address(page, vma)
        if addr is None:
            continue
        ptep = pte_offset_map(vma.vm_mm, addr)
        if ptep is None:
            continue
        pte = hw.read_pte(ptep)
        if pte_present(pte) and pte_pfn(pte) == page.pfn and pte_dirty(pte):
            return True
    return False


def folio_referenced(kernel, page) -> int:
    """Clear the A bit of every PTE mapping the page; how many had it (page aging).

    riscv's ptep_clear_flush_young does not flush: a stale A=1 in the TLB is harmless.
    """
    referenced = 0

    def one(page, vma, addr):
        nonlocal referenced
        found = page_vma_mapped_walk(kernel, page, vma, addr)
        if found is None:
            return
        ptep, ptl = found
        if ptep_test_and_clear_young(kernel.hw, ptep):
            referenced += 1
        pte_unlock(kernel, ptl)

    rmap_walk(kernel, page, one)
    return referenced

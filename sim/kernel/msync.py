"""msync (mm/msync.c), and the pre-patch msync that found dirtiness in PTE D bits."""

from .constants import MS_SYNC, PAGE_SHIFT, VM_SHARED
from .locking import pte_lock, pte_unlock
from .memory import vm_normal_page
from .pgtable import for_each_pte, pmd_addr_end, pte_dirty, pte_mkclean, pte_offset_map, pte_present
from .tlbflush import flush_tlb_page
from .writeback import set_page_dirty, vfs_fsync_range


def msync_vma(kernel, vma, start: int, end: int, flags: int) -> None:
    """msync's work on ``[start, end)`` of one VMA, once sys_msync's walk reached it.

    MS_ASYNC does nothing more than the policy's msync hook (nothing, with the patch: the
    pages are tracked); MS_SYNC on a shared file mapping writes the file range this part
    maps and waits (vfs_fsync_range); MS_INVALIDATE has nothing to invalidate, the page
    cache being coherent.
    """
    kernel.policy.msync_vma(kernel, vma, start, end, flags)
    if flags & MS_SYNC and vma.vm_file is not None and vma.vm_flags & VM_SHARED:
        fstart = ((start - vma.vm_start) >> PAGE_SHIFT) + vma.vm_pgoff
        fend = fstart + ((end - start) >> PAGE_SHIFT)
        vfs_fsync_range(kernel, vma.vm_file, fstart << PAGE_SHIFT,
                        (fend << PAGE_SHIFT) - 1, True)


def msync_range(kernel, vmas, start: int, end: int, flags: int) -> None:
    """msync_vma on each of ``vmas``' part of ``[start, end)``, in order."""
    for vma in vmas:
        msync_vma(kernel, vma, max(start, vma.vm_start), min(end, vma.vm_end), flags)


def ptep_clear_flush_dirty(kernel, vma, addr: int, ptep: int) -> bool:
    """Clear D atomically; flush if it was set (2.6.18's ptep_clear_flush_dirty)."""
    hw = kernel.hw
    old = hw.read_pte(ptep)
    while True:
        if not pte_dirty(old):
            return False
        found = hw.cas_pte(ptep, old, pte_mkclean(old))
        if found == old:
            break
        old = found
    flush_tlb_page(kernel, vma.vm_mm, addr)
    return True


def msync_pte_range(kernel, vma, start: int, end: int) -> int:
    """Before the patch: move the D bits of the range's PTEs to their pages (set_page_dirty)."""
    if vma.vm_file is None or not vma.vm_flags & VM_SHARED:
        return 0
    hw = kernel.hw
    mm = vma.vm_mm
    found = 0
    addr = start
    while addr < end:
        next_ = pmd_addr_end(addr, end)
        start_pte = pte_offset_map(mm, addr)
        if start_pte is not None:
            ptl = pte_lock(kernel, start_pte)
            for ptep, a in for_each_pte(start_pte, addr, next_):
                pte = hw.read_pte(ptep)
                if not pte_present(pte):
                    continue
                kernel.counters["pte_scans"] += 1
                page = vm_normal_page(kernel, vma, a, pte)
                if page is None:
                    continue
                if ptep_clear_flush_dirty(kernel, vma, a, ptep):
                    set_page_dirty(page)
                    found += 1
            pte_unlock(kernel, ptl)
        addr = next_
    return found

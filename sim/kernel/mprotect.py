"""mprotect (mm/mprotect.c): change_protection, change_pte_range, can_change_pte_writable.

W comes back by hand only where it is safe: in a writenotify VMA, only to PTEs that are
already dirty (a clean one still needs its write fault); in a private VMA, only to
exclusive anonymous pages.
"""

from .constants import VM_LOCKED, VM_SHARED, VM_WRITE
from .locking import pte_lock, pte_unlock
from .memory import populate_vma_page_range, vm_normal_page
from .mm import vma_modify_flags, vma_set_page_prot, vma_wants_manual_pte_write_upgrade
from .pgtable import (for_each_pte, pmd_addr_end, pte_dirty, pte_mkwrite, pte_modify, pte_none,
                      pte_offset_map, pte_present, pte_protnone, pte_write,
                      ptep_modify_prot_commit, ptep_modify_prot_start)
from .mmu_gather import MmuGather

MM_CP_TRY_CHANGE_WRITABLE = 1


def can_change_pte_writable(kernel, vma, addr: int, pte: int) -> bool:
    if not vma.vm_flags & VM_WRITE:
        return False
    if pte_protnone(pte):
        return False
    if not vma.vm_flags & VM_SHARED:
        # Writable MAP_PRIVATE mapping: only exclusive anonymous pages, which the write
        # fault handler would also map writable without further checks. A page fork
        # shared is not exclusive even once the child is gone: its next store takes a
        # write fault, where do_wp_page reuses it and marks it exclusive again.
        page = vm_normal_page(kernel, vma, addr, pte)
        return page is not None and page.PageAnon() and page.anon_exclusive
    # A writable MAP_SHARED mapping: "clean" may mean the file still needs its write fault.
    return pte_dirty(pte)


def change_pte_range(tlb: MmuGather, vma, addr: int, end: int, newprot: int,
                     cp_flags: int) -> int:
    kernel = tlb.kernel
    hw = kernel.hw
    start_pte = pte_offset_map(vma.vm_mm, addr)
    if start_pte is None:
        return 0
    ptl = pte_lock(kernel, start_pte)
    pages = 0
    for ptep, a in for_each_pte(start_pte, addr, end):
        oldpte = hw.read_pte(ptep)
        if pte_none(oldpte) or not pte_present(oldpte):
            continue
        oldpte = ptep_modify_prot_start(hw, ptep)
        ptent = pte_modify(oldpte, newprot)
        if (cp_flags & MM_CP_TRY_CHANGE_WRITABLE and not pte_write(ptent)
                and can_change_pte_writable(kernel, vma, a, ptent)):
            ptent = pte_mkwrite(ptent)
        ptep_modify_prot_commit(hw, ptep, ptent)
        if ptent != oldpte:
            tlb.tlb_remove_tlb_entry(a)                  # tlb_flush_pte_range
            pages += 1
    pte_unlock(kernel, ptl)
    return pages


def change_protection(kernel, vma, start: int, end: int, cp_flags: int) -> int:
    tlb = MmuGather(kernel, vma.vm_mm)
    newprot = vma.vm_page_prot
    pages = 0
    addr = start
    while addr < end:
        next_ = pmd_addr_end(addr, end)
        pages += change_pte_range(tlb, vma, addr, next_, newprot, cp_flags)
        addr = next_
    tlb.tlb_finish_mmu()
    kernel.counters["mprotect_ptes"] += pages
    return pages


def mprotect_fixup(kernel, mm, vma, start: int, end: int, newflags: int) -> None:
    oldflags = vma.vm_flags
    if newflags == oldflags:
        return
    vma = vma_modify_flags(mm, vma, start, end, newflags)
    vma_set_page_prot(vma)
    cp_flags = MM_CP_TRY_CHANGE_WRITABLE if vma_wants_manual_pte_write_upgrade(vma) else 0
    change_protection(kernel, vma, start, end, cp_flags)
    # Private VM_LOCKED VMA becoming writable: trigger COW to avoid major fault on access.
    if (oldflags & (VM_WRITE | VM_SHARED | VM_LOCKED)) == VM_LOCKED and newflags & VM_WRITE:
        populate_vma_page_range(kernel, vma, start, end)

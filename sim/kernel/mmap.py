"""mmap, munmap and exit_mmap (mm/mmap.c, mm/vma.c)."""

from .constants import (MAP_LOCKED, MAP_SHARED, MAP_SHARED_VALIDATE, MAP_TYPE, PROT_EXEC,
                        PROT_READ, PROT_WRITE, TASK_SIZE, VM_EXEC, VM_LOCKED, VM_MAYEXEC,
                        VM_MAYREAD, VM_MAYSHARE, VM_MAYWRITE, VM_READ, VM_SHARED, VM_WRITE)
from .memory import free_pgtables, unmap_page_range
from .mm import Vma, split_vma, vma_link, vma_set_page_prot, vma_unlink, vmas_in_range
from .mmu_gather import MmuGather
from .pagecache import delete_from_page_cache
from .pgtable import free_pmd_table
from .writeback import folio_cancel_dirty


def mmap_region(kernel, mm, file, addr: int, length: int, vm_flags: int, pgoff: int) -> int:
    """Create the VMA ``[addr, addr + length)`` (MAP_FIXED has already cleared the range)."""
    vma = Vma(mm, addr, addr + length, vm_flags, file, pgoff)
    vma_set_page_prot(vma)
    vma_link(mm, vma)
    return addr


def do_munmap(kernel, mm, start: int, end: int) -> None:
    """Unmap ``[start, end)``: split the VMAs at the edges, zap, free the page tables."""
    vmas = vmas_in_range(mm, start, end)
    if not vmas:
        return
    # Split so that the range is covered by whole VMAs (vms_gather_munmap_vmas).
    first, last = vmas[0], vmas[-1]
    if first.vm_start < start:
        split = split_vma(mm, first, start)
        if last is first:
            last = split
        vmas[0] = split
    if last.vm_end > end:
        split_vma(mm, last, end)
    vmas = vmas_in_range(mm, start, end)
    unmap_region(kernel, mm, vmas, start, end)


def unmap_region(kernel, mm, vmas, start: int, end: int) -> None:
    """Zap the PTEs of ``vmas``, unlink them, free the tables nobody needs, flush."""
    tlb = MmuGather(kernel, mm)
    for vma in vmas:
        unmap_page_range(tlb, vma, vma.vm_start, vma.vm_end)
    for vma in vmas:
        vma_unlink(mm, vma)
    free_pgtables(tlb, mm, start, end)
    tlb.tlb_finish_mmu()
    release_unused_shmem(kernel, vmas)


def release_unused_shmem(kernel, vmas) -> None:
    """A MAP_SHARED|MAP_ANONYMOUS object nobody maps any more goes, with its pages
    (shmem_evict_inode); only after the TLB flush, so no stale translation reaches them."""
    for file in {v.vm_file for v in vmas if v.vm_file is not None and v.vm_file.shmem}:
        if file.i_mmap:
            continue
        for page in list(file.pages.values()):
            folio_cancel_dirty(page)
            delete_from_page_cache(kernel, page)
            kernel.mem.free_page(page)
        if file in kernel.shmem:
            kernel.shmem.remove(file)


def exit_mmap(kernel, mm) -> None:
    """Tear down the whole address space (exit, or the last user of an mm)."""
    tlb = MmuGather(kernel, mm)
    vmas = list(mm.vmas)
    for vma in vmas:
        unmap_page_range(tlb, vma, vma.vm_start, vma.vm_end)
    for vma in vmas:
        vma_unlink(mm, vma)
    free_pgtables(tlb, mm, 0, TASK_SIZE)
    for key in list(mm.pmd_tables):
        tlb.tables.append(free_pmd_table(mm, key))
        tlb.freed_tables = True
    tlb.tlb_finish_mmu()
    release_unused_shmem(kernel, vmas)


def calc_vm_prot_bits(prot: int) -> int:
    """PROT_READ/WRITE/EXEC as VM_READ/WRITE/EXEC (include/linux/mman.h)."""
    vm_flags = 0
    if prot & PROT_READ:
        vm_flags |= VM_READ
    if prot & PROT_WRITE:
        vm_flags |= VM_WRITE
    if prot & PROT_EXEC:
        vm_flags |= VM_EXEC
    return vm_flags


def calc_vm_flag_bits(flags: int) -> int:
    """The vm_flags that mmap's flags ask for (include/linux/mman.h)."""
    return VM_LOCKED if flags & MAP_LOCKED else 0


def calc_vm_flags(prot: int, flags: int) -> int:
    """The vm_flags of a new mapping, as do_mmap computes them."""
    vm_flags = calc_vm_prot_bits(prot) | calc_vm_flag_bits(flags) | VM_MAYREAD | VM_MAYWRITE \
        | VM_MAYEXEC
    if (flags & MAP_TYPE) in (MAP_SHARED, MAP_SHARED_VALIDATE):
        vm_flags |= VM_SHARED | VM_MAYSHARE
    return vm_flags


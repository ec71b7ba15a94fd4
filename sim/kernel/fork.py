"""fork's copy of the address space (kernel/fork.c: dup_mm, dup_mmap)."""

from .constants import VM_DONTCOPY, VM_LOCKED
from .memory import copy_page_range
from .mm import Vma, vma_link
from .tlbflush import flush_tlb_mm


def dup_mmap(kernel, mm, oldmm) -> None:
    """Copy every VMA; shared ones stay shared (the child faults them in), private ones get
    their PTEs copied write-protected in both (copy on write)."""
    for vma in list(oldmm.vmas):
        if vma.vm_flags & VM_DONTCOPY:
            continue
        new = Vma(mm, vma.vm_start, vma.vm_end, vma.vm_flags & ~VM_LOCKED, vma.vm_file,
                  vma.vm_pgoff)
        new.vm_page_prot = vma.vm_page_prot
        new.anon_vma = vma.anon_vma                  # 2.6.19: the family shares one anon_vma
        vma_link(mm, new)
        copy_page_range(kernel, new, vma)
    # The parent's write-protected PTEs may still be writable in its TLB.
    flush_tlb_mm(kernel, oldmm)


def dup_mm(kernel, oldmm):
    mm = kernel.mm_alloc()
    dup_mmap(kernel, mm, oldmm)
    return mm

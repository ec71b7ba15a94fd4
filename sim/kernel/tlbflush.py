"""TLB maintenance (arch/riscv/mm/tlbflush.c, arch/riscv/include/asm/tlbflush.h).

Every flush is one sfence.vma through the seam and is counted. A by-address sfence leaves
the walker's cache of non-leaf PTEs alone (the spec orders only leaf PTEs for rs1 != x0),
so a path that frees or changes a non-leaf PTE flushes without an address. Every
sfence.vma the kernel issues goes through :func:`sfence_vma`, which also shows it in a
trace.
"""

from mkclean.sim.hw.seam import KernelEvent

from .constants import PAGE_SIZE

#: riscv's tlb_flush_all_threshold: a longer range is flushed by ASID instead of page by page.
TLB_FLUSH_ALL_THRESHOLD = 64


def sfence_vma(kernel, vaddr: int | None, asid: int | None) -> None:
    """The instruction itself (``None``: the x0 operand), uncounted: the flushes below
    count theirs, the boot's is not one."""
    kernel.event(KernelEvent.SFENCE_VMA, vaddr or 0)
    kernel.hw.sfence_vma(vaddr, asid)


def flush_tlb_page(kernel, mm, addr: int) -> None:
    kernel.counters["sfences"] += 1
    sfence_vma(kernel, addr, mm.asid)


def flush_tlb_mm(kernel, mm) -> None:
    """Every translation of the ASID, and the walk cache."""
    kernel.counters["sfences"] += 1
    sfence_vma(kernel, None, mm.asid)


def flush_tlb_all(kernel) -> None:
    kernel.counters["sfences"] += 1
    sfence_vma(kernel, None, None)


def flush_tlb_range(kernel, mm, start: int, end: int) -> None:
    if (end - start) // PAGE_SIZE > TLB_FLUSH_ALL_THRESHOLD:
        flush_tlb_mm(kernel, mm)
        return
    for addr in range(start, end, PAGE_SIZE):
        flush_tlb_page(kernel, mm, addr)


def update_mmu_cache(kernel, vma, addr: int) -> None:
    """After a fault installed or upgraded a PTE: riscv flushes the page, because the TLB may
    still hold the old, less permissive translation (a store hitting it would fault again)."""
    flush_tlb_page(kernel, vma.vm_mm, addr)


def flush_tlb_fix_spurious_fault(kernel, vma, addr: int) -> None:
    flush_tlb_page(kernel, vma.vm_mm, addr)

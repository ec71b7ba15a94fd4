"""TLB maintenance (arch/riscv/mm/tlbflush.c) and the mmu_gather of unmapping (mm/mmu_gather.c).

Every flush is one sfence.vma through the seam and is counted. A by-address sfence leaves
the walker's cache of non-leaf PTEs alone (the spec orders only leaf PTEs for rs1 != x0),
so a path that frees or changes a non-leaf PTE flushes without an address.
"""

from .constants import PAGE_SIZE

#: riscv's tlb_flush_all_threshold: a longer range is flushed by ASID instead of page by page.
TLB_FLUSH_ALL_THRESHOLD = 64


def flush_tlb_page(kernel, mm, addr: int) -> None:
    kernel.counters["sfences"] += 1
    kernel.hw.sfence_vma(addr, mm.asid)


def flush_tlb_mm(kernel, mm) -> None:
    """Every translation of the ASID, and the walk cache."""
    kernel.counters["sfences"] += 1
    kernel.hw.sfence_vma(None, mm.asid)


def flush_tlb_all(kernel) -> None:
    kernel.counters["sfences"] += 1
    kernel.hw.sfence_vma(None, None)


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


class MmuGather:
    """struct mmu_gather: addresses to flush, pages and page tables to free after the flush."""

    def __init__(self, kernel, mm):
        self.kernel = kernel
        self.mm = mm
        self.addrs = []
        self.pages = []
        self.delayed_rmap = []
        self.tables = []
        self.freed_tables = False

    def tlb_remove_tlb_entry(self, addr: int) -> None:
        self.addrs.append(addr)

    def tlb_remove_page(self, page) -> None:
        """Free ``page`` once no TLB can reach it any more."""
        self.pages.append(page)

    def tlb_flush_mmu_tlbonly(self) -> None:
        kernel, mm = self.kernel, self.mm
        if self.freed_tables:
            flush_tlb_mm(kernel, mm)                  # walk cache too
        elif len(self.addrs) > TLB_FLUSH_ALL_THRESHOLD:
            flush_tlb_mm(kernel, mm)
        else:
            for addr in self.addrs:
                flush_tlb_page(kernel, mm, addr)
        self.addrs.clear()
        self.freed_tables = False

    def tlb_flush_rmaps(self) -> None:
        """Remove the rmap of the dirty file pages zapped, now that the TLB is flushed."""
        from .rmap import page_remove_rmap
        for page in self.delayed_rmap:
            page_remove_rmap(self.kernel, page)
        self.delayed_rmap.clear()

    def tlb_flush_mmu(self) -> None:
        if self.addrs or self.freed_tables:
            self.tlb_flush_mmu_tlbonly()
        self.tlb_flush_rmaps()
        mem = self.kernel.mem
        for page in self.pages:
            if page.kind == "anon" and page.mapcount == 0:
                mem.free_page(page)
        self.pages.clear()
        for pfn in self.tables:
            mem.free_pgtable(pfn)
        self.tables.clear()

    def tlb_finish_mmu(self) -> None:
        self.tlb_flush_mmu()

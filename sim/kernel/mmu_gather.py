"""The mmu_gather of unmapping (mm/mmu_gather.c, include/asm-generic/tlb.h).

Zapping PTEs gathers the addresses to flush and the pages and page tables to free; the
pages and tables are freed only after the TLB flush, so that no stale translation reaches
a reused frame.
"""

from .rmap import page_remove_rmap
from .tlbflush import TLB_FLUSH_ALL_THRESHOLD, flush_tlb_mm, flush_tlb_page


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
        for page in self.delayed_rmap:
            page_remove_rmap(self.kernel, page)
        self.delayed_rmap.clear()

    def tlb_flush_mmu(self) -> None:
        if self.addrs or self.freed_tables:
            self.tlb_flush_mmu_tlbonly()
        self.tlb_flush_rmaps()
        mem = self.kernel.mem
        for page in self.pages:
            if page.PageAnon() and page.mapcount == 0:
                mem.free_page(page)
        self.pages.clear()
        for pfn in self.tables:
            mem.free_pgtable(pfn)
        self.tables.clear()

    def tlb_finish_mmu(self) -> None:
        self.tlb_flush_mmu()

"""Physical frames, their ``struct page``, and the buddy allocator's job (mm/page_alloc.c).

Every frame of the hardware's physical memory has a :class:`Page`. Frames are handed out
last-freed-first, so that a frame freed without the flush it needed is reused at once and a
stale translation to it shows up quickly.
"""

from .constants import PAGE_SHIFT, PAGE_SIZE
from .errors import KernelBug

ZERO_PAGE = bytes(PAGE_SIZE)


class Page:
    """``struct page`` / ``struct folio`` of one 4 KiB frame.

    Attributes
    ----------
    pfn : int
    kind : str
        "free", "pagecache" (a file page), "anon", "pgtable", "zero" or "reserved".
    mapping : File or None
        The file whose page cache holds it (None for anonymous and table pages, and once
        truncated: truncation sets mapping to None, which page_mkwrite checks).
    index : int
        The page's offset in its file, in pages; for an anonymous page, its linear index
        (vma.vm_pgoff-based, as page->index is).
    anon_vma : AnonVma or None
        For an anonymous page: the anon_vma its rmap goes through.
    dirty, writeback, locked, uptodate : bool
        PG_dirty, PG_writeback, PG_locked, PG_uptodate.
    mapcount : int
        PTEs mapping the page (page_mapcount).
    pt_mm : MmStruct or None
        For a page-table page: the mm it belongs to.
    ptl_owner : object or None
        For a PTE-table page: who holds its split PTE lock (ptlock_ptr(page)).
    """

    __slots__ = ("pfn", "kind", "mapping", "index", "anon_vma", "dirty", "writeback",
                 "locked", "uptodate", "mapcount", "pt_mm", "pt_count", "ptl_owner",
                 "lock_owner")

    def __init__(self, pfn: int):
        self.pfn = pfn
        self.kind = "free"
        self._reset()

    def _reset(self) -> None:
        self.mapping = None
        self.index = 0
        self.anon_vma = None
        self.dirty = False
        self.writeback = False
        self.locked = False
        self.uptodate = False
        self.mapcount = 0
        self.pt_mm = None
        self.pt_count = 0
        self.ptl_owner = None
        self.lock_owner = None

    @property
    def paddr(self) -> int:
        return self.pfn << PAGE_SHIFT

    def PageAnon(self) -> bool:
        return self.kind == "anon"

    def PageTable(self) -> bool:
        return self.kind == "pgtable"

    def __repr__(self) -> str:
        flags = "".join(c for c, on in (("D", self.dirty), ("W", self.writeback),
                                        ("L", self.locked), ("U", self.uptodate)) if on)
        where = (f" {self.mapping.name}[{self.index}]" if self.mapping is not None else "")
        return f"<Page pfn={self.pfn} {self.kind}{where} {flags or '-'} map={self.mapcount}>"


class PhysMem:
    """mem_map and the free list.

    Parameters
    ----------
    kernel : Kernel
        For the hardware (to zero and copy frames) and stats.
    nr_frames : int
    reserved : int
        Frames at the bottom never handed out (frame 0 holds the zero page).
    """

    def __init__(self, kernel, nr_frames: int):
        self.kernel = kernel
        self.hw = kernel.hw
        self.mem_map = [Page(pfn) for pfn in range(nr_frames)]
        zero = self.mem_map[0]
        zero.kind = "zero"
        zero.uptodate = True
        self.zero_page = zero
        self.hw.write(0, ZERO_PAGE)
        # Highest frames last in the list: pop() hands out low frames first.
        self.free = list(range(nr_frames - 1, 0, -1))
        self.nr_frames = nr_frames

    @property
    def nr_free(self) -> int:
        return len(self.free)

    def alloc_page(self, zero: bool = False, kind: str = "anon") -> Page:
        """A free frame (alloc_page / __GFP_ZERO); None is never returned: OOM raises."""
        if not self.free:
            self.kernel.reclaim()
            if not self.free:
                raise MemoryError("out of physical frames")
        pfn = self.free.pop()
        page = self.mem_map[pfn]
        if page.kind != "free":
            raise KernelBug(f"allocating a busy frame {page!r}")
        page.kind = kind
        if zero:
            self.hw.write(pfn << PAGE_SHIFT, ZERO_PAGE)
        return page

    def free_page(self, page: Page) -> None:
        """Give a frame back (__free_page): nothing may still map or lock it."""
        if page.mapcount or page.locked or page.writeback or page.kind in ("free", "zero"):
            raise KernelBug(f"freeing a busy page {page!r}")
        page.kind = "free"
        page._reset()
        self.free.append(page.pfn)

    def free_pgtable(self, pfn: int) -> None:
        page = self.mem_map[pfn]
        if not page.PageTable():
            raise KernelBug(f"freeing a non-table frame as a table: {page!r}")
        self.free_page(page)

    def page(self, pfn: int) -> Page:
        return self.mem_map[pfn]

    def copy_page(self, dst: Page, src: Page) -> None:
        hw = self.hw
        hw.write(dst.paddr, hw.read(src.paddr, PAGE_SIZE))

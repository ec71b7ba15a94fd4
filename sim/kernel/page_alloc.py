"""Physical frames, their ``struct page``, and the buddy allocator's job (mm/page_alloc.c).

Every frame of the hardware's physical memory has a :class:`Page`. Frames are handed out
last-freed-first, so that a frame freed without the flush it needed is reused at once and a
stale translation to it shows up quickly.

Memory need not start at physical address 0 (QEMU's virt machine puts it at 0x8000_0000):
as Linux's FLATMEM, ``mem_map`` holds the frames from ``ARCH_PFN_OFFSET`` on, and
:meth:`PhysMem.pfn_to_page` is the one way from a pfn to its page.
"""

from .constants import PAGE_SHIFT, PAGE_SIZE
from .errors import KernelBug

ZERO_PAGE = bytes(PAGE_SIZE)


class Page:
    """``struct page`` / ``struct folio`` of one 4 KiB frame.

    Attributes
    ----------
    pfn : int
        The real page frame number: the physical address >> PAGE_SHIFT.
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
    anon_exclusive : bool
        PageAnonExclusive (include/linux/page-flags.h): an anonymous page that only this
        mm maps, so that a write fault or mprotect may make it writable in place. Set
        when the page is born by a fault in this mm (folio_add_new_anon_rmap with
        RMAP_EXCLUSIVE) and when a write fault reuses it (do_wp_page); cleared in the
        parent when fork shares it (__folio_try_dup_anon_rmap); reset on free.
    pt_mm : MmStruct or None
        For a page-table page: the mm it belongs to.
    ptl_owner : object or None
        For a PTE-table page: who holds its split PTE lock (ptlock_ptr(page)).
    """

    __slots__ = ("pfn", "kind", "mapping", "index", "anon_vma", "dirty", "writeback",
                 "locked", "uptodate", "mapcount", "anon_exclusive", "pt_mm", "pt_count",
                 "ptl_owner", "lock_owner")

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
        self.anon_exclusive = False
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
        Frames of physical memory.
    pfn_offset : int
        The pfn of memory's first frame: the hardware's ``phys_base >> PAGE_SHIFT``.

    Attributes
    ----------
    ARCH_PFN_OFFSET : int
        ``pfn_offset``: ``mem_map[i]`` is the page of pfn ``ARCH_PFN_OFFSET + i``.
    mem_map : list of Page
        Every frame's page, lowest first; index it through :meth:`pfn_to_page`.
    zero_page : Page
        The first frame of memory, never handed out.
    free : list of int
        The pfns of the free frames.
    """

    def __init__(self, kernel, nr_frames: int, pfn_offset: int = 0):
        self.kernel = kernel
        self.hw = kernel.hw
        self.ARCH_PFN_OFFSET = pfn_offset
        self.nr_frames = nr_frames
        self.mem_map = [Page(pfn) for pfn in range(pfn_offset, pfn_offset + nr_frames)]
        zero = self.pfn_to_page(pfn_offset)
        zero.kind = "zero"
        zero.uptodate = True
        self.zero_page = zero
        self.hw.write(zero.paddr, ZERO_PAGE)
        # Highest frames last in the list: pop() hands out low frames first.
        self.free = list(range(pfn_offset + nr_frames - 1, pfn_offset, -1))

    def pfn_valid(self, pfn: int) -> bool:
        """Whether ``pfn`` is a frame of memory (has a page in mem_map)."""
        return 0 <= pfn - self.ARCH_PFN_OFFSET < self.nr_frames

    def pfn_to_page(self, pfn: int) -> Page:
        """The page of frame ``pfn``: ``mem_map[pfn - ARCH_PFN_OFFSET]``.

        A pfn outside memory is a KernelBug (in Linux, whoever holds such a pfn asks
        :meth:`pfn_valid` first), never another frame's page through a negative index.
        """
        i = pfn - self.ARCH_PFN_OFFSET
        if not 0 <= i < self.nr_frames:
            raise KernelBug(f"pfn_to_page({pfn:#x}): no such frame, memory's pfns are "
                            f"[{self.ARCH_PFN_OFFSET:#x}, "
                            f"{self.ARCH_PFN_OFFSET + self.nr_frames:#x})")
        return self.mem_map[i]

    @staticmethod
    def page_to_pfn(page: Page) -> int:
        """The pfn of ``page``: what :meth:`pfn_to_page` takes back to it. Linux computes
        it from the page's place in mem_map; the model's page keeps it (:attr:`Page.pfn`)."""
        return page.pfn

    @property
    def nr_free(self) -> int:
        return len(self.free)

    def alloc_page(self, zero: bool = False, kind: str = "anon") -> Page:
        """A free frame (alloc_page / __GFP_ZERO); None is never returned: OOM raises."""
        if not self.free:
            self.kernel.reclaim()
            if not self.free:
                raise MemoryError("out of physical frames")
        page = self.pfn_to_page(self.free.pop())
        if page.kind != "free":
            raise KernelBug(f"allocating a busy frame {page!r}")
        page.kind = kind
        if zero:
            self.hw.write(page.paddr, ZERO_PAGE)
        return page

    def free_page(self, page: Page) -> None:
        """Give a frame back (__free_page): nothing may still map or lock it."""
        if page.mapcount or page.locked or page.writeback or page.kind in ("free", "zero"):
            raise KernelBug(f"freeing a busy page {page!r}")
        page.kind = "free"
        page._reset()
        self.free.append(page.pfn)

    def free_pgtable(self, pfn: int) -> None:
        page = self.pfn_to_page(pfn)
        if not page.PageTable():
            raise KernelBug(f"freeing a non-table frame as a table: {page!r}")
        self.free_page(page)

    def copy_page(self, dst: Page, src: Page) -> None:
        hw = self.hw
        hw.write(dst.paddr, hw.read(src.paddr, PAGE_SIZE))

"""The three dirty-tracking policies compared: what the patch buys.

- ``writenotify`` (the patch, the default): shared writable file pages are mapped read-only
  while clean; the first store faults, the page is dirtied there; writeback's page_mkclean
  write-protects and cleans every PTE through the reverse map and flushes the TLB.
- ``legacy`` (before it): shared pages are mapped writable; their dirtiness lives only in
  the PTE D bits until msync, munmap or exit moves it to the page. Writeback knows only
  the pages dirtied by write() or already moved.
- ``hwdirty``: writable mappings too, D set by the hardware (Svadu); writeback scans the
  mapped pages of each file through the reverse map, and clears and collects D bits with a
  flush (W stays).
"""

from .constants import PAGE_SHIFT
from .locking import trylock_page, unlock_page
from .msync import msync_pte_range
from .rmap import folio_mkclean, folio_mkclean_dirty
from .writeback import set_page_dirty


class Policy:
    name = "?"
    #: vma_wants_writenotify may say yes.
    writenotify = False
    #: The fault paths mark the page dirty (the patch's set_page_dirty in the faults).
    fault_dirty = True

    def page_mkclean(self, kernel, page) -> bool:
        """Clean the PTEs of a page about to be written; True if any was dirty/writable."""
        return False

    def writeback_prepare(self, kernel, mapping, wbc) -> None:
        """Before a file's dirty pages are written."""

    def msync_vma(self, kernel, vma, start: int, end: int, flags: int) -> None:
        """msync's work on one VMA besides MS_SYNC's fsync."""

    def __repr__(self) -> str:
        return f"<Policy {self.name}>"


class WriteNotify(Policy):
    name = "writenotify"
    writenotify = True
    fault_dirty = True

    def page_mkclean(self, kernel, page) -> bool:
        return folio_mkclean(kernel, page)


class Legacy(Policy):
    name = "legacy"
    writenotify = False
    fault_dirty = False

    def msync_vma(self, kernel, vma, start: int, end: int, flags: int) -> None:
        msync_pte_range(kernel, vma, start, end)


class HwDirty(Policy):
    name = "hwdirty"
    writenotify = False
    fault_dirty = True

    def page_mkclean(self, kernel, page) -> bool:
        return folio_mkclean_dirty(kernel, page)

    def writeback_prepare(self, kernel, mapping, wbc) -> None:
        """Scan every mapped page of the range: collect hardware D bits into PG_dirty."""
        first = wbc.range_start >> PAGE_SHIFT
        last = None if wbc.range_end is None else wbc.range_end >> PAGE_SHIFT
        for index, page in sorted(mapping.pages.items()):
            if index < first or (last is not None and index > last):
                continue
            if not page.mapcount or page.dirty:
                continue
            kernel.counters["pte_scans"] += page.mapcount
            if not trylock_page(kernel, page):
                continue
            if folio_mkclean_dirty(kernel, page):
                set_page_dirty(page)
            unlock_page(kernel, page)


POLICIES = {"writenotify": WriteNotify, "legacy": Legacy, "hwdirty": HwDirty}


def make_policy(name: str) -> Policy:
    try:
        return POLICIES[name]()
    except (KeyError, TypeError):
        raise ValueError(f"unknown policy {name!r}: choose one of "
                         f"{', '.join(POLICIES)}") from None

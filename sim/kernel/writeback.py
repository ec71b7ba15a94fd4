"""Dirty pages and writeback (mm/page-writeback.c, mm/filemap.c, fs/sync.c).

``set_page_dirty`` (folio_mark_dirty) and the accounting of dirty pages per file and in
total; ``clear_page_dirty_for_io``, which cleans every PTE of the page through the reverse
map before the page is written (the patch's ``page_mkclean``); ``write_cache_pages``, the
writeback of one file; the flusher's pass and ``vfs_fsync_range`` for MS_SYNC.

The backing device needs stable pages: a page under writeback may not change, so a write
fault or write() on it waits for the I/O (wait_for_stable_page). The I/O itself is the
os.pwrite of the page's bytes, done when the bio is submitted; its completion
(end_page_writeback) comes later: at the end of the pass, when someone waits on the page,
or when the caller of :func:`wb_writeback` says so.
"""

import os

from mkclean.sim.hw.seam import KernelEvent

from .constants import PAGE_SHIFT, PAGE_SIZE, WB_SYNC_ALL, WB_SYNC_NONE
from .errors import KernelBug
from .locking import lock_page, unlock_page


# -- PG_dirty and its accounting ----------------------------------------------------------------

def folio_account_dirtied(page, mapping) -> None:
    mapping.nrdirty += 1
    mapping.dirty_idx.add(page.index)
    mapping.kernel.nr_dirty += 1


def folio_account_cleaned(page, mapping) -> None:
    mapping.nrdirty -= 1
    mapping.dirty_idx.discard(page.index)
    mapping.kernel.nr_dirty -= 1
    if mapping.nrdirty < 0 or mapping.kernel.nr_dirty < 0:
        raise KernelBug(f"dirty accounting went negative on {mapping!r}")


def set_page_dirty(page) -> bool:
    """folio_mark_dirty: set PG_dirty; True if it was clean. Accounts it if the file can write back.

    A page cache page that was clean is a SET_PAGE_DIRTY kernel event (its physical
    address); one already dirty changes nothing and is none."""
    if page.dirty:
        return False
    page.dirty = True
    mapping = page.mapping
    if mapping is not None:
        mapping.kernel.event(KernelEvent.SET_PAGE_DIRTY, page.paddr)
        if mapping.can_writeback:                             # filemap_dirty_folio
            folio_account_dirtied(page, mapping)
    return True                                               # noop_dirty_folio otherwise


folio_mark_dirty = set_page_dirty


def folio_test_clear_dirty(page) -> bool:
    """TestClearPageDirty, with the accounting."""
    if not page.dirty:
        return False
    page.dirty = False
    mapping = page.mapping
    if mapping is not None and mapping.can_writeback:
        folio_account_cleaned(page, mapping)
    return True


def folio_cancel_dirty(page) -> None:
    """cancel_dirty_page: the page is being truncated; drop its dirtiness and the accounting.

    The 2.6.19 corruption (7658cc289288, fba2591bf4e4): truncation must account the page
    cleaned here, not leave the counters to drift.
    """
    folio_test_clear_dirty(page)


def clear_page_dirty_for_io(page) -> bool:
    """folio_clear_dirty_for_io: clean the PTEs, move their dirtiness to the page, clear PG_dirty.

    Called with the page locked, just before writing it. Returns whether the page was dirty
    (and so must be written). How the PTEs are cleaned is the policy's: page_mkclean
    (writenotify), the D bits only (hwdirty), nothing at all (legacy, before the patch).
    """
    kernel = page.mapping.kernel if page.mapping is not None else None
    if not page.locked:
        raise KernelBug(f"clear_page_dirty_for_io on an unlocked page {page!r}")
    mapping = page.mapping
    if mapping is not None and mapping.can_writeback:
        if kernel.policy.page_mkclean(kernel, page):
            set_page_dirty(page)
        return folio_test_clear_dirty(page)
    return folio_test_clear_dirty(page)


# -- PG_writeback ---------------------------------------------------------------------------------

def set_page_writeback(page) -> None:
    if page.writeback:
        raise KernelBug(f"set_page_writeback on {page!r} already under writeback")
    page.writeback = True
    page.mapping.nrwriteback += 1


def end_page_writeback(kernel, page) -> None:
    """The bio completed: clear PG_writeback and wake the waiters."""
    if not page.writeback:
        raise KernelBug(f"end_page_writeback on {page!r} not under writeback")
    page.writeback = False
    if page.mapping is not None:
        page.mapping.nrwriteback -= 1
    kernel.inflight.pop(page.pfn, None)
    kernel.sched.point("end_page_writeback", page)


def folio_wait_writeback(kernel, page) -> None:
    """Sleep until the page's writeback completes (here: its bio completes now)."""
    while page.writeback:
        kernel.sched.point("folio_wait_writeback", page)
        if page.writeback:
            kernel.io_wait(page)


def folio_wait_stable(kernel, page) -> None:
    """wait_for_stable_page: writers wait for writeback if the device needs stable pages."""
    mapping = page.mapping
    if mapping is not None and mapping.stable_writes:
        folio_wait_writeback(kernel, page)


# -- writing a file's pages -----------------------------------------------------------------------

def writepage(kernel, page, wbc) -> None:
    """->writepage: start the I/O of a locked, just-cleaned page; unlocks it.

    The bytes are taken and written (os.pwrite) at submission; PG_writeback stays set
    until the completion.
    """
    mapping = page.mapping
    kernel.event(KernelEvent.WRITEBACK, page.paddr)
    set_page_writeback(page)
    start = page.index << PAGE_SHIFT
    valid = min(PAGE_SIZE, mapping.i_size - start)
    if 0 < valid < PAGE_SIZE:
        # The page straddles i_size: its tail must be zeroed on every writepage, because
        # it may be mmapped and stores beyond EOF must not reach the file
        # (ext4_bio_write_folio, __block_write_full_folio, iomap's EOF handling).
        kernel.hw.write(page.paddr + valid, bytes(PAGE_SIZE - valid))
    data = kernel.hw.read(page.paddr, valid) if valid > 0 else b""
    unlock_page(kernel, page)
    if data and kernel.plant != "missing-writeback":
        os.pwrite(mapping.fd, data, start)                       # submit_bio
        if start + valid > mapping.disk_size:
            mapping.disk_size = start + valid
    kernel.inflight[page.pfn] = page
    kernel.counters["writeback_pages"] += 1
    wbc.nr_written += 1


class WritebackControl:
    """struct writeback_control."""

    def __init__(self, sync_mode: int = WB_SYNC_NONE, start: int = 0, end: int | None = None):
        self.sync_mode = sync_mode
        self.range_start = start
        self.range_end = end          # inclusive byte offset, None = to the end
        self.nr_written = 0


def write_cache_pages(kernel, mapping, wbc: WritebackControl) -> int:
    """Write every dirty page of ``mapping`` in the range, in index order."""
    first = wbc.range_start >> PAGE_SHIFT
    last = None if wbc.range_end is None else wbc.range_end >> PAGE_SHIFT
    for index in sorted(mapping.dirty_idx):                       # the DIRTY tag
        if index < first or (last is not None and index > last):
            continue
        page = mapping.pages.get(index)
        if page is None:
            continue
        lock_page(kernel, page)
        if page.mapping is not mapping:                           # truncated meanwhile
            unlock_page(kernel, page)
            continue
        if not page.dirty:                                        # someone else wrote it
            unlock_page(kernel, page)
            continue
        if page.writeback:
            if wbc.sync_mode == WB_SYNC_NONE:
                unlock_page(kernel, page)
                continue
            folio_wait_writeback(kernel, page)
        if not clear_page_dirty_for_io(page):
            unlock_page(kernel, page)
            continue
        writepage(kernel, page, wbc)
    return wbc.nr_written


def do_writepages(kernel, mapping, wbc: WritebackControl) -> int:
    if not mapping.can_writeback:
        return 0
    kernel.policy.writeback_prepare(kernel, mapping, wbc)
    return write_cache_pages(kernel, mapping, wbc)


def filemap_fdatawait_range(kernel, mapping, start: int, end: int | None) -> None:
    first = start >> PAGE_SHIFT
    last = None if end is None else end >> PAGE_SHIFT
    for index, page in sorted(mapping.pages.items()):
        if index < first or (last is not None and index > last):
            continue
        if page.writeback:
            folio_wait_writeback(kernel, page)


def write_inode(kernel, mapping) -> None:
    """Bring the on-disk size to i_size (the inode's metadata writeback)."""
    if mapping.disk_size != mapping.i_size:
        os.ftruncate(mapping.fd, mapping.i_size)
        mapping.disk_size = mapping.i_size


def vfs_fsync_range(kernel, mapping, start: int, end: int | None, datasync: bool = False) -> int:
    """fsync: write the range's dirty pages, wait for them, make the file durable."""
    if not mapping.can_writeback:
        return 0
    wbc = WritebackControl(WB_SYNC_ALL, start, end)
    written = do_writepages(kernel, mapping, wbc)
    filemap_fdatawait_range(kernel, mapping, start, end)
    write_inode(kernel, mapping)
    os.fsync(mapping.fd)
    kernel.counters["fsyncs"] += 1
    return written


def wb_writeback(kernel, sync_mode: int = WB_SYNC_NONE, wait: bool = True) -> int:
    """One pass of the flusher over every file; returns the pages written.

    ``wait=False`` leaves the I/O in flight (pages stay under writeback until someone waits
    on them or :meth:`Kernel.complete_io` runs).
    """
    written = 0
    for mapping in list(kernel.files.values()):
        if not mapping.can_writeback:
            continue
        wbc = WritebackControl(sync_mode)
        written += do_writepages(kernel, mapping, wbc)
        write_inode(kernel, mapping)
    kernel.counters["writeback_passes"] += 1
    if wait:
        kernel.complete_io()
    return written


def balance_dirty_pages_ratelimited(kernel, mapping) -> None:
    """Throttle a dirtier: above the dirty threshold, write back before going on."""
    if kernel.nr_dirty > kernel.dirty_thresh:
        kernel.counters["balance_dirty_pages"] += 1
        wb_writeback(kernel, WB_SYNC_NONE, wait=True)

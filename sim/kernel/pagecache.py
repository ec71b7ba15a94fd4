"""Files and their page cache (include/linux/fs.h, mm/filemap.c, mm/truncate.c, mm/shmem.c).

A :class:`File` is the inode, its address_space and the open file in one: the page cache
(index -> Page, the page's bytes in a hardware frame), the VMAs mapping it (i_mmap, what the
reverse map walks), the dirty accounting, and the real file on disk behind it.
"""

import os

from .constants import (PAGE_ALIGN, PAGE_SHIFT, PAGE_SIZE, VM_FAULT_LOCKED, VM_FAULT_NOPAGE,
                        VM_FAULT_OOM, VM_FAULT_SIGBUS)
from .errors import KernelBug
from .locking import lock_page, pte_lock, pte_unlock, trylock_page, unlock_page
from .memory import do_fault_around, should_fault_around, unmap_mapping_range
from .pgtable import mk_pte, pte_none, pte_offset_map, set_pte_at
from .rmap import page_add_file_rmap
from .tlbflush import update_mmu_cache
from .writeback import (balance_dirty_pages_ratelimited, folio_cancel_dirty, folio_wait_stable,
                        folio_wait_writeback, set_page_dirty)

#: ext4_setattr zeroes the old EOF block up to LLONG_MAX: to its end.
LLONG_MAX = (1 << 63) - 1


class VmOps:
    """``struct vm_operations_struct``: what a file's mappings call on faults."""

    __slots__ = ("name", "fault", "map_pages", "page_mkwrite", "pfn_mkwrite")

    def __init__(self, name, fault, page_mkwrite=None, pfn_mkwrite=None, map_pages=None):
        self.name = name
        self.fault = fault
        #: ``map_pages(vmf, start_pgoff, end_pgoff)``: map what is already cached around a
        #: read fault (fault-around); None: no fault-around.
        self.map_pages = map_pages
        self.page_mkwrite = page_mkwrite
        self.pfn_mkwrite = pfn_mkwrite

    def __repr__(self) -> str:
        return f"<VmOps {self.name}>"


class File:
    """An inode + address_space + open file, backed by a real file (or by nothing: shmem).

    Attributes
    ----------
    name : str
    i_size : int
        The file's size in bytes.
    block_size : int
        The filesystem block size (i_blocksize), a power of two from 512 to 65536; 4096
        (ext4's usual block, one page) by default, PAGE_SIZE for shmem.
    i_blkbits : int
        log2(block_size).
    pages : dict[int, Page]
        The page cache.
    dirty_idx : set[int]
        Indices of the pages tagged dirty (PG_dirty and accounted).
    nrdirty, nrwriteback : int
        Pages PG_dirty (accounted) and under writeback.
    i_mmap : list[Vma]
        Every VMA mapping the file, shared or private.
    can_writeback : bool
        mapping_can_writeback (a real backing store that accounts dirty pages).
    stable_writes : bool
        Writers wait for writeback of the page they change.
    vm_ops : VmOps
    driver_prot : int or None
        PTE bits the file's mmap adds to vm_page_prot (a driver changing the protection).
    """

    def __init__(self, kernel, name: str, path: str | None, size: int, *,
                 page_mkwrite: bool = True, can_writeback: bool = True,
                 stable_writes: bool = True, shmem: bool = False,
                 driver_prot: int | None = None, block_size: int = PAGE_SIZE):
        self.kernel = kernel
        self.name = name
        self.path = path
        self.shmem = shmem
        self.i_blkbits = block_size.bit_length() - 1
        self.block_size = block_size
        self.fd = None
        if path is not None:
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
            os.ftruncate(self.fd, size)
        self.i_size = size
        self.disk_size = size
        self.pages = {}
        self.dirty_idx = set()
        self.nrdirty = 0
        self.nrwriteback = 0
        self.i_mmap = []
        self.i_mmap_writable = 0
        self.can_writeback = can_writeback and not shmem
        self.stable_writes = stable_writes
        self.driver_prot = driver_prot
        # Both have .map_pages = filemap_map_pages in Linux (generic_file_vm_ops,
        # shmem_anon_vm_ops): read faults fault around.
        if shmem:
            self.vm_ops = VmOps("shmem_vm_ops", filemap_fault, map_pages=filemap_map_pages)
        else:
            self.vm_ops = VmOps("generic_file_vm_ops", filemap_fault,
                                filemap_page_mkwrite if page_mkwrite else None,
                                map_pages=filemap_map_pages)

    def __repr__(self) -> str:
        return f"<File {self.name} size={self.i_size} cached={len(self.pages)} dirty={self.nrdirty}>"

    # -- what tests look at ------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return self.i_size

    def on_disk(self, offset: int, n: int) -> bytes:
        """The bytes of the backing file now (shorter at its end)."""
        if self.fd is None:
            return b""
        return os.pread(self.fd, n, offset)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


# -- looking pages up and reading them in ----------------------------------------------------------

def find_get_page(mapping: File, index: int):
    return mapping.pages.get(index)


def read_folio(kernel, mapping: File, page) -> None:
    """->read_folio: fill the frame from the backing file (zeros past its end, or shmem)."""
    if mapping.fd is not None:
        data = os.pread(mapping.fd, PAGE_SIZE, page.index << PAGE_SHIFT)
        kernel.counters["pagecache_reads"] += 1
    else:
        data = b""
    if len(data) < PAGE_SIZE:
        data += bytes(PAGE_SIZE - len(data))
    kernel.hw.write(page.paddr, data)
    page.uptodate = True


def filemap_get_folio(kernel, mapping: File, index: int):
    """The cached page at ``index``, read in if absent (filemap_get_folio + FGP_CREAT)."""
    page = mapping.pages.get(index)
    if page is not None:
        return page
    page = kernel.mem.alloc_page(kind="pagecache")
    page.mapping = mapping
    page.index = index
    read_folio(kernel, mapping, page)
    mapping.pages[index] = page                              # filemap_add_folio
    return page


def delete_from_page_cache(kernel, page) -> None:
    mapping = page.mapping
    if mapping.pages.get(page.index) is not page:
        raise KernelBug(f"{page!r} not in the page cache of {mapping!r}")
    del mapping.pages[page.index]
    page.mapping = None


# -- the fault handlers (vm_ops->fault, vm_ops->page_mkwrite) --------------------------------------

def filemap_fault(vmf) -> int:
    """->fault: find or read the page, return it locked; SIGBUS past EOF."""
    kernel = vmf.kernel
    mapping = vmf.vma.vm_file
    index = vmf.pgoff
    while True:
        max_idx = (mapping.i_size + PAGE_SIZE - 1) >> PAGE_SHIFT
        if index >= max_idx:
            return VM_FAULT_SIGBUS
        cached = mapping.pages.get(index)
        cold = cached is None or not cached.uptodate
        try:
            page = filemap_get_folio(kernel, mapping, index)
        except MemoryError:
            return VM_FAULT_OOM
        if cold and not vmf.write and should_fault_around(vmf):
            # The read drops the mmap lock (maybe_unlock_mmap_for_io) and the fault
            # answers VM_FAULT_RETRY; the retried read fault's fault-around finds the page
            # cached and maps it with its neighbours (one fault to the process).
            ret = do_fault_around(vmf)
            if ret:
                return ret
        lock_page(kernel, page)
        if page.mapping is not mapping:                        # truncated meanwhile: again
            unlock_page(kernel, page)
            continue
        max_idx = (mapping.i_size + PAGE_SIZE - 1) >> PAGE_SHIFT
        if index >= max_idx:
            unlock_page(kernel, page)
            return VM_FAULT_SIGBUS
        vmf.page = page
        return VM_FAULT_LOCKED


def filemap_map_pages(vmf, start_pgoff: int, end_pgoff: int) -> int:
    """->map_pages (mm/filemap.c): map the pages of ``[start_pgoff, end_pgoff]`` that are
    already cached, uptodate and not locked, below EOF, where no PTE is; VM_FAULT_NOPAGE
    if the faulting page was one of them.

    Each is mapped as finish_fault maps a read fault's page (set_pte_range): with
    vm_page_prot, so read-only and clean in a writenotify or private VMA, young; with its
    file rmap. do_fault_around keeps the window within the VMA and one PTE table.
    """
    kernel = vmf.kernel
    hw = kernel.hw
    vma = vmf.vma
    mapping = vma.vm_file
    ret = 0
    ptl = None
    first = True
    for index in sorted(i for i in mapping.pages if start_pgoff <= i <= end_pgoff):
        # next_uptodate_folio
        page = mapping.pages.get(index)
        if page is None or page.mapping is not mapping or not page.uptodate:
            continue
        if not trylock_page(kernel, page):
            continue
        max_idx = (mapping.i_size + PAGE_SIZE - 1) >> PAGE_SHIFT
        if page.mapping is not mapping or not page.uptodate or index >= max_idx:
            unlock_page(kernel, page)
            if index >= max_idx:
                break                                    # beyond EOF: so are the rest
            continue
        if first:
            first = False
            # filemap_map_pmd installs the PTE table do_fault_around preallocated, but
            # Linux 6.18 calls it only when the first folio found is not the one at EOF
            # (file_end >= folio_next_index; shmem always): with no table yet and that
            # folio first, pte_offset_map_lock finds none and nothing is mapped. Measured
            # with realcheck (the fault's own path then installs the table).
            if vmf.pmd_none and not mapping.shmem and index + 1 >= max_idx:
                unlock_page(kernel, page)
                return 0
            vmf.pmd_none = False
        addr = vma.vm_start + ((index - vma.vm_pgoff) << PAGE_SHIFT)
        ptep = pte_offset_map(vma.vm_mm, addr)
        if ptl is None:
            ptl = pte_lock(kernel, ptep)                 # one PTE table: one lock
        # filemap_map_order0_folio: a PTE already there is left alone.
        if pte_none(hw.read_pte(ptep)):
            if addr == vmf.address:
                ret = VM_FAULT_NOPAGE
            else:
                kernel.counters["fault_around_ptes"] += 1
            # set_pte_range for a read fault: vm_page_prot, born young, never W or D.
            page_add_file_rmap(page, vma)
            set_pte_at(hw, ptep, mk_pte(page.pfn, vma.vm_page_prot))
            update_mmu_cache(kernel, vma, addr)
        unlock_page(kernel, page)
    if ptl is not None:
        pte_unlock(kernel, ptl)
    return ret


def filemap_page_mkwrite(vmf, page) -> int:
    """->page_mkwrite: the page is about to become writable; returns it locked and dirty.

    Marking it dirty here (not after the PTE is made writable) means writeback, which takes
    the page lock, either sees it dirty or ran before us (79352894b285, b827e496c893).
    """
    kernel = vmf.kernel
    mapping = vmf.vma.vm_file
    lock_page(kernel, page)
    if page.mapping is not mapping:
        unlock_page(kernel, page)
        return VM_FAULT_NOPAGE
    if kernel.fault_dirty:
        set_page_dirty(page)
    folio_wait_stable(kernel, page)
    return VM_FAULT_LOCKED


# -- read() and write() ----------------------------------------------------------------------------

def filemap_read(kernel, mapping: File, pos: int, count: int) -> bytes:
    if pos >= mapping.i_size or count == 0:
        return b""
    count = min(count, mapping.i_size - pos)
    out = []
    end = pos + count
    while pos < end:
        index, offset = pos >> PAGE_SHIFT, pos & (PAGE_SIZE - 1)
        n = min(PAGE_SIZE - offset, end - pos)
        page = filemap_get_folio(kernel, mapping, index)
        out.append(kernel.hw.read(page.paddr + offset, n))
        pos += n
    return b"".join(out)


def ext4_block_zero_eof(kernel, mapping: File, start: int, end: int) -> None:
    """Zero ``[start, end)`` within the block holding EOF ``start`` (fs/ext4/inode.c).

    What ext4 does before the file grows from ``start``, so that bytes a store through a
    shared mapping left beyond EOF in that block never become file data: ext4_setattr on
    an extending truncate (``end`` unbounded: to the block's end), ext4_write_checks on
    a write that starts beyond EOF (to the write's start). On this host (Linux 6.18,
    ext4, 4 KiB blocks) a byte stored beyond EOF through a MAP_SHARED mapping reads back
    as zero after either, and a store to the page after it takes no fault (nothing was
    write-protected). The zeroing dirties the cached page (mark_buffer_dirty); a page
    not in the cache has zeros on the model's disk beyond EOF already. (ext4 skips an
    unmapped block, a hole, altogether; the model keeps no block map and zeroes it.)
    """
    bsize = mapping.block_size
    offset = start & (bsize - 1)
    if not offset or start >= end:
        return
    length = min(end - start, bsize - offset)
    pos, stop = start, start + length
    while pos < stop:                                    # ext4_block_zero_range
        index, poff = pos >> PAGE_SHIFT, pos & (PAGE_SIZE - 1)
        n = min(PAGE_SIZE - poff, stop - pos)
        page = mapping.pages.get(index)
        if page is not None:
            lock_page(kernel, page)
            if page.mapping is mapping:
                folio_wait_stable(kernel, page)
                kernel.hw.write(page.paddr + poff, bytes(n))
                set_page_dirty(page)
            unlock_page(kernel, page)
        pos += n


def pagecache_isize_extended(kernel, mapping: File, from_: int, to: int) -> None:
    """Update the page cache after i_size grew from ``from_`` to ``to`` (mm/truncate.c).

    Only for blocks smaller than a page: the page straddling the old EOF may get a new
    block (a hole until now) behind it, so its PTEs are write-protected and cleaned
    (folio_mkclean) for page_mkwrite to run on the next store, and if the page is dirty
    its post-EOF range is zeroed before it is exposed to the file. With blocks of a page
    or more there is nothing to do: the page has its whole block already.
    """
    bsize = mapping.block_size
    if to > mapping.i_size:
        raise KernelBug(f"pagecache_isize_extended to {to} beyond i_size {mapping.i_size}")
    if from_ >= to or bsize >= PAGE_SIZE:
        return
    # Page straddling from_ will not have any hole block created?
    rounded_from = (from_ + bsize - 1) & ~(bsize - 1)
    if to <= rounded_from or not rounded_from & (PAGE_SIZE - 1):
        return
    page = mapping.pages.get(from_ >> PAGE_SHIFT)        # filemap_lock_folio
    if page is None:
        return                                           # not cached: nothing to do
    lock_page(kernel, page)
    if page.mapping is not mapping:                      # truncated meanwhile
        unlock_page(kernel, page)
        return
    # See folio_clear_dirty_for_io() for why folio_mark_dirty() is needed.
    if kernel.policy.page_mkclean(kernel, page):
        set_page_dirty(page)
    # The post-EOF range of the folio must be zeroed before it is exposed to the file.
    # Writeback normally does this, but since i_size has been increased we handle it
    # here.
    if page.dirty:
        pos = page.index << PAGE_SHIFT
        offset = from_ - pos
        end = min(to - pos, PAGE_SIZE)
        kernel.hw.write(page.paddr + offset, bytes(end - offset))
    unlock_page(kernel, page)


def generic_perform_write(kernel, mapping: File, pos: int, data: bytes) -> int:
    """write(): copy into the page cache page by page, dirtying each page.

    As ext4_buffered_write_iter: ext4_write_checks first zeroes the EOF block from the
    old EOF to the write if the write starts beyond it; each chunk's write_end
    (ext4_da_do_write_end) moves i_size and calls pagecache_isize_extended if the chunk
    starts beyond the old size.
    """
    if pos > mapping.i_size and not mapping.shmem:
        ext4_block_zero_eof(kernel, mapping, mapping.i_size, pos)
    done = 0
    while done < len(data):
        index, offset = pos >> PAGE_SHIFT, pos & (PAGE_SIZE - 1)
        n = min(PAGE_SIZE - offset, len(data) - done)
        # write_begin: the page, locked and stable
        page = filemap_get_folio(kernel, mapping, index)
        lock_page(kernel, page)
        folio_wait_stable(kernel, page)
        kernel.hw.write(page.paddr + offset, data[done:done + n])
        # write_end
        set_page_dirty(page)
        old_size = mapping.i_size
        if pos + n > mapping.i_size:
            mapping.i_size = pos + n
        unlock_page(kernel, page)
        if old_size < pos:
            pagecache_isize_extended(kernel, mapping, old_size, pos)
        balance_dirty_pages_ratelimited(kernel, mapping)
        pos += n
        done += n
    return done


# -- truncation ---------------------------------------------------------------------------------

def truncate_inode_pages(kernel, mapping: File, lstart: int) -> None:
    """Drop the pages wholly beyond ``lstart``; zero the tail of the partial page."""
    start = (lstart + PAGE_SIZE - 1) >> PAGE_SHIFT
    for index in sorted(i for i in mapping.pages if i >= start):
        page = mapping.pages.get(index)
        if page is None:
            continue
        lock_page(kernel, page)
        folio_wait_writeback(kernel, page)
        if page.mapcount:                         # a fault raced with the first unmap
            unmap_mapping_range(kernel, mapping, index << PAGE_SHIFT, PAGE_SIZE, True)
        folio_cancel_dirty(page)                  # truncate_cleanup_folio
        delete_from_page_cache(kernel, page)
        unlock_page(kernel, page)
        kernel.mem.free_page(page)
    partial = lstart & (PAGE_SIZE - 1)
    if partial:
        page = mapping.pages.get(lstart >> PAGE_SHIFT)
        if page is not None:
            lock_page(kernel, page)
            folio_wait_writeback(kernel, page)
            kernel.hw.write(page.paddr + partial, bytes(PAGE_SIZE - partial))
            unlock_page(kernel, page)


def truncate_pagecache(kernel, mapping: File, newsize: int) -> None:
    holebegin = PAGE_ALIGN(newsize)
    unmap_mapping_range(kernel, mapping, holebegin, 0, True)
    truncate_inode_pages(kernel, mapping, newsize)
    unmap_mapping_range(kernel, mapping, holebegin, 0, True)


def truncate_setsize(kernel, mapping: File, newsize: int) -> None:
    """ftruncate's work (ext4_setattr, truncate_setsize): new i_size, page cache and
    mappings cut, the disk file resized. Growing, the old EOF block's tail is zeroed
    first (ext4_block_zero_eof) and then pagecache_isize_extended runs."""
    oldsize = mapping.i_size
    if newsize > oldsize and not mapping.shmem:
        # ext4_setattr, before the new size: zero the old EOF block's tail.
        ext4_block_zero_eof(kernel, mapping, oldsize, LLONG_MAX)
    mapping.i_size = newsize
    if newsize > oldsize:
        pagecache_isize_extended(kernel, mapping, oldsize, newsize)
    truncate_pagecache(kernel, mapping, newsize)
    if mapping.fd is not None:
        os.ftruncate(mapping.fd, newsize)
        mapping.disk_size = newsize


# -- reclaim --------------------------------------------------------------------------------------

def shrink_page_cache(kernel, want: int) -> int:
    """Free up to ``want`` clean, unmapped, idle page-cache pages (a crude shrink_folio_list)."""
    freed = 0
    for mapping in list(kernel.files.values()):
        for index, page in list(mapping.pages.items()):
            if freed >= want:
                return freed
            if page.dirty or page.writeback or page.locked or page.mapcount:
                continue
            delete_from_page_cache(kernel, page)
            kernel.mem.free_page(page)
            freed += 1
    return freed

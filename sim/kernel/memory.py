"""Page faults, unmapping and fork's page-table copy (mm/memory.c).

Each fault path is written as the sequence of steps the real one is, around the points
where it takes and drops the PTE lock and the page lock (see locking.py): a later scheduler
can interleave paths exactly there.
"""

import errno

from mkclean.sim.hw.seam import KernelEvent

from .constants import (FAULT_FLAG_WRITE, PAGE_MASK, PAGE_SHIFT, PAGE_SIZE, PGDIR_SHIFT,
                        PMD_SHIFT, PMD_SIZE, PTRS_PER_PTE, VM_ACCESS_FLAGS, VM_FAULT_ERROR,
                        VM_FAULT_LOCKED, VM_FAULT_NOPAGE, VM_FAULT_OOM, VM_FAULT_RETRY,
                        VM_FAULT_SIGSEGV, VM_MAYSHARE, VM_MIXEDMAP, VM_PFNMAP, VM_SHARED,
                        VM_WRITE)
from .errors import KernelBug
from .locking import lock_page, pte_lock, pte_unlock, unlock_page
from .mm import (anon_vma_prepare, is_cow_mapping, linear_page_index, vma_is_anonymous,
                 vma_needs_copy, vmas_in_range)
from .mmu_gather import MmuGather
from .pgtable import (for_each_pte, free_pmd_table, free_pte_table, maybe_mkwrite, mk_pte,
                      pmd_addr_end, pte_alloc, pte_dirty, pte_mkclean, pte_mkdirty, pte_mkold,
                      pte_mkwrite, pte_mkyoung, pte_none, pte_offset_map, pte_pfn, pte_present,
                      pte_protnone, pte_write, pte_wrprotect, ptep_get_and_clear,
                      ptep_set_access_flags, ptep_set_wrprotect, set_pte_at)
from .rmap import (folio_move_anon_rmap, folio_try_dup_anon_rmap, page_add_file_rmap,
                   page_add_new_anon_rmap, page_dup_rmap, page_remove_rmap, ptep_clear_flush)
from .tlbflush import flush_tlb_fix_spurious_fault, update_mmu_cache
from .writeback import balance_dirty_pages_ratelimited, set_page_dirty


class Vmf:
    """``struct vm_fault``: one fault in progress."""

    __slots__ = ("kernel", "vma", "address", "real_address", "flags", "pgoff", "ptep",
                 "orig_pte", "ptl", "page", "cow_page", "pmd_none")

    def __init__(self, kernel, vma, address: int, flags: int):
        self.kernel = kernel
        self.vma = vma
        self.real_address = address
        self.address = address & PAGE_MASK
        self.flags = flags
        self.pgoff = linear_page_index(vma, self.address)
        self.ptep = None
        self.orig_pte = 0
        self.ptl = None
        self.page = None
        self.cow_page = None
        #: Whether Linux would still have no PTE table here (pmd_none): none before the
        #: fault, and none installed yet by fault-around or finish_fault. The model
        #: allocates the table at once (pte_alloc); fault-around's table install depends
        #: on it (filemap_map_pages).
        self.pmd_none = False

    @property
    def write(self) -> bool:
        return bool(self.flags & FAULT_FLAG_WRITE)


def count_vm_event(kernel, what: str, vma=None) -> None:
    """One more fault of kind ``what`` in the ``faults`` counter (the vm_event counters).

    Called where each fault path ends, so it is also where the kernel's coverage hook
    (``kernel.coverage``, see Kernel) learns which path ran on which ``vma``.
    """
    faults = kernel.counters["faults"]
    faults[what] = faults.get(what, 0) + 1
    if kernel.coverage is not None:
        kernel.coverage.fault(kernel, vma, what)


def vm_normal_page(kernel, vma, addr: int, pte: int):
    """The struct page a PTE maps, or None for the zero page and PFN mappings."""
    pfn = pte_pfn(pte)
    if vma.vm_flags & (VM_PFNMAP | VM_MIXEDMAP):
        return None
    if pfn == kernel.mem.zero_page.pfn:
        return None
    return kernel.mem.pfn_to_page(pfn)


# -- the entry: handle_mm_fault -> handle_pte_fault -----------------------------------------------

def handle_mm_fault(kernel, vma, address: int, flags: int) -> int:
    vmf = Vmf(kernel, vma, address, flags)
    vmf.pmd_none = pte_offset_map(vma.vm_mm, vmf.address) is None
    try:
        vmf.ptep = pte_alloc(vma.vm_mm, vmf.address)         # __handle_mm_fault: pmd, pte table
    except MemoryError:
        return VM_FAULT_OOM
    ret = handle_pte_fault(vmf)
    if ret & VM_FAULT_ERROR and vmf.pmd_none and not vma_is_anonymous(vma):
        pte_free_unused(kernel, vma.vm_mm, vmf.address)
    return ret


def pte_free_unused(kernel, mm, addr: int) -> None:
    """Take back the PTE table handle_mm_fault allocated for a file fault that failed
    before installing anything: Linux allocates it only to install it (do_fault_around's
    prealloc_pte through filemap_map_pmd, finish_fault), so a SIGBUS leaves none, and the
    next fault there finds pmd_none. No walk can have used the new entry (the faulting
    access is not retried), so it goes without an sfence."""
    key = addr >> PMD_SHIFT
    table = mm.pte_tables[key]
    if any(kernel.hw.read_pte(table + 8 * i) for i in range(PTRS_PER_PTE)):
        raise KernelBug(f"the PTE table of a failed fault at {addr:#x} is not empty")
    kernel.mem.free_pgtable(free_pte_table(mm, key))


def populate_vma_page_range(kernel, vma, start: int, end: int) -> int:
    """Fault ``[start, end)`` of one VMA in as get_user_pages does (mm/gup.c): a private
    writable mapping with write faults (FOLL_WRITE, to break COW: also where a read-only
    PTE is already present, a file page or a page shared since fork), anything else with
    read faults where no PTE is present. An inaccessible VMA gets no FOLL_FORCE and fails;
    so does a page whose fault fails (SIGBUS beyond EOF). Returns 0, or the errno of the
    first page that could not be faulted in (EFAULT; ENOMEM out of memory)."""
    if not vma.vm_flags & VM_ACCESS_FLAGS:
        return errno.EFAULT
    write = (vma.vm_flags & (VM_WRITE | VM_SHARED)) == VM_WRITE
    hw = kernel.hw
    for addr in range(start, end, PAGE_SIZE):
        ptep = pte_offset_map(vma.vm_mm, addr)
        pte = hw.read_pte(ptep) if ptep is not None else 0
        if pte and (not write or pte_write(pte)):
            continue
        fault = handle_mm_fault(kernel, vma, addr, FAULT_FLAG_WRITE if write else 0)
        if fault & VM_FAULT_ERROR:
            return errno.ENOMEM if fault & VM_FAULT_OOM else errno.EFAULT
    return 0


def handle_pte_fault(vmf: Vmf) -> int:
    kernel = vmf.kernel
    hw = kernel.hw
    vmf.orig_pte = hw.read_pte(vmf.ptep)                     # lockless look first
    if pte_none(vmf.orig_pte):
        if vma_is_anonymous(vmf.vma):
            return do_anonymous_page(vmf)
        return do_fault(vmf)
    if pte_protnone(vmf.orig_pte):
        return VM_FAULT_SIGSEGV                              # no NUMA hinting in this model
    vmf.ptl = pte_lock(kernel, vmf.ptep)
    entry = hw.read_pte(vmf.ptep)
    if entry != vmf.orig_pte:                                # changed under us: retry
        pte_unlock(kernel, vmf.ptl)
        return 0
    if vmf.write:
        if not pte_write(entry):
            return do_wp_page(vmf)                           # drops the PTE lock
        entry = pte_mkdirty(entry)
    entry = pte_mkyoung(entry)
    if ptep_set_access_flags(hw, vmf.ptep, vmf.orig_pte, entry):
        # Svade: the kernel sets A (and D for a store) that the hardware would not.
        if vmf.write and not pte_dirty(vmf.orig_pte):
            count_vm_event(kernel, "svade_dirty", vmf.vma)
        else:
            count_vm_event(kernel, "svade_access", vmf.vma)
        update_mmu_cache(kernel, vmf.vma, vmf.address)
    else:
        # Nothing to change: a stale, less permissive TLB entry made the access fault.
        count_vm_event(kernel, "spurious", vmf.vma)
        flush_tlb_fix_spurious_fault(kernel, vmf.vma, vmf.address)
    pte_unlock(kernel, vmf.ptl)
    return 0


# -- no PTE yet: anonymous memory ------------------------------------------------------------------

def do_anonymous_page(vmf: Vmf) -> int:
    kernel = vmf.kernel
    vma = vmf.vma
    hw = kernel.hw
    if not vmf.write:
        # Map the zero page read-only.
        entry = pte_wrprotect(mk_pte(kernel.mem.zero_page.pfn, vma.vm_page_prot))
        vmf.ptl = pte_lock(kernel, vmf.ptep)
        if not pte_none(hw.read_pte(vmf.ptep)):
            pte_unlock(kernel, vmf.ptl)
            return 0
        set_pte_at(hw, vmf.ptep, entry)
        update_mmu_cache(kernel, vma, vmf.address)
        pte_unlock(kernel, vmf.ptl)
        count_vm_event(kernel, "anon_zero", vmf.vma)
        return 0
    anon_vma_prepare(vma)
    try:
        page = kernel.mem.alloc_page(zero=True, kind="anon")
    except MemoryError:
        return VM_FAULT_OOM
    entry = mk_pte(page.pfn, vma.vm_page_prot)
    if vma.vm_flags & VM_WRITE:
        entry = pte_mkwrite(pte_mkdirty(entry))
    vmf.ptl = pte_lock(kernel, vmf.ptep)
    if not pte_none(hw.read_pte(vmf.ptep)):
        pte_unlock(kernel, vmf.ptl)
        kernel.mem.free_page(page)
        return 0
    page_add_new_anon_rmap(page, vma, vmf.address)
    set_pte_at(hw, vmf.ptep, entry)
    update_mmu_cache(kernel, vma, vmf.address)
    pte_unlock(kernel, vmf.ptl)
    count_vm_event(kernel, "anon", vmf.vma)
    return 0


# -- no PTE yet: file pages -------------------------------------------------------------------------

def do_fault(vmf: Vmf) -> int:
    vmf.kernel.event(KernelEvent.DO_FAULT, vmf.real_address)
    if not vmf.write:
        return do_read_fault(vmf)
    if not vmf.vma.vm_flags & VM_SHARED:
        return do_cow_fault(vmf)
    return do_shared_fault(vmf)


def __do_fault(vmf: Vmf) -> int:
    """->fault: the page comes back locked (VM_FAULT_LOCKED) in vmf.page."""
    ret = vmf.vma.vm_ops.fault(vmf)
    if ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY):
        return ret
    if not ret & VM_FAULT_LOCKED:
        lock_page(vmf.kernel, vmf.page)
        ret |= VM_FAULT_LOCKED
    return ret


def set_pte_range(vmf: Vmf, page) -> None:
    """Install the PTE for ``page`` (under the PTE lock): read-only and clean in a
    writenotify VMA for a read fault (vm_page_prot has no W); writable and dirty for a
    write fault."""
    kernel = vmf.kernel
    vma = vmf.vma
    entry = mk_pte(page.pfn, vma.vm_page_prot)          # born young (A=1)
    if vmf.write:
        entry = maybe_mkwrite(pte_mkdirty(entry), vma)
    if vmf.write and not vma.vm_flags & VM_SHARED:
        page_add_new_anon_rmap(page, vma, vmf.address)
    else:
        page_add_file_rmap(page, vma)
    set_pte_at(kernel.hw, vmf.ptep, entry)
    update_mmu_cache(kernel, vma, vmf.address)


def finish_fault(vmf: Vmf) -> int:
    kernel = vmf.kernel
    if vmf.write and not vmf.vma.vm_flags & VM_SHARED:
        page = vmf.cow_page
    else:
        page = vmf.page
    vmf.pmd_none = False                                # the fault's own table is in
    vmf.ptl = pte_lock(kernel, vmf.ptep)
    if not pte_none(kernel.hw.read_pte(vmf.ptep)):      # someone else mapped it first
        pte_unlock(kernel, vmf.ptl)
        return VM_FAULT_NOPAGE
    set_pte_range(vmf, page)
    pte_unlock(kernel, vmf.ptl)
    return 0


def should_fault_around(vmf: Vmf) -> bool:
    """Whether a read fault first maps the cached pages around it (mm/memory.c)."""
    # No ->map_pages? No way to fault around...
    if vmf.vma.vm_ops.map_pages is None:
        return False
    # A single page implies no faulting 'around' at all.
    return vmf.kernel.fault_around_pages > 1


def do_fault_around(vmf: Vmf) -> int:
    """->map_pages over the fault-around window: ``fault_around_pages`` PTEs aligned down
    around the fault, clamped to the VMA and to the PTE table (mm/memory.c).

    VM_FAULT_NOPAGE if that mapped the faulting page (the fault is done), else 0.
    """
    vma = vmf.vma
    nr_pages = vmf.kernel.fault_around_pages
    pte_off = (vmf.address >> PAGE_SHIFT) & (PTRS_PER_PTE - 1)     # pte_index
    # The page offset of vmf.address within the VMA.
    vma_off = vmf.pgoff - vma.vm_pgoff
    # The PTE offset of the start address, clamped to the VMA.
    from_pte = max(pte_off & ~(nr_pages - 1), pte_off - min(pte_off, vma_off))
    # The PTE offset of the end address, clamped to the VMA and PTE.
    vma_pages = (vma.vm_end - vma.vm_start) >> PAGE_SHIFT
    to_pte = min(from_pte + nr_pages, PTRS_PER_PTE, pte_off + vma_pages - vma_off) - 1
    # (The PTE table exists: handle_mm_fault allocated it, as do_fault_around's
    # prealloc_pte would.)
    return vma.vm_ops.map_pages(vmf, vmf.pgoff + from_pte - pte_off,
                                vmf.pgoff + to_pte - pte_off)


def do_read_fault(vmf: Vmf) -> int:
    """A load with no PTE in a file mapping: fault-around first, then ->fault.

    Let's call ->map_pages() first and use ->fault() as fallback if the page at the
    offset is not ready to be mapped (cold cache or something).
    """
    kernel = vmf.kernel
    if should_fault_around(vmf):
        ret = do_fault_around(vmf)
        if ret:
            count_vm_event(kernel, "read", vmf.vma)
            return ret
    ret = __do_fault(vmf)                                # page locked
    if ret & VM_FAULT_NOPAGE and not ret & VM_FAULT_ERROR:
        count_vm_event(kernel, "read", vmf.vma)          # the retried fault-around mapped it
        return ret
    if ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY):
        return ret
    ret |= finish_fault(vmf)
    unlock_page(kernel, vmf.page)
    count_vm_event(kernel, "read", vmf.vma)
    return ret & ~VM_FAULT_LOCKED


def do_cow_fault(vmf: Vmf) -> int:
    """A store to a private file mapping with no PTE: copy the file page into a new anon page."""
    kernel = vmf.kernel
    anon_vma_prepare(vmf.vma)
    try:
        vmf.cow_page = kernel.mem.alloc_page(kind="anon")
    except MemoryError:
        return VM_FAULT_OOM
    ret = __do_fault(vmf)
    if ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY):
        kernel.mem.free_page(vmf.cow_page)
        return ret
    kernel.mem.copy_page(vmf.cow_page, vmf.page)         # copy_user_highpage
    ret |= finish_fault(vmf)
    unlock_page(kernel, vmf.page)
    if ret & VM_FAULT_NOPAGE:
        kernel.mem.free_page(vmf.cow_page)
    count_vm_event(kernel, "cow", vmf.vma)
    return ret & ~VM_FAULT_LOCKED


def do_shared_fault(vmf: Vmf) -> int:
    """A store to a shared file mapping with no PTE: map writable + dirty, dirty the page."""
    kernel = vmf.kernel
    vma = vmf.vma
    ret = __do_fault(vmf)                                # page locked
    if ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY):
        return ret
    page = vmf.page
    # Check if the backing address space wants to know that the page is about to become
    # writable.
    if vma.vm_ops.page_mkwrite is not None:
        unlock_page(kernel, page)
        tmp = do_page_mkwrite(vmf, page)                 # returns with the page locked
        if tmp & (VM_FAULT_ERROR | VM_FAULT_NOPAGE):
            return tmp
    ret |= finish_fault(vmf)
    if ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY):
        unlock_page(kernel, page)
        return ret
    ret |= fault_dirty_shared_page(vmf)                  # set dirty, unlock the page
    count_vm_event(kernel, "shared", vmf.vma)
    return ret & ~VM_FAULT_LOCKED


def do_page_mkwrite(vmf: Vmf, page) -> int:
    """Tell the file that ``page`` is about to become writable; returns with it locked."""
    kernel = vmf.kernel
    ret = vmf.vma.vm_ops.page_mkwrite(vmf, page)
    if ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE):
        return ret
    if not ret & VM_FAULT_LOCKED:
        lock_page(kernel, page)
        if page.mapping is None:
            unlock_page(kernel, page)
            return VM_FAULT_NOPAGE
        ret |= VM_FAULT_LOCKED
    kernel.counters["page_mkwrite"] += 1
    return ret


def fault_dirty_shared_page(vmf: Vmf) -> int:
    """Mark the (locked) page dirty and unlock it; then throttle the dirtier.

    79352894b285: the page is dirtied under the page lock, so clear_page_dirty_for_io
    (which holds it) cannot run between the PTE becoming writable and the page dirty.
    """
    kernel = vmf.kernel
    page = vmf.page
    mapping = page.mapping
    dirtied = set_page_dirty(page) if kernel.fault_dirty else False
    has_mkwrite = vmf.vma.vm_ops.page_mkwrite is not None
    unlock_page(kernel, page)
    if (dirtied or has_mkwrite) and mapping is not None:
        balance_dirty_pages_ratelimited(kernel, mapping)
    return 0


# -- a PTE without W: do_wp_page --------------------------------------------------------------------

def do_wp_page(vmf: Vmf) -> int:
    """A store hit a present read-only PTE; called with the PTE lock held, drops it."""
    kernel = vmf.kernel
    kernel.event(KernelEvent.DO_WP_PAGE, vmf.real_address)
    vma = vmf.vma
    vmf.page = vm_normal_page(kernel, vma, vmf.address, vmf.orig_pte)
    if vma.vm_flags & (VM_SHARED | VM_MAYSHARE):
        if vmf.page is None:
            return wp_pfn_shared(vmf)
        return wp_page_shared(vmf)
    page = vmf.page
    # Private mapping: reuse the page if it is marked exclusive (without further checks),
    # or if wp_can_reuse_anon_folio finds no other user; mark it exclusive then.
    if page is not None and page.PageAnon() and (page.anon_exclusive
                                                  or wp_can_reuse_anon_folio(page, vma)):
        page.anon_exclusive = True                       # SetPageAnonExclusive
        wp_page_reuse(vmf)
        count_vm_event(kernel, "wp_reuse", vmf.vma)
        return 0
    pte_unlock(kernel, vmf.ptl)
    return wp_page_copy(vmf)


def wp_can_reuse_anon_folio(page, vma) -> bool:
    """Whether a write fault may reuse a non-exclusive anonymous page: no one else holds
    it (Linux: folio_ref_count() == 1 under the folio lock; the model's stand-in is
    mapcount == 1 and the page not locked, i.e. folio_trylock succeeding), after which
    the page moves to this VMA's anon_vma (folio_move_anon_rmap)."""
    if page.mapcount != 1:
        return False
    if page.locked:                                      # !folio_trylock
        return False
    folio_move_anon_rmap(page, vma)
    return True


def wp_page_reuse(vmf: Vmf) -> None:
    """Make the PTE writable, young and dirty; drops the PTE lock."""
    kernel = vmf.kernel
    entry = pte_mkyoung(vmf.orig_pte)
    entry = maybe_mkwrite(pte_mkdirty(entry), vmf.vma)
    if ptep_set_access_flags(kernel.hw, vmf.ptep, vmf.orig_pte, entry):
        update_mmu_cache(kernel, vmf.vma, vmf.address)
    pte_unlock(kernel, vmf.ptl)


def finish_mkwrite_fault(vmf: Vmf) -> int:
    """Take the PTE lock again after page_mkwrite; NOPAGE if the PTE changed meanwhile."""
    kernel = vmf.kernel
    vmf.ptl = pte_lock(kernel, vmf.ptep)
    if kernel.hw.read_pte(vmf.ptep) != vmf.orig_pte:
        pte_unlock(kernel, vmf.ptl)
        return VM_FAULT_NOPAGE
    return 0


def wp_page_shared(vmf: Vmf) -> int:
    """The store page fault of the patch: a clean shared page becomes writable and dirty."""
    kernel = vmf.kernel
    vma = vmf.vma
    page = vmf.page
    ret = 0
    if vma.vm_ops is not None and vma.vm_ops.page_mkwrite is not None:
        pte_unlock(kernel, vmf.ptl)
        tmp = do_page_mkwrite(vmf, page)                 # returns with the page locked
        if tmp & (VM_FAULT_ERROR | VM_FAULT_NOPAGE):
            return tmp
        tmp = finish_mkwrite_fault(vmf)
        if tmp & VM_FAULT_NOPAGE:
            unlock_page(kernel, page)
            return tmp
        wp_page_reuse(vmf)                               # drops the PTE lock
    else:
        wp_page_reuse(vmf)
        lock_page(kernel, page)
    ret |= fault_dirty_shared_page(vmf)                  # unlocks the page
    count_vm_event(kernel, "wp_shared", vmf.vma)
    return ret


def wp_pfn_shared(vmf: Vmf) -> int:
    """A shared PFN mapping: no struct page, nothing to account; just make it writable."""
    wp_page_reuse(vmf)
    count_vm_event(vmf.kernel, "wp_pfn", vmf.vma)
    return 0


def wp_page_copy(vmf: Vmf) -> int:
    """Copy on write: a private copy replaces the shared (or zero, or file) page."""
    kernel = vmf.kernel
    vma = vmf.vma
    hw = kernel.hw
    old_page = vmf.page
    anon_vma_prepare(vma)
    try:
        new_page = kernel.mem.alloc_page(zero=old_page is None, kind="anon")
    except MemoryError:
        return VM_FAULT_OOM
    if old_page is not None:
        kernel.mem.copy_page(new_page, old_page)         # cow_user_page
    vmf.ptl = pte_lock(kernel, vmf.ptep)
    if hw.read_pte(vmf.ptep) != vmf.orig_pte:
        pte_unlock(kernel, vmf.ptl)
        kernel.mem.free_page(new_page)
        return 0
    entry = mk_pte(new_page.pfn, vma.vm_page_prot)
    entry = maybe_mkwrite(pte_mkdirty(entry), vma)
    ptep_clear_flush(kernel, vma, vmf.address, vmf.ptep)
    page_add_new_anon_rmap(new_page, vma, vmf.address)
    set_pte_at(hw, vmf.ptep, entry)
    update_mmu_cache(kernel, vma, vmf.address)
    if old_page is not None:
        page_remove_rmap(kernel, old_page)
        if old_page.PageAnon() and old_page.mapcount == 0:
            kernel.mem.free_page(old_page)               # flushed above
    pte_unlock(kernel, vmf.ptl)
    count_vm_event(kernel, "wp_copy", vmf.vma)
    return 0


# -- unmapping: zap_pte_range and friends -----------------------------------------------------------

class ZapDetails:
    """struct zap_details: only the pages of ``mapping``, COWed copies too if ``even_cows``."""

    def __init__(self, mapping=None, even_cows: bool = True):
        self.mapping = mapping
        self.even_cows = even_cows


def zap_pte_range(tlb: MmuGather, vma, addr: int, end: int, details=None) -> None:
    """Clear the PTEs of ``[addr, end)`` within one PTE table.

    A dirty PTE's dirtiness moves to its page (set_page_dirty). If one was dirty, the TLB
    is flushed before the PTE lock is dropped (1cf35d47712d) and the page's rmap removed
    only after that flush (delayed rmap), so that page_mkclean cannot miss a stale
    writable translation.
    """
    kernel = tlb.kernel
    hw = kernel.hw
    start_pte = pte_offset_map(vma.vm_mm, addr)
    if start_pte is None:
        return
    ptl = pte_lock(kernel, start_pte)
    force_flush = False
    for ptep, a in for_each_pte(start_pte, addr, end):
        ptent = hw.read_pte(ptep)
        if pte_none(ptent):
            continue
        page = vm_normal_page(kernel, vma, a, ptent)
        if details is not None and page is not None:
            if page.PageAnon():
                if not details.even_cows:
                    continue
            elif page.mapping is not details.mapping:
                continue
        ptent = ptep_get_and_clear(hw, ptep)
        tlb.tlb_remove_tlb_entry(a)
        if page is None:
            continue
        if not page.PageAnon():
            if pte_dirty(ptent):
                set_page_dirty(page)
                force_flush = True
                tlb.delayed_rmap.append(page)
                tlb.tlb_remove_page(page)
                continue
        page_remove_rmap(kernel, page)
        tlb.tlb_remove_page(page)
    if force_flush:
        tlb.tlb_flush_mmu_tlbonly()                     # before the PTE lock goes
    pte_unlock(kernel, ptl)
    if force_flush:
        tlb.tlb_flush_rmaps()


def unmap_page_range(tlb: MmuGather, vma, start: int, end: int, details=None) -> None:
    addr = start
    while addr < end:
        next_ = pmd_addr_end(addr, end)
        zap_pte_range(tlb, vma, addr, next_, details)
        addr = next_


def zap_page_range_single(kernel, vma, start: int, end: int, details=None) -> None:
    tlb = MmuGather(kernel, vma.vm_mm)
    unmap_page_range(tlb, vma, start, end, details)
    tlb.tlb_finish_mmu()


def unmap_mapping_range(kernel, mapping, holebegin: int, holelen: int, even_cows: bool) -> None:
    """Unmap the file range ``[holebegin, holebegin + holelen)`` (0: to the end) from every VMA."""
    first = holebegin >> PAGE_SHIFT
    last = None if holelen == 0 else (holebegin + holelen - 1) >> PAGE_SHIFT
    details = ZapDetails(mapping, even_cows)
    for vma in list(mapping.i_mmap):
        vstart, vend = vma.vm_pgoff, vma.vm_pgoff + ((vma.vm_end - vma.vm_start) >> PAGE_SHIFT)
        lo = max(first, vstart)
        hi = vend if last is None else min(last + 1, vend)
        if lo >= hi:
            continue
        zap_page_range_single(kernel, vma,
                              vma.vm_start + ((lo - vstart) << PAGE_SHIFT),
                              vma.vm_start + ((hi - vstart) << PAGE_SHIFT), details)


def free_pgtables(tlb: MmuGather, mm, start: int, end: int) -> None:
    """Free the PTE (and PMD) tables no VMA needs any more in ``[start, end)``."""
    kernel = tlb.kernel
    hw = kernel.hw
    first, last = start >> PMD_SHIFT, (end - 1) >> PMD_SHIFT
    for key in [k for k in mm.pte_tables if first <= k <= last]:
        lo = key << PMD_SHIFT
        if vmas_in_range(mm, lo, lo + PMD_SIZE):
            continue
        for ptep, a in for_each_pte(mm.pte_tables[key], lo, lo + PMD_SIZE):
            if hw.read_pte(ptep):
                raise KernelBug(f"freeing a PTE table with a live entry at {a:#x}")
        tlb.tables.append(free_pte_table(mm, key))
        tlb.freed_tables = True
    gfirst, glast = start >> PGDIR_SHIFT, (end - 1) >> PGDIR_SHIFT
    for gkey in [k for k in mm.pmd_tables if gfirst <= k <= glast]:
        if any(k >> (PGDIR_SHIFT - PMD_SHIFT) == gkey for k in mm.pte_tables):
            continue
        tlb.tables.append(free_pmd_table(mm, gkey))
        tlb.freed_tables = True


# -- fork: copy_page_range -----------------------------------------------------------------------

def copy_present_pte(kernel, dst_vma, src_vma, dst_ptep: int, src_ptep: int, addr: int) -> bool:
    """Copy one present PTE into the child; True if the parent's PTE was write-protected."""
    hw = kernel.hw
    pte = hw.read_pte(src_ptep)
    page = vm_normal_page(kernel, src_vma, addr, pte)
    if page is not None:
        if page.PageAnon():
            # The child shares the page: neither mm has it exclusive any more
            # (folio_try_dup_anon_rmap_pte clears PageAnonExclusive).
            folio_try_dup_anon_rmap(page)
        else:
            page_dup_rmap(page)                          # folio_dup_file_rmap_pte
    wrprotected = False
    # A COW mapping: write-protect both the parent and the child. The parent's PTE with an
    # atomic AND, so that a D the hardware set meanwhile survives (018e9828eb52).
    if is_cow_mapping(src_vma.vm_flags) and pte_write(pte):
        pte = ptep_set_wrprotect(hw, src_ptep)
        pte = pte_wrprotect(pte)
        wrprotected = True
    # A shared mapping: the child's PTE starts clean.
    if src_vma.vm_flags & VM_SHARED:
        pte = pte_mkclean(pte)
    pte = pte_mkold(pte)
    set_pte_at(hw, dst_ptep, pte)
    return wrprotected


def copy_pte_range(kernel, dst_vma, src_vma, addr: int, end: int) -> bool:
    """Copy the present PTEs of ``[addr, end)``, within one PTE table, into the child;
    True if any parent PTE lost W."""
    src_pte = pte_offset_map(src_vma.vm_mm, addr)
    if src_pte is None:
        return False
    hw = kernel.hw
    dst_mm = dst_vma.vm_mm
    wrprotected = False
    src_ptl = None
    dst_ptl = None
    for src_ptep, a in for_each_pte(src_pte, addr, end):
        if not pte_present(hw.read_pte(src_ptep)):
            continue
        dst_ptep = pte_alloc(dst_mm, a)
        if dst_ptl is None:
            dst_ptl = pte_lock(kernel, dst_ptep)
            src_ptl = pte_lock(kernel, src_ptep)
        if copy_present_pte(kernel, dst_vma, src_vma, dst_ptep, src_ptep, a):
            wrprotected = True
    if dst_ptl is not None:
        pte_unlock(kernel, src_ptl)
        pte_unlock(kernel, dst_ptl)
    return wrprotected


def copy_page_range(kernel, dst_vma, src_vma) -> bool:
    """Copy the parent's PTEs of one VMA; True if any parent PTE lost W (flush needed)."""
    if not vma_needs_copy(dst_vma, src_vma):
        return False
    wrprotected = False
    addr = src_vma.vm_start
    while addr < src_vma.vm_end:
        next_ = pmd_addr_end(addr, src_vma.vm_end)
        if copy_pte_range(kernel, dst_vma, src_vma, addr, next_):
            wrprotected = True
        addr = next_
    return wrprotected

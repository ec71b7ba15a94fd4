"""mm_struct, vm_area_struct and the VMA helpers (include/linux/mm_types.h, mm/vma.c, mm/mmap.c).

The writenotify decision lives here: :func:`vma_wants_writenotify` and
:func:`vma_set_page_prot`, which map a shared writable VMA read-only so that the first
store to each clean page faults.
"""

import bisect

from .constants import (MMAP_MIN_ADDR, PAGE_SHIFT, PAGE_SIZE, TASK_SIZE, TASK_UNMAPPED_BASE,
                        VM_MAYWRITE, VM_MIXEDMAP, VM_PFNMAP, VM_SHARED, VM_SOFTDIRTY, VM_UFFD_WP,
                        VM_WRITE)
from .errors import KernelBug
from .pgtable import vm_get_page_prot


class AnonVma:
    """The anon_vma of 2.6.19 (one per family of VMAs a fork shares): who may map an anon page."""

    __slots__ = ("vmas",)

    def __init__(self):
        self.vmas = []

    def __repr__(self) -> str:
        return f"<AnonVma {len(self.vmas)} vmas>"


class Vma:
    """``struct vm_area_struct``.

    Attributes
    ----------
    vm_mm : MmStruct
    vm_start, vm_end : int
        ``[vm_start, vm_end)``, page-aligned.
    vm_flags : int
        VM_READ, VM_WRITE, VM_EXEC, VM_SHARED, VM_MAY*, VM_PFNMAP, VM_LOCKED ...
    vm_page_prot : int
        The PTE protection bits new PTEs get (without W for a writenotify VMA).
    vm_file : File or None
        The mapped file (a shmem file for MAP_SHARED|MAP_ANONYMOUS).
    vm_pgoff : int
        File offset of vm_start, in pages (vm_start >> 12 for an anonymous VMA).
    anon_vma : AnonVma or None
    """

    __slots__ = ("vm_mm", "vm_start", "vm_end", "vm_flags", "vm_page_prot", "vm_file",
                 "vm_pgoff", "anon_vma")

    def __init__(self, mm, start: int, end: int, flags: int, file=None, pgoff: int = 0):
        self.vm_mm = mm
        self.vm_start = start
        self.vm_end = end
        self.vm_flags = flags
        self.vm_file = file
        self.vm_pgoff = pgoff
        self.vm_page_prot = vm_get_page_prot(flags)
        self.anon_vma = None

    @property
    def vm_ops(self):
        return self.vm_file.vm_ops if self.vm_file is not None else None

    def __repr__(self) -> str:
        name = self.vm_file.name if self.vm_file is not None else "anon"
        return (f"<Vma {self.vm_start:#x}-{self.vm_end:#x} flags={self.vm_flags:#x} "
                f"prot={self.vm_page_prot:#x} {name}+{self.vm_pgoff}>")


class MmStruct:
    """``struct mm_struct``: the VMAs, the page tables (in hardware memory) and the ASID.

    Attributes
    ----------
    kernel : Kernel
    pgd : int
        Physical address of the root table (satp.ppn << 12).
    asid : int
    vmas : list[Vma]
        Sorted by vm_start, never overlapping.
    pte_tables : dict[int, int]
        addr >> 21 -> physical address of the PTE table the PMD entry points to.
    pmd_tables : dict[int, int]
        addr >> 30 -> physical address of the PMD table the PGD entry points to.
    """

    def __init__(self, kernel, pgd: int, asid: int):
        self.kernel = kernel
        self.pgd = pgd
        self.asid = asid
        self.vmas: list[Vma] = []
        self._ends: list[int] = []
        self.pte_tables: dict[int, int] = {}
        self.pmd_tables: dict[int, int] = {}
        self.dead = False

    def __repr__(self) -> str:
        return f"<MmStruct asid={self.asid} {len(self.vmas)} vmas>"

    # -- the VMA tree (a sorted list here) -------------------------------------------------------

    def _reindex(self) -> None:
        self._ends = [v.vm_end for v in self.vmas]

    def vma_insert(self, vma: Vma) -> None:
        i = bisect.bisect_left([v.vm_start for v in self.vmas], vma.vm_start)
        if (i > 0 and self.vmas[i - 1].vm_end > vma.vm_start) or (
                i < len(self.vmas) and self.vmas[i].vm_start < vma.vm_end):
            raise KernelBug(f"inserting {vma!r} over another VMA")
        self.vmas.insert(i, vma)
        self._reindex()

    def vma_remove(self, vma: Vma) -> None:
        self.vmas.remove(vma)
        self._reindex()


# -- lookups ---------------------------------------------------------------------------------------

def find_vma(mm: MmStruct, addr: int) -> Vma | None:
    """The first VMA with vm_end > addr (it may start above addr)."""
    i = bisect.bisect_right(mm._ends, addr)
    return mm.vmas[i] if i < len(mm.vmas) else None


def vma_lookup(mm: MmStruct, addr: int) -> Vma | None:
    """The VMA containing addr, or None."""
    vma = find_vma(mm, addr)
    return vma if vma is not None and vma.vm_start <= addr else None


def vmas_in_range(mm: MmStruct, start: int, end: int) -> list[Vma]:
    """VMAs intersecting ``[start, end)``, in address order."""
    i = bisect.bisect_right(mm._ends, start)
    out = []
    for vma in mm.vmas[i:]:
        if vma.vm_start >= end:
            break
        out.append(vma)
    return out


def range_fully_mapped(mm: MmStruct, start: int, end: int) -> bool:
    """No hole in ``[start, end)``."""
    addr = start
    for vma in vmas_in_range(mm, start, end):
        if vma.vm_start > addr:
            return False
        addr = vma.vm_end
        if addr >= end:
            return True
    return addr >= end


def get_unmapped_area(mm: MmStruct, addr: int | None, length: int) -> int | None:
    """A free page-aligned range of ``length`` bytes: the hint if it is free, else bottom-up."""
    if addr is not None and addr % PAGE_SIZE == 0 and MMAP_MIN_ADDR <= addr \
            and addr + length <= TASK_SIZE and not vmas_in_range(mm, addr, addr + length):
        return addr
    candidate = TASK_UNMAPPED_BASE
    for vma in mm.vmas:
        if vma.vm_end <= candidate:
            continue
        if vma.vm_start >= candidate + length:
            break
        candidate = vma.vm_end
    if candidate + length > TASK_SIZE:
        return None
    return candidate


def linear_page_index(vma: Vma, addr: int) -> int:
    return ((addr - vma.vm_start) >> PAGE_SHIFT) + vma.vm_pgoff


def vma_address(page, vma: Vma) -> int | None:
    """Where ``vma`` would map ``page`` (mm/internal.h), or None if outside the VMA."""
    addr = vma.vm_start + ((page.index - vma.vm_pgoff) << PAGE_SHIFT)
    if vma.vm_start <= addr < vma.vm_end:
        return addr
    return None


def vma_is_anonymous(vma: Vma) -> bool:
    return vma.vm_file is None


def is_cow_mapping(flags: int) -> bool:
    return (flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE


# -- writenotify ----------------------------------------------------------------------------------

def vma_soft_dirty_enabled(vma: Vma) -> bool:
    """CONFIG_MEM_SOFT_DIRTY: soft-dirty tracking wants write faults unless VM_SOFTDIRTY is set."""
    return vma.vm_mm.kernel.soft_dirty and not vma.vm_flags & VM_SOFTDIRTY


def userfaultfd_wp(vma: Vma) -> bool:
    return bool(vma.vm_flags & VM_UFFD_WP)


def mapping_can_writeback(mapping) -> bool:
    return mapping is not None and mapping.can_writeback


def vm_pgprot_modify(oldprot: int, vm_flags: int) -> int:
    return vm_get_page_prot(vm_flags)


def vma_wants_writenotify(vma: Vma, vm_page_prot: int) -> bool:
    """Does this VMA want a write fault on the first store to each clean page? (mm/vma.c)

    The eligibility rules of the patch as they stand today. Before the patch (the
    ``legacy`` policy) and with hardware dirty bits (``hwdirty``) the answer is always no.
    """
    if not vma.vm_mm.kernel.policy.writenotify:
        return False
    vm_flags = vma.vm_flags
    # If it was private or non-writable, the write bit is already clear.
    if (vm_flags & (VM_WRITE | VM_SHARED)) != (VM_WRITE | VM_SHARED):
        return False
    # The backer wishes to know when pages are first written to?
    vm_ops = vma.vm_ops
    if vm_ops is not None and (vm_ops.page_mkwrite is not None
                               or vm_ops.pfn_mkwrite is not None):
        return True
    # The open routine did something to the protections that pgprot_modify won't preserve?
    if vm_page_prot != vm_pgprot_modify(vm_page_prot, vm_flags):
        return False
    # Do we need to track softdirty?
    if vma_soft_dirty_enabled(vma):
        return True
    # Do we need write faults for uffd-wp tracking?
    if userfaultfd_wp(vma):
        return True
    # Specialty mapping?
    if vm_flags & VM_PFNMAP:
        return False
    # Can the mapping track the dirty pages?
    return vma.vm_file is not None and mapping_can_writeback(vma.vm_file)


def vma_set_page_prot(vma: Vma) -> None:
    """Recompute vm_page_prot from vm_flags, dropping W if the VMA wants writenotify."""
    vm_flags = vma.vm_flags
    vm_page_prot = vm_pgprot_modify(vma.vm_page_prot, vm_flags)
    if vma.vm_file is not None and vma.vm_file.driver_prot is not None:
        # A driver's mmap that changed the protection (e.g. uncached): keep its change.
        vm_page_prot |= vma.vm_file.driver_prot
    if vma_wants_writenotify(vma, vm_page_prot):
        vm_flags &= ~VM_SHARED
        vm_page_prot = vm_pgprot_modify(vm_page_prot, vm_flags)
    vma.vm_page_prot = vm_page_prot


def vma_wants_manual_pte_write_upgrade(vma: Vma) -> bool:
    """mprotect: may W be set by hand on PTEs that pte_modify left read-only?"""
    if vma.vm_flags & VM_SHARED:
        return vma_wants_writenotify(vma, vma.vm_page_prot)
    return bool(vma.vm_flags & VM_WRITE)


def vma_needs_copy(dst_vma: Vma, src_vma: Vma) -> bool:
    """fork: copy the PTEs, or let the child fault them in? (mm/memory.c)"""
    if src_vma.vm_flags & (VM_PFNMAP | VM_MIXEDMAP):
        return True
    if userfaultfd_wp(dst_vma):
        return True
    return src_vma.anon_vma is not None


# -- linking into the file's i_mmap and the anon_vma -----------------------------------------------

def vma_link(mm: MmStruct, vma: Vma) -> None:
    mm.vma_insert(vma)
    if vma.vm_file is not None:
        vma.vm_file.i_mmap.append(vma)
        if vma.vm_flags & VM_SHARED and vma.vm_flags & VM_MAYWRITE:
            vma.vm_file.i_mmap_writable += 1
    if vma.anon_vma is not None:
        vma.anon_vma.vmas.append(vma)


def vma_unlink(mm: MmStruct, vma: Vma) -> None:
    mm.vma_remove(vma)
    if vma.vm_file is not None:
        vma.vm_file.i_mmap.remove(vma)
        if vma.vm_flags & VM_SHARED and vma.vm_flags & VM_MAYWRITE:
            vma.vm_file.i_mmap_writable -= 1
    if vma.anon_vma is not None:
        vma.anon_vma.vmas.remove(vma)


def anon_vma_prepare(vma: Vma) -> AnonVma:
    if vma.anon_vma is None:
        vma.anon_vma = AnonVma()
        vma.anon_vma.vmas.append(vma)
    return vma.anon_vma


def split_vma(mm: MmStruct, vma: Vma, addr: int) -> Vma:
    """Split ``vma`` at ``addr``; returns the new upper part (``vma`` keeps the lower part)."""
    if not vma.vm_start < addr < vma.vm_end or addr % PAGE_SIZE:
        raise KernelBug(f"split_vma of {vma!r} at {addr:#x}")
    new = Vma(mm, addr, vma.vm_end, vma.vm_flags, vma.vm_file,
              vma.vm_pgoff + ((addr - vma.vm_start) >> PAGE_SHIFT))
    new.vm_page_prot = vma.vm_page_prot
    new.anon_vma = vma.anon_vma
    vma.vm_end = addr
    mm._reindex()
    vma_link(mm, new)
    return new


def vma_modify_flags(mm: MmStruct, vma: Vma, start: int, end: int, newflags: int) -> Vma:
    """Give ``[start, end)`` of ``vma`` the flags ``newflags``, splitting it where the range
    ends inside it; returns the VMA that covers exactly that range."""
    if vma.vm_start < start:
        vma = split_vma(mm, vma, start)
    if vma.vm_end > end:
        split_vma(mm, vma, end)
    vma.vm_flags = newflags
    return vma

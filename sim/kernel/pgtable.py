"""Sv39 page tables in the hardware's physical memory, in the real PTE format.

The names are those of arch/riscv/include/asm/pgtable{,-bits}.h and include/linux/pgtable.h.
A PTE is a plain int. The kernel reaches the tables only through the hardware seam:
``read_pte`` to look, ``write_pte`` for entries the walker cannot be updating (an empty
slot, a non-leaf entry), ``cas_pte`` for every change of a live leaf (the walker may set
A/D in it at any moment under Svadu).
"""

from dataclasses import dataclass
from itertools import count

from .constants import (PAGE_SHIFT, PAGE_SIZE, PGDIR_SHIFT, PMD_MASK, PMD_SHIFT, PMD_SIZE,
                        PTRS_PER_PTE, VM_ACCESS_FLAGS, VM_EXEC, VM_READ, VM_SHARED, VM_WRITE)
from .errors import KernelBug

# -- asm/pgtable-bits.h ---------------------------------------------------------------------
_PAGE_PRESENT = 1 << 0
_PAGE_READ = 1 << 1
_PAGE_WRITE = 1 << 2
_PAGE_EXEC = 1 << 3
_PAGE_USER = 1 << 4
_PAGE_GLOBAL = 1 << 5
_PAGE_ACCESSED = 1 << 6
_PAGE_DIRTY = 1 << 7
_PAGE_SOFT = 3 << 8                  # RSW, bits 8..9
#: riscv marks a PROT_NONE PTE by G with V clear: invalid to the MMU, present to the kernel.
_PAGE_PROT_NONE = _PAGE_GLOBAL
_PAGE_PFN_SHIFT = 10
_PAGE_PFN_MASK = ((1 << 44) - 1) << _PAGE_PFN_SHIFT
_PAGE_TABLE = _PAGE_PRESENT          # a non-leaf entry: V only
#: Bits pte_modify keeps: PFN, A, D, RSW.
_PAGE_CHG_MASK = ~(_PAGE_PRESENT | _PAGE_READ | _PAGE_WRITE | _PAGE_EXEC | _PAGE_USER
                   | _PAGE_GLOBAL) & ((1 << 64) - 1)

# User PTEs are born with A=1 (riscv's _PAGE_BASE) and without D.
_PAGE_BASE = _PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_USER
PAGE_NONE = _PAGE_PROT_NONE | _PAGE_READ
PAGE_READ = _PAGE_BASE | _PAGE_READ
PAGE_WRITE = _PAGE_BASE | _PAGE_READ | _PAGE_WRITE
PAGE_EXEC = _PAGE_BASE | _PAGE_EXEC
PAGE_READ_EXEC = _PAGE_BASE | _PAGE_READ | _PAGE_EXEC
PAGE_WRITE_EXEC = _PAGE_BASE | _PAGE_READ | _PAGE_WRITE | _PAGE_EXEC
PAGE_COPY = PAGE_READ
PAGE_COPY_EXEC = PAGE_READ_EXEC
PAGE_SHARED = PAGE_WRITE
PAGE_SHARED_EXEC = PAGE_WRITE_EXEC

#: protection_map[vm_flags & (VM_READ|VM_WRITE|VM_EXEC|VM_SHARED)] (arch/riscv/mm/init.c).
protection_map = {
    0: PAGE_NONE,
    VM_READ: PAGE_READ,
    VM_WRITE: PAGE_COPY,
    VM_WRITE | VM_READ: PAGE_COPY,
    VM_EXEC: PAGE_EXEC,
    VM_EXEC | VM_READ: PAGE_READ_EXEC,
    VM_EXEC | VM_WRITE: PAGE_COPY_EXEC,
    VM_EXEC | VM_WRITE | VM_READ: PAGE_COPY_EXEC,
    VM_SHARED: PAGE_NONE,
    VM_SHARED | VM_READ: PAGE_READ,
    VM_SHARED | VM_WRITE: PAGE_SHARED,
    VM_SHARED | VM_WRITE | VM_READ: PAGE_SHARED,
    VM_SHARED | VM_EXEC: PAGE_EXEC,
    VM_SHARED | VM_EXEC | VM_READ: PAGE_READ_EXEC,
    VM_SHARED | VM_EXEC | VM_WRITE: PAGE_SHARED_EXEC,
    VM_SHARED | VM_EXEC | VM_WRITE | VM_READ: PAGE_SHARED_EXEC,
}


def vm_get_page_prot(vm_flags: int) -> int:
    return protection_map[vm_flags & (VM_ACCESS_FLAGS | VM_SHARED)]


# -- PTE values -------------------------------------------------------------------------------

def mk_pte(pfn: int, prot: int) -> int:
    return (pfn << _PAGE_PFN_SHIFT) | prot


def pte_pfn(pte: int) -> int:
    return (pte & _PAGE_PFN_MASK) >> _PAGE_PFN_SHIFT


def pte_none(pte: int) -> bool:
    return pte == 0


def pte_present(pte: int) -> bool:
    return bool(pte & (_PAGE_PRESENT | _PAGE_PROT_NONE))


def pte_protnone(pte: int) -> bool:
    return (pte & (_PAGE_PRESENT | _PAGE_PROT_NONE)) == _PAGE_PROT_NONE


def pte_read(pte: int) -> bool:
    return bool(pte & _PAGE_READ)


def pte_write(pte: int) -> bool:
    return bool(pte & _PAGE_WRITE)


def pte_exec(pte: int) -> bool:
    return bool(pte & _PAGE_EXEC)


def pte_user(pte: int) -> bool:
    return bool(pte & _PAGE_USER)


def pte_dirty(pte: int) -> bool:
    return bool(pte & _PAGE_DIRTY)


def pte_young(pte: int) -> bool:
    return bool(pte & _PAGE_ACCESSED)


def pte_mkwrite(pte: int) -> int:
    return pte | _PAGE_WRITE


def pte_wrprotect(pte: int) -> int:
    return pte & ~_PAGE_WRITE


def pte_mkdirty(pte: int) -> int:
    return pte | _PAGE_DIRTY


def pte_mkclean(pte: int) -> int:
    """Clears D only (W stays as it is)."""
    return pte & ~_PAGE_DIRTY


def pte_mkyoung(pte: int) -> int:
    return pte | _PAGE_ACCESSED


def pte_mkold(pte: int) -> int:
    return pte & ~_PAGE_ACCESSED


def pte_modify(pte: int, newprot: int) -> int:
    """The PTE with the protection ``newprot``; keeps PFN, A, D and the soft bits."""
    return (pte & _PAGE_CHG_MASK) | newprot


def maybe_mkwrite(pte: int, vma) -> int:
    """W only if the VMA is writable (include/linux/mm.h)."""
    if vma.vm_flags & VM_WRITE:
        pte = pte_mkwrite(pte)
    return pte


# -- the Python view of a PTE (Process.pte) -----------------------------------------------------

@dataclass(frozen=True)
class PteView:
    """A decoded leaf PTE, as ``Process.pte(va)`` returns it."""
    v: bool
    r: bool
    w: bool
    x: bool
    u: bool
    g: bool
    a: bool
    d: bool
    ppn: int
    value: int

    @classmethod
    def decode(cls, pte: int) -> "PteView":
        return cls(v=bool(pte & _PAGE_PRESENT), r=bool(pte & _PAGE_READ),
                   w=bool(pte & _PAGE_WRITE), x=bool(pte & _PAGE_EXEC),
                   u=bool(pte & _PAGE_USER), g=bool(pte & _PAGE_GLOBAL),
                   a=bool(pte & _PAGE_ACCESSED), d=bool(pte & _PAGE_DIRTY),
                   ppn=pte_pfn(pte), value=pte)


# -- walking and building the tables ------------------------------------------------------------

#: sizeof(pte_t): a table is PTRS_PER_PTE entries of PTESIZE bytes (the privileged spec's name).
PTESIZE = PAGE_SIZE // PTRS_PER_PTE


def pgd_index(addr: int) -> int:
    return (addr >> PGDIR_SHIFT) & (PTRS_PER_PTE - 1)


def pmd_index(addr: int) -> int:
    return (addr >> PMD_SHIFT) & (PTRS_PER_PTE - 1)


def pte_index(addr: int) -> int:
    return (addr >> PAGE_SHIFT) & (PTRS_PER_PTE - 1)


def table_of(entry: int) -> int:
    """Physical address of the table a non-leaf entry points to."""
    return pte_pfn(entry) << PAGE_SHIFT


def pgd_offset(mm, addr: int) -> int:
    """Physical address of the PGD entry (level 2) of ``addr``."""
    return mm.pgd + pgd_index(addr) * PTESIZE


def pmd_offset(pmd_table: int, addr: int) -> int:
    """Physical address of the PMD entry (level 1) of ``addr`` in the PMD table at
    ``pmd_table`` (Sv39 folds the PUD: the PGD entry points to the PMD table)."""
    return pmd_table + pmd_index(addr) * PTESIZE


def pte_offset_kernel(pte_table: int, addr: int) -> int:
    """Physical address of the PTE (level 0) of ``addr`` in the PTE table at ``pte_table``."""
    return pte_table + pte_index(addr) * PTESIZE


def pte_offset_map(mm, addr: int) -> int | None:
    """Physical address of the PTE of ``addr``, or None when there is no PTE table.

    The kernel keeps, per mm, which PTE table sits under each PMD entry it wrote
    (:attr:`MmStruct.pte_tables`): non-leaf entries are written only by the kernel, so this
    is exactly what reading the PGD and PMD entries would give (:func:`walk_tables`, tests
    check it), and it saves two PTE reads per lookup.
    """
    table = mm.pte_tables.get(addr >> PMD_SHIFT)
    if table is None:
        return None
    return pte_offset_kernel(table, addr)


def pmd_addr_end(addr: int, end: int) -> int:
    """The end of the part of ``[addr, end)`` that the PTE table of ``addr`` maps."""
    return min((addr + PMD_SIZE) & PMD_MASK, end)


def for_each_pte(ptep: int, addr: int, end: int):
    """(ptep, addr) for each page of ``[addr, end)``, within one PTE table, from ``ptep``,
    the PTE of ``addr``: the ``pte++, addr += PAGE_SIZE`` loop of the kernel's *_pte_range."""
    return zip(count(ptep, PTESIZE), range(addr, end, PAGE_SIZE))


def walk_tables(mm, addr: int) -> int | None:
    """The PTE of ``addr`` found by reading PGD and PMD entries from memory."""
    hw = mm.kernel.hw
    pgd = hw.read_pte(pgd_offset(mm, addr))
    if not pgd & _PAGE_PRESENT:
        return None
    pmd = hw.read_pte(pmd_offset(table_of(pgd), addr))
    if not pmd & _PAGE_PRESENT:
        return None
    return pte_offset_kernel(table_of(pmd), addr)


def pgd_alloc(kernel) -> int:
    """A zeroed root table; returns its physical address."""
    page = kernel.mem.alloc_page(zero=True, kind="pgtable")
    return page.pfn << PAGE_SHIFT


def pte_alloc(mm, addr: int) -> int:
    """The PTE slot of ``addr``, allocating the PMD and PTE tables on the way (__pte_alloc).

    A new non-leaf entry goes from invalid to valid: the walker cannot have cached it (it
    caches only valid entries), so no sfence is needed.
    """
    slot = pte_offset_map(mm, addr)
    if slot is not None:
        return slot
    kernel = mm.kernel
    hw = kernel.hw
    pgd_slot = pgd_offset(mm, addr)
    pgd = hw.read_pte(pgd_slot)
    if not pgd & _PAGE_PRESENT:
        page = kernel.mem.alloc_page(zero=True, kind="pgtable")
        page.pt_mm = mm
        pgd = mk_pte(page.pfn, _PAGE_TABLE)
        hw.write_pte(pgd_slot, pgd)                         # pgd_populate
        mm.pmd_tables[addr >> PGDIR_SHIFT] = page.pfn << PAGE_SHIFT
    pmd_slot = pmd_offset(table_of(pgd), addr)
    pmd = hw.read_pte(pmd_slot)
    if pmd & _PAGE_PRESENT:
        raise KernelBug(f"PMD entry of {addr:#x} present but not in mm.pte_tables")
    page = kernel.mem.alloc_page(zero=True, kind="pgtable")
    page.pt_mm = mm
    page.pt_count = 0
    hw.write_pte(pmd_slot, mk_pte(page.pfn, _PAGE_TABLE))   # pmd_populate
    table = page.pfn << PAGE_SHIFT
    mm.pte_tables[addr >> PMD_SHIFT] = table
    return pte_offset_kernel(table, addr)


def free_pte_table(mm, pmd_key: int) -> int:
    """Clear the PMD entry of the PTE table under ``pmd_key`` (free_pte_range); returns its pfn.

    The frame may be reused only after an sfence without an address (the mmu_gather's
    ``freed_tables``): a by-address sfence leaves the walker's cache of non-leaf entries.
    """
    kernel = mm.kernel
    table = mm.pte_tables.pop(pmd_key)
    addr = pmd_key << PMD_SHIFT
    pmd_table = mm.pmd_tables[addr >> PGDIR_SHIFT]
    kernel.hw.write_pte(pmd_offset(pmd_table, addr), 0)         # pmd_clear
    return table >> PAGE_SHIFT


def free_pmd_table(mm, pgd_key: int) -> int:
    """Clear the PGD entry of a PMD table with no PTE table left (free_pmd_range); its pfn."""
    kernel = mm.kernel
    table = mm.pmd_tables.pop(pgd_key)
    kernel.hw.write_pte(pgd_offset(mm, pgd_key << PGDIR_SHIFT), 0)      # pgd_clear
    return table >> PAGE_SHIFT


# -- changing live leaf PTEs (all through cas_pte: the walker may be setting A/D) --------------

def set_pte_at(hw, ptep: int, pte: int) -> None:
    """Install a PTE into an empty slot (the walker cannot be updating an invalid PTE)."""
    hw.write_pte(ptep, pte)


def ptep_get_and_clear(hw, ptep: int) -> int:
    """Atomically clear the PTE, returning the old value with any hardware-set A/D."""
    old = hw.read_pte(ptep)
    while True:
        found = hw.cas_pte(ptep, old, 0)
        if found == old:
            return old
        old = found


def ptep_set_wrprotect(hw, ptep: int) -> int:
    """Atomic AND ~W: a D the hardware set meanwhile survives (018e9828eb52). Returns new."""
    old = hw.read_pte(ptep)
    while True:
        new = old & ~_PAGE_WRITE
        found = hw.cas_pte(ptep, old, new)
        if found == old:
            return new
        old = found


def ptep_test_and_clear_young(hw, ptep: int) -> bool:
    old = hw.read_pte(ptep)
    while True:
        if not old & _PAGE_ACCESSED:
            return False
        found = hw.cas_pte(ptep, old, old & ~_PAGE_ACCESSED)
        if found == old:
            return True
        old = found


def ptep_set_access_flags(hw, ptep: int, orig: int, entry: int) -> bool:
    """Store ``entry`` if the PTE still is ``orig`` (A/D or W added by a fault); True if changed.

    riscv's version: the update is a relaxation (bits only added), the caller flushes.
    """
    if entry == orig:
        return False
    return hw.cas_pte(ptep, orig, entry) == orig


def ptep_modify_prot_start(hw, ptep: int) -> int:
    return ptep_get_and_clear(hw, ptep)


def ptep_modify_prot_commit(hw, ptep: int, pte: int) -> None:
    hw.write_pte(ptep, pte)

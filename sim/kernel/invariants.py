"""Checks of the kernel model's state against the invariants of ARCHITECTURE.md.

- Invariant 1 (no lost write) needs the shadow of every store: see
  mkclean.sim.workloads.oracle; here, :func:`check_disk` checks its per-step form: a page
  the kernel considers clean has the bytes of the file on disk.
- Invariant 2 (no stale writable translation): :func:`check_tlb`, through the hardware's
  TLB contents (``hw.tlb_entries()``: the golden model's list, the RTL's debug port), and
  :func:`check_clean_pages_not_writable`, its cheap form from the TLB alone, which
  :func:`run_checked` runs after every kernel step of a workload on the rtl and board
  backends.
- Invariant 3 (dirty accounting is exact): :func:`check_dirty`.

Each function returns a list of problems (empty: all well); :func:`check_all` raises
:class:`InvariantError` listing them.
"""

import struct

from .constants import PAGE_SHIFT, PAGE_SIZE, PMD_SHIFT, PTRS_PER_PTE, VM_PFNMAP, VM_SHARED
from .mm import linear_page_index, vma_lookup
from .pgtable import (_PAGE_PRESENT, pgd_offset, pmd_offset, pte_dirty, pte_exec, pte_offset_map,
                      pte_pfn, pte_present, pte_read, pte_user, pte_write, table_of)

_UNPACK = struct.Struct(f"<{PTRS_PER_PTE}Q").unpack


class InvariantError(AssertionError):
    pass


def mapped_ptes(kernel):
    """Every present leaf PTE of every live mm: list of (mm, va, pte)."""
    hw = kernel.hw
    out = []
    for p in kernel.processes:
        mm = p.mm
        for key, table in mm.pte_tables.items():
            for i, pte in enumerate(_UNPACK(hw.read(table, PAGE_SIZE))):
                if pte and pte_present(pte):
                    out.append((mm, (key << PMD_SHIFT) | (i << PAGE_SHIFT), pte))
    return out


def check_page_tables(kernel, ptes=None) -> list[str]:
    """The tables in memory agree with the kernel's view; mapcounts are exact."""
    hw = kernel.hw
    problems = []
    pfn_to_page = kernel.mem.pfn_to_page
    for p in kernel.processes:
        mm = p.mm
        for key, table in mm.pte_tables.items():
            addr = key << PMD_SHIFT
            pgd = hw.read_pte(pgd_offset(mm, addr))
            if not pgd & _PAGE_PRESENT:
                problems.append(f"{mm!r}: PGD entry of {addr:#x} missing")
                continue
            pmd = hw.read_pte(pmd_offset(table_of(pgd), addr))
            if not pmd & _PAGE_PRESENT or table_of(pmd) != table:
                problems.append(f"{mm!r}: PMD entry of {addr:#x} is {pmd:#x}, table {table:#x}")
            if not pfn_to_page(table >> PAGE_SHIFT).PageTable():
                problems.append(f"{mm!r}: PTE table {table:#x} is not a table frame")
    if ptes is None:
        ptes = mapped_ptes(kernel)
    counts = {}
    zero = kernel.mem.zero_page.pfn
    for mm, va, pte in ptes:
        pfn = pte_pfn(pte)
        vma = vma_lookup(mm, va)
        if vma is None:
            problems.append(f"{mm!r}: PTE {pte:#x} at {va:#x} outside every VMA")
            continue
        if pfn == zero:
            if pte_write(pte):
                problems.append(f"{mm!r}: the zero page mapped writable at {va:#x}")
            continue
        if not kernel.mem.pfn_valid(pfn):
            problems.append(f"{mm!r}: PTE {pte:#x} at {va:#x} maps pfn {pfn:#x}, outside "
                            f"memory")
            continue
        page = pfn_to_page(pfn)
        counts[pfn] = counts.get(pfn, 0) + 1
        if page.kind not in ("pagecache", "anon"):
            problems.append(f"{mm!r}: {va:#x} maps a {page.kind} frame {page!r}")
            continue
        if page.kind == "pagecache":
            if page.mapping is not vma.vm_file or page.index != linear_page_index(vma, va):
                problems.append(f"{mm!r}: {va:#x} maps {page!r}, not page "
                                f"{linear_page_index(vma, va)} of {vma.vm_file!r}")
            if not vma.vm_flags & VM_SHARED and pte_write(pte):
                problems.append(f"{mm!r}: private {va:#x} maps a file page writable")
    for page in kernel.mem.mem_map:
        if page.mapcount != counts.get(page.pfn, 0) and page.kind != "zero":
            problems.append(f"mapcount of {page!r} is {page.mapcount}, "
                            f"{counts.get(page.pfn, 0)} PTEs map it")
    if hw.read(kernel.mem.zero_page.paddr, PAGE_SIZE).count(0) != PAGE_SIZE:
        problems.append("the zero page is not zero")
    return problems


def tlb_entries(kernel):
    """The TLB's entries through the seam's debug view (None if the backend has none)."""
    read = getattr(kernel.hw, "tlb_entries", None)
    return None if read is None else read()


def check_tlb(kernel, ptes=None) -> list[str]:
    """Invariant 2, and more: every valid TLB entry agrees with the PTE it came from.

    A TLB entry may be less permissive than its PTE (an upgrade needs no flush, a fault
    on it is spurious), never more: no W, R, X, U or D that the PTE has not, no entry
    for a PTE that is gone. In particular no entry lets a store through (W and D) to a page
    the kernel believes clean.
    """
    entries = tlb_entries(kernel)
    if entries is None:
        return []
    hw = kernel.hw
    problems = []
    by_asid = {p.mm.asid: p.mm for p in kernel.processes}
    for i, e in enumerate(entries):
        if not e.valid:
            continue
        if e.g or e.level:
            problems.append(f"TLB[{i}] {e}: the kernel maps no global or super pages")
            continue
        mm = by_asid.get(e.asid)
        if mm is None:
            problems.append(f"TLB[{i}] {e}: ASID of no live process")
            continue
        va = e.vpn << PAGE_SHIFT
        ptep = pte_offset_map(mm, va)
        pte = hw.read_pte(ptep) if ptep is not None else 0
        if not pte & _PAGE_PRESENT:
            problems.append(f"TLB[{i}] asid {e.asid} va {va:#x} -> ppn {e.ppn:#x}: stale, "
                            f"the PTE is {pte:#x}")
            continue
        if pte_pfn(pte) != e.ppn:
            problems.append(f"TLB[{i}] asid {e.asid} va {va:#x}: ppn {e.ppn:#x}, the PTE "
                            f"maps {pte_pfn(pte):#x}")
            continue
        for name, pte_has in (("r", pte_read), ("w", pte_write), ("x", pte_exec),
                              ("u", pte_user), ("d", pte_dirty)):
            if getattr(e, name) and not pte_has(pte):
                problems.append(f"TLB[{i}] asid {e.asid} va {va:#x}: {name}=1, the PTE "
                                f"{pte:#x} has {name}=0")
    # The walker's cache of non-leaf PTEs: an entry the kernel changed or freed must be gone.
    walk_cache = getattr(getattr(hw, "mmu", None), "walk_cache", None)
    if walk_cache is not None:
        for valid, addr, value in walk_cache.entries:
            if valid and hw.read_pte(addr) != value:
                problems.append(f"walk cache holds {value:#x} for the PTE at {addr:#x}, "
                                f"memory has {hw.read_pte(addr):#x}")
    # Invariant 2 proper: pages the kernel believes clean.
    writable = {}
    for e in entries:
        if e.valid and e.w and e.d:
            writable.setdefault(e.ppn, e)
    if ptes is None:
        ptes = mapped_ptes(kernel)
    pte_d = {pte_pfn(pte) for _, _, pte in ptes if pte_dirty(pte)}
    pte_w = {pte_pfn(pte) for mm, va, pte in ptes if pte_write(pte)
             and vma_lookup(mm, va) is not None and vma_lookup(mm, va).vm_flags & VM_SHARED}
    writenotify = kernel.policy.writenotify
    for f in kernel.files.values():
        if not f.can_writeback:
            continue
        for page in f.pages.values():
            if page.dirty:
                continue
            if writenotify:
                if page.pfn in pte_d or page.pfn in pte_w:
                    problems.append(f"{page!r} is clean but a PTE maps it "
                                    f"{'dirty' if page.pfn in pte_d else 'writable'}")
            elif page.pfn in pte_d:
                continue                   # dirty in a PTE: the kernel will find it there
            if page.pfn in writable:
                problems.append(f"{page!r} is clean but TLB entry {writable[page.pfn]} "
                                f"lets a store through")
    return problems


def check_clean_pages_not_writable(kernel, entries) -> list[str]:
    """Invariant 2 from the TLB alone (cheap enough to run after every kernel step on a
    slow backend): no valid entry lets a store through (W and D set) to a file page the
    kernel believes clean, unless (policies without write-notify) its PTE is dirty, where
    the kernel will find it."""
    problems = []
    mem = kernel.mem
    by_asid = None
    for i, e in enumerate(entries):
        if not (e.valid and e.w and e.d) or not mem.pfn_valid(e.ppn):
            continue
        page = mem.pfn_to_page(e.ppn)
        mapping = page.mapping
        if page.dirty or mapping is None or not mapping.can_writeback:
            continue
        if not kernel.policy.writenotify:
            if by_asid is None:
                by_asid = {p.mm.asid: p.mm for p in kernel.processes}
            mm = by_asid.get(e.asid)
            va = e.vpn << PAGE_SHIFT
            ptep = pte_offset_map(mm, va) if mm is not None else None
            if ptep is not None and pte_dirty(kernel.hw.read_pte(ptep)):
                continue
        problems.append(f"{page!r} is clean but TLB entry {i} {e} lets a store through")
    return problems


class InvariantViolation(AssertionError):
    """Invariant 2 failed on the hardware's TLB after a kernel step (:func:`run_checked`)."""


#: The hardware's figures a checked run reports beside the kernel's (the rtl backend and
#: a board count them all; a machine without counters, such as QEMU, only the last two).
HW_COUNTERS = ("cycles", "walks", "walk_cycles", "tlb_hits", "tlb_misses", "ad_updates",
               "page_faults", "access_faults", "batches", "step_checks", "steps_unchecked")


def run_checked(kernel, workload, progress=None, on_violation=None):
    """Run ``workload`` (a :mod:`mkclean.sim.workloads` one, made on ``kernel``) with
    invariant 2 checked after every kernel step on the hardware's TLB: the backend (rtl,
    board) calls its ``step_check`` with the TLB's entries before the first access after
    kernel code ran.
    ``progress(n)`` is told the accesses of each step, ``on_violation()`` (when given) is
    called as a check fails, before the run stops.

    Returns the workload's result (its lost-write oracle's too; a violation ends the run
    and gives the result so far) with ``invariant_violations`` and those of the hardware's
    :data:`HW_COUNTERS` it has, and all of the hardware's counters (a backend may have
    more). The kernel stays open; anything else the run raises goes through.
    """
    hw = kernel.hw

    def check(entries):
        problems = check_clean_pages_not_writable(kernel, entries)
        if problems:
            if on_violation is not None:
                on_violation()
            raise InvariantViolation("; ".join(problems[:3]))

    hw.step_check = check
    try:
        try:
            result = workload.run(progress)
            result["invariant_violations"] = []
        except InvariantViolation as e:
            result = workload.result()
            result["invariant_violations"] = [str(e)]
        counters = hw.counters()
        result.update({name: counters[name] for name in HW_COUNTERS if name in counters})
        return result, counters
    finally:
        hw.step_check = None


def check_dirty(kernel, ptes=None) -> list[str]:
    """Invariant 3: PG_dirty counters are exact, and (writenotify) nothing is dirty behind
    the kernel's back: every PTE that is writable or dirty maps a PG_dirty page."""
    problems = []
    total = 0
    for f in kernel.files.values():
        dirty = {i for i, page in f.pages.items() if page.dirty}
        if f.can_writeback:
            total += len(dirty)
            if f.nrdirty != len(dirty) or f.dirty_idx != dirty:
                problems.append(f"{f!r}: nrdirty {f.nrdirty}, tags {sorted(f.dirty_idx)}, "
                                f"PG_dirty pages {sorted(dirty)}")
        wb = sum(1 for page in f.pages.values() if page.writeback)
        if f.nrwriteback != wb:
            problems.append(f"{f!r}: nrwriteback {f.nrwriteback}, {wb} pages under writeback")
        for i, page in f.pages.items():
            if page.mapping is not f or page.index != i or page.kind != "pagecache":
                problems.append(f"{f!r}[{i}] holds {page!r}")
            if page.locked:
                problems.append(f"{page!r} left locked")
            if page.ptl_owner is not None:
                problems.append(f"{page!r} PTE lock left held")
    if total != kernel.nr_dirty:
        problems.append(f"nr_dirty is {kernel.nr_dirty}, {total} pages are dirty")
    if kernel.policy.writenotify:
        if ptes is None:
            ptes = mapped_ptes(kernel)
        pfn_to_page = kernel.mem.pfn_to_page
        for mm, va, pte in ptes:
            if not (pte_write(pte) or pte_dirty(pte)):
                continue
            page = pfn_to_page(pte_pfn(pte))
            if page.kind != "pagecache" or page.mapping is None or not page.mapping.can_writeback:
                continue
            vma = vma_lookup(mm, va)
            if vma is None or not vma.vm_flags & VM_SHARED or vma.vm_flags & VM_PFNMAP:
                continue
            if not page.dirty:
                problems.append(f"{mm!r} {va:#x}: PTE {pte:#x} writable/dirty, {page!r} clean")
    for page in kernel.mem.mem_map:
        if page.locked or page.ptl_owner is not None:
            problems.append(f"{page!r} left locked")
    return problems


def check_disk(kernel, ptes=None) -> list[str]:
    """A cached page the kernel considers clean (not PG_dirty, no dirty PTE) has the bytes
    of the file on disk (up to EOF)."""
    problems = []
    hw = kernel.hw
    if ptes is None:
        ptes = mapped_ptes(kernel)
    pte_d = {pte_pfn(pte) for _, _, pte in ptes if pte_dirty(pte)}
    for f in kernel.files.values():
        if not f.can_writeback:
            continue
        for i, page in f.pages.items():
            if page.dirty or page.pfn in pte_d:
                continue
            start = i << PAGE_SHIFT
            n = min(PAGE_SIZE, f.i_size - start)
            if n <= 0:
                continue
            mem = hw.read(page.paddr, n)
            disk = f.on_disk(start, n)
            disk += bytes(n - len(disk))
            if mem != disk:
                at = next(j for j in range(n) if mem[j] != disk[j])
                problems.append(f"{page!r} clean but differs from disk at byte {start + at} "
                                f"(memory {mem[at]:#x}, disk {disk[at]:#x})")
    return problems


def check_all(kernel, disk: bool = True) -> None:
    ptes = mapped_ptes(kernel)
    problems = (check_page_tables(kernel, ptes) + check_tlb(kernel, ptes)
                + check_dirty(kernel, ptes) + (check_disk(kernel, ptes) if disk else []))
    if problems:
        raise InvariantError("kernel invariants broken:\n  " + "\n  ".join(problems))

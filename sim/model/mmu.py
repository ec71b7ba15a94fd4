"""GoldenMMU: the translation algorithm of hdl/README.md, transaction for transaction."""

from dataclasses import dataclass

from ..hw.seam import SATP_MODE_BARE, SATP_MODE_SV39, Csr, Priv
from .memory import Bus, Memory, MemoryBus, check_phys_base, check_phys_size
from .pte import (A, ASID_MASK, D, G, HIGH_BITS, OFFSET_MASK, PPN_MASK, PPN_SHIFT, R, U, V,
                  VPN_MASK, W, X)
from .tlb import Tlb, TlbEntry, WalkCache

# Causes by Kind (LOAD, STORE, FETCH, AMO), as plain ints for the hot path.
PAGE_FAULT = (13, 15, 12, 15)
ACCESS_FAULT = (5, 7, 1, 7)
COUNTER_NAMES = ("tlb_hits", "tlb_misses", "walks", "ad_updates", "page_faults",
                 "access_faults")
_PRIV_U, _PRIV_S, _PRIV_M = int(Priv.U), int(Priv.S), int(Priv.M)

# Which check of hdl/README.md decided a translation (GoldenMMU.decided), named
# "<step>.<check>". A TLB hit decides in step 2 with step 6's and 8's checks (and step
# 7's with Svade); a walk in the step whose check ends it; a walk that ends well in step
# 7 (after an A/D write) or 9 (the TLB filled, or not: stale).
BARE = "bare"                           # passthrough: M mode or satp.mode Bare
NON_CANONICAL = "1.non_canonical"
HIT = "2.hit"
HIT_PERMISSION = "2.hit_permission"     # step 6 again, with today's priv, SUM and MXR
HIT_SVADE = "2.hit_svade"               # a store hits D=0 under Svade
HIT_RANGE = "2.hit_range"               # step 8 on a hit: a superpage past memory's end
PTE_RANGE = "3.pte_range"               # the PTE address is outside memory
BUS_ERROR = "3.bus_error"               # the walk's read of the PTE
INVALID = "4.invalid"
NONLEAF_ADU = "5.nonleaf_adu"
NONLEAF_LEVEL0 = "5.nonleaf_level0"
MISALIGNED = "6.misaligned"
PERMISSION = "6.permission"
SVADE = "7.svade"                       # A/D needed, Svade: page fault
AD_BUS_ERROR = "7.bus_error"            # the locked re-read or the A/D write
AD_UPDATE = "7.ad_update"               # A/D written, translated, the TLB filled
PADDR_RANGE = "8.paddr_range"
FILL = "9.fill"                         # translated, the TLB filled
STALE = "9.stale"                       # translated, an sfence during the walk: not kept
#: every decision, in step order
DECISIONS = (NON_CANONICAL, HIT, HIT_PERMISSION, HIT_SVADE, HIT_RANGE, PTE_RANGE, BUS_ERROR,
             INVALID, NONLEAF_ADU, NONLEAF_LEVEL0, MISALIGNED, PERMISSION, SVADE, AD_BUS_ERROR,
             AD_UPDATE, PADDR_RANGE, FILL, STALE)
_CANONICAL_HIGH = (1 << 26) - 1     # vaddr >> 38 of a canonical upper-half address


@dataclass(frozen=True, slots=True)
class Response:
    """What the MMU answers a request with.

    Attributes
    ----------
    fault : bool
    cause : int or None
        The trap cause, when ``fault``.
    paddr : int or None
        The 56-bit physical address, when not ``fault``.
    tval : int or None
        The request's vaddr, when ``fault``.
    """
    fault: bool
    cause: int | None
    paddr: int | None
    tval: int | None


def permitted(u: bool, r: bool, w: bool, x: bool, kind: int, priv: int, sum_: bool,
              mxr: bool) -> bool:
    """Step 6: the privilege and R/W/X checks of a leaf (or a TLB hit)."""
    if u:
        if priv == _PRIV_S and (not sum_ or kind == 2):
            return False
    elif priv == _PRIV_U:
        return False
    if kind == 0:
        return bool(r or (x and mxr))
    if kind == 2:
        return bool(x)
    return bool(w)


class GoldenMMU:
    """The reference Sv39 MMU: TLB, walk cache and walker of the contract.

    Parameters
    ----------
    mem : Memory or None
        Physical memory; may be None when both ``bus`` and ``phys_size`` are given.
    phys_size : int, optional
        Bytes of physical memory; defaults to ``mem.size``.
    tlb_entries : int
        A power of two.
    walk_cache_entries : int
        0 (none) to 64.
    bus : Bus, optional
        What the walker's transactions go to; defaults to ``MemoryBus(mem)``. A bus may call
        :meth:`sfence` or change memory from inside a transaction.
    phys_base : int, optional
        Physical memory is ``[phys_base, phys_base + phys_size)`` (checked by
        :func:`~.memory.check_phys_base`); defaults to ``mem.base`` (0 without ``mem``).
        Every range check of hdl/README.md (a PTE address in step 3, a leaf's paddr in
        step 8 and on a TLB hit, Bare and M mode's passthrough) is against that range:
        an address below the base is outside memory as much as one past its end.

    Attributes
    ----------
    phys_base, phys_size : int
    csr : seam.Csr
        Mutable; :meth:`set_csr` validates.
    tlb : Tlb
    walk_cache : WalkCache
    counters : dict
        tlb_hits, tlb_misses (Sv39 lookups of canonical addresses), walks (each walk from
        step 3, re-walks included), ad_updates (A/D writes done), page_faults and
        access_faults (responses).
    decided : tuple or None
        What decided the last translation, for coverage: ``(decision, level, pte)``, the
        decision one of :data:`DECISIONS` (or :data:`BARE`), ``level`` the TLB entry's or
        the walk's level where it was decided (None for BARE and step 1), ``pte`` the
        PTE the walk decided on (None when there is none). :meth:`translate` always sets
        it; the fast path :meth:`_translate` sets it on every path but the TLB hit that
        answers with a paddr (the golden backend's common case stays as cheap as it was).
    read_levels : list or None
        None, or a list the walker appends the level of each PTE it reads from memory to
        (not the locked re-read): which transaction of a walk read which level.
    """

    def __init__(self, mem: Memory | None, phys_size: int | None = None,
                 tlb_entries: int = 16, walk_cache_entries: int = 8,
                 bus: Bus | None = None, phys_base: int | None = None):
        if phys_size is None:
            if mem is None:
                raise ValueError("phys_size is needed when mem is None")
            phys_size = mem.size
        self.phys_size = check_phys_size(phys_size)
        if phys_base is None:
            phys_base = 0 if mem is None else mem.base
        self.phys_base = check_phys_base(phys_base, phys_size)
        #: One past the last physical address: the range checks are ``base <= a < end``.
        self._phys_end = phys_base + phys_size
        if bus is None:
            if mem is None:
                raise ValueError("bus is needed when mem is None")
            bus = MemoryBus(mem)
        self.mem = mem
        self.bus = bus
        self.tlb = Tlb(tlb_entries)
        self.walk_cache = WalkCache(walk_cache_entries)
        self.csr = Csr()
        self.counters = dict.fromkeys(COUNTER_NAMES, 0)
        self._walking = False
        self._stale = False
        self.decided = None
        self.read_levels = None

    # -- CSRs and sfence ------------------------------------------------------------

    def set_csr(self, **fields) -> None:
        """Change fields of :attr:`csr` (mode, asid, ppn, priv, sum, mxr, adue)."""
        checked = {}
        for name, value in fields.items():
            if name == "mode":
                if value not in (SATP_MODE_BARE, SATP_MODE_SV39):
                    raise ValueError(f"satp.mode must be 0 (Bare) or 8 (Sv39), got {value!r}")
                value = int(value)
            elif name == "priv":
                if value not in (_PRIV_U, _PRIV_S, _PRIV_M):
                    raise ValueError(f"priv must be 0 (U), 1 (S) or 3 (M), got {value!r}")
                value = Priv(value)
            elif name in ("asid", "ppn"):
                limit = ASID_MASK if name == "asid" else PPN_MASK
                if not isinstance(value, int) or not 0 <= value <= limit:
                    raise ValueError(f"satp.{name} must be in 0..{limit:#x}, got {value!r}")
                value = int(value)
            elif name in ("sum", "mxr", "adue"):
                value = bool(value)
            else:
                raise TypeError(f"set_csr: no CSR field named {name!r}")
            checked[name] = value
        for name, value in checked.items():
            setattr(self.csr, name, value)

    def sfence(self, by_vaddr: bool, vaddr: int, by_asid: bool, asid: int) -> None:
        """sfence.vma; may be called from inside a bus transaction of a walk."""
        self.tlb.flush(bool(by_vaddr), (vaddr >> 12) & VPN_MASK, bool(by_asid),
                       asid & ASID_MASK)
        if not by_vaddr:
            self.walk_cache.flush()
        if self._walking:
            self._stale = True

    # -- translation ---------------------------------------------------------------

    def translate(self, vaddr: int, kind: int) -> Response:
        """Translate one request; see hdl/README.md."""
        if not 0 <= vaddr < 1 << 64:
            raise ValueError(f"vaddr {vaddr!r} is not a 64-bit unsigned integer")
        if kind not in (0, 1, 2, 3):
            raise ValueError(f"kind must be a seam.Kind, got {kind!r}")
        self.decided = None
        result = self._translate(vaddr, int(kind))
        if self.decided is None:            # the fast path's hit, which records nothing
            tlb = self.tlb
            entry = tlb._entries[tlb.lookup((vaddr >> 12) & VPN_MASK,
                                            self.csr.asid & ASID_MASK)]
            self.decided = (HIT, entry.level, None)
        if result >= 0:
            return Response(False, None, result, None)
        return Response(True, -result, None, vaddr)

    def _translate(self, vaddr: int, kind: int) -> int:
        """The paddr, or minus the cause. No argument checks: the hot path."""
        if self._walking:
            raise RuntimeError("translate called from inside a bus transaction of a walk")
        csr = self.csr
        priv = csr.priv
        if priv == _PRIV_M or csr.mode != SATP_MODE_SV39:
            self.decided = (BARE, None, None)
            if self.phys_base <= vaddr < self._phys_end:
                return vaddr
            self.counters["access_faults"] += 1
            return -ACCESS_FAULT[kind]
        top = vaddr >> 38
        if top and top != _CANONICAL_HIGH:
            self.decided = (NON_CANONICAL, None, None)
            self.counters["page_faults"] += 1
            return -PAGE_FAULT[kind]

        tlb = self.tlb
        vpn = (vaddr >> 12) & VPN_MASK
        asid = csr.asid & ASID_MASK
        i = tlb._memo.get((asid << 27) | vpn)
        if i is None:
            i = tlb.lookup(vpn, asid)
        counters = self.counters
        if i < 0:
            counters["tlb_misses"] += 1
            return self._walk(vaddr, kind, -1)
        counters["tlb_hits"] += 1
        plru = tlb.plru
        plru.state = (plru.state & plru._keep[i]) | plru._set[i]
        e = tlb._entries[i]
        # Step 6 again, with today's priv, SUM and MXR (inlined permitted()).
        if e.u:
            if priv == _PRIV_S and (not csr.sum or kind == 2):
                self.decided = (HIT_PERMISSION, e.level, None)
                counters["page_faults"] += 1
                return -PAGE_FAULT[kind]
        elif priv == _PRIV_U:
            self.decided = (HIT_PERMISSION, e.level, None)
            counters["page_faults"] += 1
            return -PAGE_FAULT[kind]
        if not ((e.r or (e.x and csr.mxr)) if kind == 0 else (e.x if kind == 2 else e.w)):
            self.decided = (HIT_PERMISSION, e.level, None)
            counters["page_faults"] += 1
            return -PAGE_FAULT[kind]
        if not e.a or (kind & 1 and not e.d):
            if not csr.adue:
                self.decided = (HIT_SVADE, e.level, None)
                counters["page_faults"] += 1
                return -PAGE_FAULT[kind]
            return self._walk(vaddr, kind, i)
        paddr = (e.ppn << 12) | (vaddr & OFFSET_MASK[e.level])
        if self.phys_base <= paddr < self._phys_end:
            return paddr                    # decided: HIT (left unrecorded, see decided)
        self.decided = (HIT_RANGE, e.level, None)
        counters["access_faults"] += 1
        return -ACCESS_FAULT[kind]

    def _walk(self, vaddr: int, kind: int, hit_index: int) -> int:
        """Steps 3-9 for one request, re-walks included: the paddr or minus the cause."""
        self._walking = True
        self._stale = False
        try:
            cause = self._walk_steps(vaddr, kind, hit_index)
        finally:
            self._walking = False
            self._stale = False
        return cause

    def _walk_steps(self, vaddr: int, kind: int, hit_index: int) -> int:
        # The CSRs are sampled once per request: a bus callback changing them mid-walk
        # does not reach this walk.
        csr = self.csr
        satp_ppn, asid = csr.ppn & PPN_MASK, csr.asid & ASID_MASK
        priv, sum_, mxr, adue = int(csr.priv), csr.sum, csr.mxr, csr.adue
        bus, walk_cache, counters = self.bus, self.walk_cache, self.counters
        phys_base, phys_end = self.phys_base, self._phys_end
        store = kind & 1
        page_fault, access_fault = -PAGE_FAULT[kind], -ACCESS_FAULT[kind]
        read_levels = self.read_levels
        while True:                                   # once per walk, again on a re-walk
            counters["walks"] += 1
            table = satp_ppn << 12
            level = 2
            while True:                               # step 3: one level
                pte_addr = table + ((vaddr >> (12 + 9 * level)) & 0x1FF) * 8
                if not phys_base <= pte_addr < phys_end:
                    self.decided = (PTE_RANGE, level, None)
                    counters["access_faults"] += 1
                    return access_fault
                pte = walk_cache.lookup(pte_addr)
                cached = pte is not None
                if not cached:
                    if read_levels is not None:
                        read_levels.append(level)
                    pte = bus.read(pte_addr, False)
                    if pte is None:
                        self.decided = (BUS_ERROR, level, None)
                        counters["access_faults"] += 1
                        return access_fault
                # Step 4: invalid.
                if not pte & V or (pte & (R | W)) == W or pte & HIGH_BITS:
                    self.decided = (INVALID, level, pte)
                    counters["page_faults"] += 1
                    return page_fault
                if pte & (R | X):
                    break
                # Step 5: non-leaf.
                if pte & (A | D | U) or level == 0:
                    self.decided = (NONLEAF_ADU if pte & (A | D | U) else NONLEAF_LEVEL0,
                                    level, pte)
                    counters["page_faults"] += 1
                    return page_fault
                if not cached and not self._stale:
                    walk_cache.insert(pte_addr, pte)
                table = ((pte >> PPN_SHIFT) & PPN_MASK) << 12
                level -= 1

            # Step 6: leaf.
            ppn = (pte >> PPN_SHIFT) & PPN_MASK
            if ppn & ((1 << (9 * level)) - 1):
                self.decided = (MISALIGNED, level, pte)
                counters["page_faults"] += 1
                return page_fault
            if not permitted(pte & U, pte & R, pte & W, pte & X, kind, priv, sum_, mxr):
                self.decided = (PERMISSION, level, pte)
                counters["page_faults"] += 1
                return page_fault
            # Step 7: A/D.
            decision = FILL
            if not pte & A or (store and not pte & D):
                if not adue:
                    self.decided = (SVADE, level, pte)
                    counters["page_faults"] += 1
                    return page_fault
                now = bus.read(pte_addr, True)
                if now is None:
                    bus.unlock()
                    self.decided = (AD_BUS_ERROR, level, pte)
                    counters["access_faults"] += 1
                    return access_fault
                if now != pte:
                    bus.unlock()
                    continue
                new = pte | A | (D if store else 0)
                written = bus.write(pte_addr, new, True)
                bus.unlock()
                if not written:
                    self.decided = (AD_BUS_ERROR, level, pte)
                    counters["access_faults"] += 1
                    return access_fault
                counters["ad_updates"] += 1
                pte = new
                decision = AD_UPDATE
            # Step 8.
            paddr = (ppn << 12) | (vaddr & OFFSET_MASK[level])
            if not phys_base <= paddr < phys_end:
                self.decided = (PADDR_RANGE, level, pte)
                counters["access_faults"] += 1
                return access_fault
            # Step 9.
            self.decided = (STALE if self._stale else decision, level, pte)
            if not self._stale:
                tlb = self.tlb
                index = hit_index if hit_index >= 0 else tlb.fill_index()
                tlb.fill(index, TlbEntry(
                    True, asid, bool(pte & G), level, (vaddr >> 12) & VPN_MASK, ppn,
                    bool(pte & R), bool(pte & W), bool(pte & X), bool(pte & U),
                    bool(pte & A), bool(pte & D)))
            return paddr

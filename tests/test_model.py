"""Directed tests of the golden MMU against hdl/README.md."""

import pytest
from hypothesis import given, settings, strategies as st

from mkclean.sim.hw.seam import Kind, Priv
from mkclean.sim.model import (GoldenMMU, Memory, MemoryBus, PlruTree, Pte, Response,
                               TlbEntry, make_pte)
from mkclean.sim.model.pte import A, D, OFFSET_MASK, is_canonical, is_invalid, vpn_field

PHYS = 16 << 20
ROOT = 0x1000
PAGE_FAULT = {Kind.LOAD: 13, Kind.STORE: 15, Kind.FETCH: 12, Kind.AMO: 15}
ACCESS_FAULT = {Kind.LOAD: 5, Kind.STORE: 7, Kind.FETCH: 1, Kind.AMO: 7}
RWX_AD = dict(r=True, w=True, x=True, a=True, d=True)


class RecordingBus(MemoryBus):
    """MemoryBus that logs transactions and lets a test act before one or fail it."""

    def __init__(self, mem):
        super().__init__(mem)
        self.log = []
        self.before = None          # before(op, addr, lock) runs ahead of the transaction
        self.fail = lambda op, addr, lock: False

    def read(self, addr, lock):
        if self.before:
            self.before("r", addr, lock)
        self.log.append(("r", addr, lock))
        return None if self.fail("r", addr, lock) else super().read(addr, lock)

    def write(self, addr, value, lock):
        if self.before:
            self.before("w", addr, lock)
        self.log.append(("w", addr, lock))
        return False if self.fail("w", addr, lock) else super().write(addr, value, lock)

    def unlock(self):
        self.log.append(("u",))
        super().unlock()


class Tables:
    """A bump allocator of page tables under ROOT, for building mappings."""

    def __init__(self, mem):
        self.mem = mem
        self.next_table = ROOT + 0x1000

    def pte_addr(self, vaddr, level, table=ROOT):
        """Address of the PTE for vaddr at level, allocating non-leaf tables above it."""
        for lv in range(2, level, -1):
            addr = table + vpn_field(vaddr, lv) * 8
            pte = self.mem.read64(addr)
            if not pte & 1:
                pte = make_pte(self.next_table >> 12)
                self.next_table += 0x1000
                self.mem.write64(addr, pte)
            table = Pte.decode(pte).ppn << 12
        return table + vpn_field(vaddr, level) * 8

    def map(self, vaddr, paddr, level=0, **flags):
        addr = self.pte_addr(vaddr, level)
        self.mem.write64(addr, make_pte(paddr >> 12, **flags))
        return addr


def machine(tlb_entries=16, walk_cache_entries=8, phys=PHYS, **csr):
    mem = Memory(phys)
    bus = RecordingBus(mem)
    mmu = GoldenMMU(mem, tlb_entries=tlb_entries, walk_cache_entries=walk_cache_entries,
                    bus=bus)
    mmu.set_csr(**{"mode": 8, "ppn": ROOT >> 12, "asid": 1, "priv": Priv.S, **csr})
    return mem, bus, mmu, Tables(mem)


def page_fault(vaddr, kind):
    return Response(True, PAGE_FAULT[kind], None, vaddr)


def access_fault(vaddr, kind):
    return Response(True, ACCESS_FAULT[kind], None, vaddr)


def ok(paddr):
    return Response(False, None, paddr, None)


def valid_entries(mmu):
    return [(i, e) for i, e in enumerate(mmu.tlb.entries) if e.valid]


# -- memory, PTE helpers ---------------------------------------------------------------

def test_memory_little_endian_and_bounds():
    mem = Memory(8192)
    mem.write64(8, 0x1122334455667788)
    assert mem.read(8, 2) == b"\x88\x77"
    mem.write(4095, b"\xaa\xbb")
    assert mem.read64(4088) >> 56 == 0xAA
    with pytest.raises(IndexError, match="outside physical memory"):
        mem.read(8190, 4)
    with pytest.raises(IndexError):
        mem.write64(-8, 0)
    with pytest.raises(ValueError):
        mem.write64(0, 1 << 64)


@pytest.mark.parametrize("size", [0, -4096, 4097, 100, 1.5, True])
def test_memory_bad_size(size):
    with pytest.raises(ValueError, match="phys_size"):
        Memory(size)


def test_pte_round_trip():
    p = Pte(v=True, r=True, u=True, g=True, d=True, rsw=2, ppn=0xABCDE, reserved=3, pbmt=1,
            n=True)
    assert Pte.decode(p.encode()) == p
    assert make_pte(5, r=True) == (5 << 10) | 0b11
    assert is_canonical(0xFFFF_FFC0_0000_0000) and not is_canonical(1 << 38)
    assert is_invalid(make_pte(1, w=True)) and not is_invalid(make_pte(1, r=True, w=True))


# -- bare -----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("csr", [dict(mode=0), dict(priv=Priv.M)])
def test_bare_passthrough(kind, csr):
    mem, bus, mmu, _ = machine(**csr)
    assert mmu.translate(PHYS - 1, kind) == ok(PHYS - 1)
    assert mmu.translate(PHYS, kind) == access_fault(PHYS, kind)
    assert mmu.translate(1 << 63, kind) == access_fault(1 << 63, kind)
    assert bus.log == [] and mmu.counters["tlb_misses"] == 0


# -- faults of the walk -----------------------------------------------------------------

@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("vaddr", [1 << 38, 1 << 39, 0xFFFF_FFBF_FFFF_F000, 1 << 63])
def test_non_canonical(kind, vaddr):
    _, bus, mmu, t = machine()
    t.map(vaddr & ((1 << 39) - 1), 0x100000, **RWX_AD)
    assert mmu.translate(vaddr, kind) == page_fault(vaddr, kind)
    assert bus.log == [] and mmu.counters["tlb_misses"] == 0


INVALID = {
    "v0": dict(v=False, r=True, w=True, x=True),
    "w_without_r": dict(w=True),
    "w_x_without_r": dict(w=True, x=True),
    **{f"reserved_bit{b}": dict(r=True, reserved=1 << (b - 54)) for b in range(54, 61)},
    "pbmt1": dict(r=True, pbmt=1), "pbmt2": dict(r=True, pbmt=2), "pbmt3": dict(r=True, pbmt=3),
    "n": dict(r=True, n=True),
    "nonleaf_reserved": dict(reserved=1), "nonleaf_pbmt": dict(pbmt=1), "nonleaf_n": dict(n=True),
}


@pytest.mark.parametrize("level", [2, 1, 0])
@pytest.mark.parametrize("name", list(INVALID))
def test_invalid_pte(level, name):
    mem, bus, mmu, t = machine()
    vaddr = 0x40201000
    addr = t.pte_addr(vaddr, level)
    flags = INVALID[name]
    leaf = flags.get("r") or flags.get("x")       # A/D on a non-leaf would fault by itself
    before = make_pte(0, a=leaf, d=leaf, **flags)
    mem.write64(addr, before)
    for kind in Kind:
        assert mmu.translate(vaddr, kind) == page_fault(vaddr, kind)
    assert mem.read64(addr) == before and valid_entries(mmu) == []
    assert all(op == "r" and not lock for op, _, lock in bus.log)


@pytest.mark.parametrize("level", [2, 1])
@pytest.mark.parametrize("flag", ["a", "d", "u"])
def test_nonleaf_with_a_d_u(level, flag):
    mem, bus, mmu, t = machine()
    vaddr = 0x40201000
    t.map(vaddr, 0x300000, **RWX_AD)
    addr = t.pte_addr(vaddr, level)
    mem.write64(addr, mem.read64(addr) | make_pte(0, v=False, **{flag: True}))
    assert mmu.translate(vaddr, Kind.LOAD) == page_fault(vaddr, Kind.LOAD)
    assert len(bus.log) == 3 - level


def test_nonleaf_at_level0():
    mem, bus, mmu, t = machine()
    t.map(0x5000, 0x9000, level=0)          # V=1, R=W=X=0: a pointer at level 0
    assert mmu.translate(0x5000, Kind.LOAD) == page_fault(0x5000, Kind.LOAD)
    assert len(bus.log) == 3


@pytest.mark.parametrize("level,paddr", [(1, 0x201000), (1, 0x1FF000), (2, 0x200000),
                                         (2, 0x3FFFF000)])
def test_misaligned_superpage_no_ad_write(level, paddr):
    mem, bus, mmu, t = machine()
    vaddr = 0x80000000 if level == 2 else 0x400000
    addr = t.map(vaddr, paddr, level=level, r=True, w=True)   # A=D=0: Svadu would write
    before = mem.read64(addr)
    for kind in (Kind.LOAD, Kind.STORE):
        assert mmu.translate(vaddr, kind) == page_fault(vaddr, kind)
    assert mem.read64(addr) == before
    assert all(e[0] == "r" and not e[2] for e in bus.log)


PERMS = [  # (flags, priv, sum, mxr, kind, allowed)
    (dict(r=True), Priv.S, False, False, Kind.LOAD, True),
    (dict(r=True), Priv.S, False, False, Kind.STORE, False),
    (dict(r=True), Priv.S, False, False, Kind.AMO, False),
    (dict(r=True), Priv.S, False, False, Kind.FETCH, False),
    (dict(r=True, w=True), Priv.S, False, False, Kind.STORE, True),
    (dict(r=True, w=True), Priv.S, False, False, Kind.AMO, True),
    (dict(x=True), Priv.S, False, False, Kind.FETCH, True),
    (dict(x=True), Priv.S, False, False, Kind.LOAD, False),
    (dict(x=True), Priv.S, False, True, Kind.LOAD, True),          # MXR
    (dict(x=True), Priv.S, False, True, Kind.STORE, False),
    (dict(r=True, u=True), Priv.S, False, False, Kind.LOAD, False),  # U page, no SUM
    (dict(r=True, u=True), Priv.S, True, False, Kind.LOAD, True),    # SUM
    (dict(r=True, w=True, u=True), Priv.S, True, False, Kind.STORE, True),
    (dict(x=True, u=True), Priv.S, True, False, Kind.FETCH, False),  # never fetch U from S
    (dict(x=True, u=True), Priv.S, True, True, Kind.LOAD, True),
    (dict(r=True, x=True, u=True), Priv.U, False, False, Kind.FETCH, True),
    (dict(r=True, w=True, x=True), Priv.U, True, True, Kind.LOAD, False),  # S page from U
    (dict(r=True, w=True, x=True), Priv.U, True, True, Kind.FETCH, False),
    (dict(x=True, u=True), Priv.U, False, True, Kind.LOAD, True),
    (dict(x=True, u=True), Priv.U, False, False, Kind.LOAD, False),
]


@pytest.mark.parametrize("flags,priv,sum_,mxr,kind,allowed", PERMS)
@pytest.mark.parametrize("level", [0, 1, 2])
def test_permissions_walk_and_hit(flags, priv, sum_, mxr, kind, allowed, level):
    mem, bus, mmu, t = machine(priv=priv, sum=sum_, mxr=mxr)
    vaddr = 0x40001234
    t.map(vaddr, 0, level=level, a=True, d=True, **flags)
    expect = ok(vaddr & OFFSET_MASK[level]) if allowed else page_fault(vaddr, kind)
    assert mmu.translate(vaddr, kind) == expect
    # The same request again hits when the walk filled, and answers alike without a walk.
    if not allowed:
        assert valid_entries(mmu) == []
        return
    walks = mmu.counters["walks"]
    assert mmu.translate(vaddr, kind) == expect
    assert mmu.counters["walks"] == walks and mmu.counters["tlb_hits"] == 1


def test_hit_rechecks_priv_sum_mxr():
    mem, bus, mmu, t = machine(sum=True)
    t.map(0x7000, 0x9000, x=True, u=True, a=True, d=True)
    assert mmu.translate(0x7000, Kind.FETCH) == page_fault(0x7000, Kind.FETCH)
    mmu.set_csr(mxr=True)
    assert mmu.translate(0x7000, Kind.LOAD) == ok(0x9000)       # fills
    n = len(bus.log)
    mmu.set_csr(mxr=False)
    assert mmu.translate(0x7000, Kind.LOAD) == page_fault(0x7000, Kind.LOAD)
    mmu.set_csr(mxr=True, sum=False)
    assert mmu.translate(0x7000, Kind.LOAD) == page_fault(0x7000, Kind.LOAD)
    mmu.set_csr(priv=Priv.U)
    assert mmu.translate(0x7000, Kind.FETCH) == ok(0x9000)
    assert len(bus.log) == n and mmu.counters["tlb_hits"] == 3


# -- A/D --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,flags", [(Kind.LOAD, dict(r=True)), (Kind.FETCH, dict(x=True)),
                                        (Kind.STORE, dict(r=True, w=True, a=False)),
                                        (Kind.STORE, dict(r=True, w=True, a=True)),
                                        (Kind.AMO, dict(r=True, w=True, a=True))])
def test_svade_faults_without_writing(kind, flags):
    mem, bus, mmu, t = machine(adue=False)
    addr = t.map(0x3000, 0x8000, **flags)
    before = mem.read64(addr)
    assert mmu.translate(0x3000, kind) == page_fault(0x3000, kind)
    assert mem.read64(addr) == before and len(bus.log) == 3 and valid_entries(mmu) == []


def test_svade_load_of_clean_page_is_fine():
    mem, bus, mmu, t = machine(adue=False)
    t.map(0x3000, 0x8000, r=True, w=True, a=True)
    assert mmu.translate(0x3008, Kind.LOAD) == ok(0x8008)
    # A STORE hitting D=0 faults at the hit, without a walk.
    assert mmu.translate(0x3008, Kind.STORE) == page_fault(0x3008, Kind.STORE)
    assert len(bus.log) == 3 and mmu.counters["tlb_hits"] == 1


@pytest.mark.parametrize("kind,flags,added", [
    (Kind.LOAD, dict(r=True, w=True), A),
    (Kind.FETCH, dict(x=True, g=True), A),
    (Kind.STORE, dict(r=True, w=True), A | D),
    (Kind.AMO, dict(r=True, w=True, a=True), D),
    (Kind.STORE, dict(r=True, w=True, a=True, rsw=3), D),
])
def test_svadu_sets_a_d_exactly(kind, flags, added):
    mem, bus, mmu, t = machine()
    addr = t.map(0x3000, 0x8000, **flags)
    before = mem.read64(addr)
    assert mmu.translate(0x3010, kind) == ok(0x8010)
    assert mem.read64(addr) == before | added
    assert bus.log[3:] == [("r", addr, True), ("w", addr, True), ("u",)]
    (i, e), = valid_entries(mmu)
    assert (e.a, e.d) == (True, bool((before | added) & D))
    assert mmu.counters["ad_updates"] == 1


def test_svadu_store_hitting_clean_entry_rewalks_into_same_index():
    mem, bus, mmu, t = machine(walk_cache_entries=0)
    t.map(0x1000, 0x8000, r=True, a=True, g=True)
    addr = t.map(0x3000, 0x9000, r=True, w=True)
    assert mmu.translate(0x1000, Kind.LOAD) == ok(0x8000)     # index 0
    assert mmu.translate(0x3000, Kind.LOAD) == ok(0x9000)     # index 1, A set, D=0
    assert mem.read64(addr) & (A | D) == A
    bus.log.clear()
    assert mmu.translate(0x3000, Kind.STORE) == ok(0x9000)
    assert bus.log == [("r", ROOT, False), ("r", bus.log[1][1], False), ("r", addr, False),
                       ("r", addr, True), ("w", addr, True), ("u",)]
    assert mem.read64(addr) & (A | D) == A | D
    entries = mmu.tlb.entries
    assert entries[1].d and entries[1].vpn == 3 and not entries[2].valid
    assert mmu.counters["tlb_hits"] == 1 and mmu.counters["walks"] == 3


def test_ad_rewalk_when_leaf_changes_before_locked_read():
    mem, bus, mmu, t = machine()
    addr = t.map(0x3000, 0x8000, r=True, w=True)
    changed = make_pte(0xA, r=True, w=True, rsw=1)

    def before(op, a, lock):
        if lock and op == "r" and mem.read64(addr) != changed:
            mem.write64(addr, changed)         # the kernel's store lands between the two reads
    bus.before = before
    assert mmu.translate(0x3040, Kind.STORE) == ok(0xA040)
    assert mem.read64(addr) == changed | A | D
    l1, l0 = bus.log[0][1], bus.log[1][1]
    assert bus.log == [("r", l1, False), ("r", l0, False), ("r", addr, False),
                       ("r", addr, True), ("u",),
                       ("r", addr, False),              # re-walk: non-leaves from the cache
                       ("r", addr, True), ("w", addr, True), ("u",)]
    assert mmu.counters["walks"] == 2 and mmu.counters["ad_updates"] == 1
    (_, e), = valid_entries(mmu)
    assert e.ppn == 0xA and e.d


def test_ad_rewalk_finds_leaf_invalidated():
    mem, bus, mmu, t = machine()
    addr = t.map(0x3000, 0x8000, r=True)

    def before(op, a, lock):
        if lock:
            mem.write64(addr, 0)
    bus.before = before
    assert mmu.translate(0x3000, Kind.LOAD) == page_fault(0x3000, Kind.LOAD)
    assert mem.read64(addr) == 0 and valid_entries(mmu) == []
    assert [e for e in bus.log if e[0] == "w"] == []


@pytest.mark.parametrize("failing", [0, 1, 2])
def test_bus_error_during_walk_each_level(failing):
    mem, bus, mmu, t = machine()
    t.map(0x3000, 0x8000, **RWX_AD)
    bus.fail = lambda op, addr, lock: len(bus.log) == failing + 1
    assert mmu.translate(0x3000, Kind.FETCH) == access_fault(0x3000, Kind.FETCH)
    assert len(bus.log) == failing + 1 and valid_entries(mmu) == []
    assert sum(v for v, _, _ in mmu.walk_cache.entries) == failing
    assert mmu.counters["access_faults"] == 1


@pytest.mark.parametrize("op", ["r", "w"])
def test_bus_error_in_ad_sequence(op):
    mem, bus, mmu, t = machine()
    addr = t.map(0x3000, 0x8000, r=True, w=True)
    before = mem.read64(addr)
    bus.fail = lambda o, a, lock: lock and o == op
    assert mmu.translate(0x3000, Kind.AMO) == access_fault(0x3000, Kind.AMO)
    assert bus.log[-1] == ("u",) and bus.log[-2] == (op, addr, True)
    assert not bus.locked and mem.read64(addr) == before
    assert valid_entries(mmu) == [] and mmu.counters["ad_updates"] == 0
    assert mmu.counters["access_faults"] == 1


def test_pte_address_beyond_phys_size():
    mem, bus, mmu, t = machine(ppn=PHYS >> 12)
    assert mmu.translate(0, Kind.LOAD) == access_fault(0, Kind.LOAD)
    assert bus.log == []
    # A non-leaf pointing outside memory: one read, then the access fault.
    mmu.set_csr(ppn=ROOT >> 12)
    mem.write64(ROOT, make_pte(PHYS >> 12))
    assert mmu.translate(0x1000, Kind.STORE) == access_fault(0x1000, Kind.STORE)
    assert bus.log == [("r", ROOT, False)]
    # The last PTE of memory is inside.
    mem.write64(ROOT, make_pte((PHYS - 4096) >> 12))
    mmu.sfence(False, 0, False, 0)
    mem.write64(PHYS - 8, make_pte(0x200, r=True, a=True))
    assert mmu.translate(0x3FE00010, Kind.LOAD) == ok(0x200010)
    assert bus.log[1:] == [("r", ROOT, False), ("r", PHYS - 8, False)]


def test_leaf_paddr_beyond_phys_size_after_ad():
    mem, bus, mmu, t = machine()
    addr = t.map(0x3000, PHYS, r=True, w=True)
    assert mmu.translate(0x3000, Kind.STORE) == access_fault(0x3000, Kind.STORE)
    assert mem.read64(addr) == make_pte(PHYS >> 12, r=True, w=True, a=True, d=True)
    assert valid_entries(mmu) == [] and mmu.counters["ad_updates"] == 1


def test_superpage_hit_beyond_phys_size():
    mem, bus, mmu, t = machine()
    t.map(0, 0, level=2, **RWX_AD)                     # 1 GiB over 16 MiB of memory
    assert mmu.translate(0x10, Kind.LOAD) == ok(0x10)
    assert mmu.translate(PHYS, Kind.LOAD) == access_fault(PHYS, Kind.LOAD)
    assert mmu.counters["tlb_hits"] == 1 and mmu.counters["walks"] == 1


# -- successful translations -------------------------------------------------------------

@pytest.mark.parametrize("level,vaddr,ppn,paddr", [
    (0, 0xFFFF_FFC0_2010_3ABC, 0x777, 0x777ABC),
    (1, 0x0000_0000_2012_3ABC, 0x600, 0x723ABC),
    (2, 0x0000_0000_4000_0FF8, 0x0, 0xFF8),
    (2, 0xFFFF_FFFF_C012_3456, 0x0, 0x123456),
])
def test_translations(level, vaddr, ppn, paddr):
    mem, bus, mmu, t = machine()
    t.map(vaddr, ppn << 12, level=level, g=True, **RWX_AD)
    assert mmu.translate(vaddr, Kind.LOAD) == ok(paddr)
    assert len(bus.log) == 3 - level
    assert mmu.tlb.entries[0] == TlbEntry(True, 1, True, level, (vaddr >> 12) & (2**27 - 1),
                                          ppn, True, True, True, False, True, True)
    flip = 0x808 if level == 0 else 0x1008        # another address (another 4K) in the page
    assert mmu.translate(vaddr ^ flip, Kind.STORE) == ok(paddr ^ flip)
    assert mmu.counters == dict(tlb_hits=1, tlb_misses=1, walks=1, ad_updates=0,
                                page_faults=0, access_faults=0)


def test_stale_tlb_entry_until_sfence():
    mem, bus, mmu, t = machine()
    addr = t.map(0x5000, 0x8000, r=True, w=True, a=True, d=True)
    assert mmu.translate(0x5000, Kind.STORE) == ok(0x8000)
    mem.write64(addr, make_pte(0x9, r=True, a=True))      # remapped read-only, no sfence
    assert mmu.translate(0x5000, Kind.STORE) == ok(0x8000)
    mmu.sfence(True, 0x5000, False, 0)
    assert mmu.translate(0x5000, Kind.STORE) == page_fault(0x5000, Kind.STORE)
    assert mmu.translate(0x5000, Kind.LOAD) == ok(0x9000)


def test_asid_and_global_match():
    mem, bus, mmu, t = machine()
    t.map(0x1000, 0x8000, r=True, a=True)
    t.map(0x2000, 0x9000, r=True, a=True, g=True)
    mmu.translate(0x1000, Kind.LOAD), mmu.translate(0x2000, Kind.LOAD)
    mmu.set_csr(asid=2)
    walks = mmu.counters["walks"]
    mmu.translate(0x2000, Kind.LOAD)
    assert mmu.counters["walks"] == walks                  # global: hit under asid 2
    mmu.translate(0x1000, Kind.LOAD)
    assert mmu.counters["walks"] == walks + 1              # asid 1 entry does not match
    assert [(e.asid, e.vpn) for _, e in valid_entries(mmu)] == [(1, 1), (1, 2), (2, 1)]


def test_lowest_index_wins():
    mem, bus, mmu, t = machine()
    flags = (True, False, False, False, True, False)
    mmu.tlb.fill(1, TlbEntry(True, 1, False, 0, 0x201, 0x5, *flags))
    mmu.tlb.fill(2, TlbEntry(True, 1, True, 1, 0x200, 0x400, *flags))
    assert mmu.translate(0x201000, Kind.LOAD) == ok(0x5000)
    mmu.tlb.fill(0, TlbEntry(True, 7, True, 2, 0x0, 0x0, *flags))
    assert mmu.translate(0x201000, Kind.LOAD) == ok(0x201000)
    mmu.sfence(True, 0x201000, True, 1)            # globals stay
    assert mmu.translate(0x201000, Kind.LOAD) == ok(0x201000)
    mmu.tlb.fill(0, TlbEntry(False, 0, False, 0, 0, 0, *flags))
    assert mmu.translate(0x201000, Kind.LOAD) == ok(0x401000)
    assert bus.log == []


# -- sfence -----------------------------------------------------------------------------

def sfence_setup():
    """Entries: 0 asid1 4K@0x1000, 1 asid1 2M@0x200000, 2 global 4K@0x1000-alias, 3 asid2 4K."""
    mem, bus, mmu, t = machine()
    t.map(0x1000, 0x8000, r=True, a=True)
    t.map(0x200000, 0x400000, level=1, r=True, a=True)
    t.map(0x40001000, 0x9000, r=True, a=True, g=True)
    t.map(0x40200000, 0x600000, level=1, r=True, a=True, g=True)
    for va in (0x1000, 0x200000, 0x40001000, 0x40200000):
        mmu.translate(va, Kind.LOAD)
    mmu.set_csr(asid=2)
    mmu.translate(0x1000, Kind.LOAD)
    mmu.translate(0x200000, Kind.LOAD)
    mmu.set_csr(asid=1)
    assert [(e.asid, e.g, e.level, e.vpn) for e in mmu.tlb.entries[:6]] == [
        (1, False, 0, 0x1), (1, False, 1, 0x200), (1, True, 0, 0x40001),
        (1, True, 1, 0x40200), (2, False, 0, 0x1), (2, False, 1, 0x200)]
    assert sum(v for v, _, _ in mmu.walk_cache.entries) == 4
    return mmu


def live(mmu):
    return [i for i, e in valid_entries(mmu)]


def test_sfence_all():
    mmu = sfence_setup()
    mmu.sfence(False, 0x1000, False, 7)
    assert live(mmu) == [] and not any(v for v, _, _ in mmu.walk_cache.entries)


def test_sfence_by_asid():
    mmu = sfence_setup()
    mmu.sfence(False, 0, True, 2)
    assert live(mmu) == [0, 1, 2, 3]
    mmu.sfence(False, 0, True, 1)
    assert live(mmu) == [2, 3]                     # globals survive an ASID flush
    assert not any(v for v, _, _ in mmu.walk_cache.entries)
    assert mmu.tlb.entries[0].vpn == 0x1          # only the valid bit clears


def test_sfence_by_vaddr():
    mmu = sfence_setup()
    mmu.sfence(True, 0x2FF123, False, 0)          # inside the 2M pages at 0x200000
    assert live(mmu) == [0, 2, 3, 4]
    mmu.sfence(True, 0x40201000, False, 0)        # global 2M superpage, by an inner address
    mmu.sfence(True, 0x40001FFF, False, 0)        # global 4K
    assert live(mmu) == [0, 4]
    assert sum(v for v, _, _ in mmu.walk_cache.entries) == 4    # walk cache kept


def test_sfence_by_vaddr_and_asid():
    mmu = sfence_setup()
    mmu.sfence(True, 0x1000, True, 1)
    assert live(mmu) == [1, 2, 3, 4, 5]
    mmu.sfence(True, 0x40001000, True, 1)         # global: kept
    mmu.sfence(True, 0x3FF000, True, 2)
    assert live(mmu) == [1, 2, 3, 4]
    assert sum(v for v, _, _ in mmu.walk_cache.entries) == 4


# -- tree-PLRU ---------------------------------------------------------------------------

def fill_order(n, misses):
    """Indices that n+misses successive misses (distinct pages) fill."""
    mem, bus, mmu, t = machine(tlb_entries=n)
    order = []
    for k in range(n + misses):
        t.map(k << 12, 0x100000 + (k << 12), r=True, a=True)
        mmu.translate(k << 12, Kind.LOAD)
        order.append(next(i for i, e in enumerate(mmu.tlb.entries) if e.valid and e.vpn == k))
    return mmu, t, order


def test_plru_order_4():
    # Invalid first; then, with t = 0 everywhere after touching 0..3 in order:
    # victim 0 (t1=t2=1) -> 2 (t3=1, t1=0) -> 1 (t2=0, t1=1) -> 3 (t3=0, t1=0) -> 0 ...
    mmu, t, order = fill_order(4, 8)
    assert order == [0, 1, 2, 3, 0, 2, 1, 3, 0, 2, 1, 3]


def test_plru_hits_steer_victim_4():
    mmu, t, order = fill_order(4, 0)
    mmu.translate(0 << 12, Kind.LOAD)        # touch 0: t1=1, t2=1
    mmu.translate(2 << 12, Kind.LOAD)        # touch 2: t3=1, t1=0 -> victim under 2: 1
    assert mmu.tlb.plru.victim() == 1
    assert [mmu.tlb.plru.t(n) for n in (1, 2, 3)] == [0, 1, 1]
    t.map(9 << 12, 0, r=True, a=True)
    mmu.translate(9 << 12, Kind.LOAD)
    assert mmu.tlb.entries[1].vpn == 9 and mmu.tlb.plru.victim() == 3


def test_plru_order_16():
    # After touching 0..15 in order every node points left (0); each victim then flips
    # its path away, giving the bit-reversed order.
    mmu, t, order = fill_order(16, 20)
    assert order == list(range(16)) + [0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15,
                                       0, 8, 4, 12]


def test_plru_faulting_hit_touches():
    mmu, t, order = fill_order(4, 0)
    mmu.translate(1 << 12, Kind.STORE)       # page fault on a hit (R only): still a hit
    assert mmu.counters["tlb_hits"] == 1 and mmu.tlb.plru.victim() == 2


def test_plru_tree_one_entry():
    p = PlruTree(1)
    p.touch(0)
    assert p.victim() == 0


# -- walk cache --------------------------------------------------------------------------

def test_walk_cache_saves_reads():
    mem, bus, mmu, t = machine(walk_cache_entries=2)
    for k in range(4):
        t.map(k << 12, 0x100000 + (k << 12), r=True, a=True)
    mmu.translate(0x0000, Kind.LOAD)
    assert len(bus.log) == 3
    l1 = bus.log[1][1]
    assert mmu.walk_cache.entries == [(True, ROOT, mem.read64(ROOT)),
                                      (True, l1, mem.read64(l1))]
    mmu.translate(0x1000, Kind.LOAD)
    assert len(bus.log) == 4 and bus.log[3][1] == t.pte_addr(0x1000, 0)
    mmu.sfence(True, 0x1000, False, 0)           # by address: walk cache kept
    mmu.translate(0x1000, Kind.LOAD)
    assert len(bus.log) == 5
    mmu.sfence(False, 0, True, 1)                # no address: walk cache gone
    mmu.translate(0x2000, Kind.LOAD)
    assert len(bus.log) == 8 and mmu.walk_cache.pointer == 0
    assert mmu.counters["walks"] == 4


def test_walk_cache_round_robin():
    mem, bus, mmu, t = machine(walk_cache_entries=3)
    for k in range(3):
        t.map(k << 21, 0x100000, r=True, a=True)   # one level-1 table, three level-0 ones
    for k in range(3):
        mmu.translate(k << 21, Kind.LOAD)
    l1 = [t.pte_addr(k << 21, 1) for k in range(3)]
    # Inserts ROOT, l1[0], l1[1], l1[2]: the fourth wraps to slot 0, evicting ROOT.
    assert [a for _, a, _ in mmu.walk_cache.entries] == [l1[2], l1[0], l1[1]]
    assert mmu.walk_cache.pointer == 1
    mmu.sfence(True, 0, False, 0)
    bus.log.clear()
    mmu.translate(0, Kind.LOAD)
    # ROOT misses and goes to slot 1, evicting l1[0] before the walk looks for it.
    assert bus.log == [("r", ROOT, False), ("r", l1[0], False), ("r", t.pte_addr(0, 0), False)]
    assert [a for _, a, _ in mmu.walk_cache.entries] == [l1[2], ROOT, l1[0]]


def test_walk_cache_disabled():
    mem, bus, mmu, t = machine(walk_cache_entries=0)
    t.map(0, 0x100000, r=True, a=True)
    t.map(0x1000, 0x100000, r=True, a=True)
    mmu.translate(0, Kind.LOAD)
    mmu.translate(0x1000, Kind.LOAD)
    assert len(bus.log) == 6 and mmu.walk_cache.entries == []


def test_walk_cache_keeps_only_passed_nonleaves():
    mem, bus, mmu, t = machine()
    t.map(0x1000, 0x100000, r=True, a=True)
    l1 = t.pte_addr(0x1000, 1)
    mem.write64(l1, mem.read64(l1) | A)               # non-leaf with A: fails step 5
    assert mmu.translate(0x1000, Kind.LOAD) == page_fault(0x1000, Kind.LOAD)
    assert [a for v, a, _ in mmu.walk_cache.entries if v] == [ROOT]


# -- stale walks ---------------------------------------------------------------------------

@pytest.mark.parametrize("at", [0, 1, 2])
@pytest.mark.parametrize("by_vaddr", [False, True])
def test_sfence_during_walk_makes_it_stale(at, by_vaddr):
    mem, bus, mmu, t = machine()
    t.map(0x1000, 0x100000, r=True, a=True)
    n = [0]

    def before(op, addr, lock):
        if n[0] == at:
            mmu.sfence(by_vaddr, 0x1000, False, 0)
        n[0] += 1
    bus.before = before
    assert mmu.translate(0x1000, Kind.LOAD) == ok(0x100000)
    assert valid_entries(mmu) == []
    cached = [a for v, a, _ in mmu.walk_cache.entries if v]
    # Non-leaves read before the sfence stay only if the sfence kept the walk cache.
    assert cached == ([ROOT, t.pte_addr(0x1000, 1)][:at] if by_vaddr else [])
    bus.before = None
    assert mmu.translate(0x1000, Kind.LOAD) == ok(0x100000)
    assert len(valid_entries(mmu)) == 1


def test_sfence_during_ad_sequence_makes_it_stale():
    mem, bus, mmu, t = machine()
    addr = t.map(0x1000, 0x100000, r=True, w=True)
    bus.before = lambda op, a, lock: op == "w" and mmu.sfence(True, 0x1000, True, 1)
    assert mmu.translate(0x1000, Kind.STORE) == ok(0x100000)
    assert mem.read64(addr) & (A | D) == A | D and valid_entries(mmu) == []


def test_stale_rewalk_stays_stale():
    mem, bus, mmu, t = machine()
    addr = t.map(0x1000, 0x100000, r=True, w=True)

    def before(op, a, lock):
        if lock and op == "r" and mem.read64(addr) & 0x300 == 0:
            mmu.sfence(True, 0x1000, False, 0)
            mem.write64(addr, mem.read64(addr) | 0x100)
    bus.before = before
    assert mmu.translate(0x1000, Kind.STORE) == ok(0x100000)
    assert mmu.counters["walks"] == 2 and valid_entries(mmu) == []


# -- construction, misuse -----------------------------------------------------------------

@pytest.mark.parametrize("kwargs,name", [
    (dict(tlb_entries=0), "tlb_entries"), (dict(tlb_entries=12), "tlb_entries"),
    (dict(tlb_entries=-4), "tlb_entries"), (dict(walk_cache_entries=-1), "walk_cache_entries"),
    (dict(walk_cache_entries=65), "walk_cache_entries"), (dict(phys_size=0), "phys_size"),
    (dict(phys_size=4095), "phys_size"), (dict(phys_size=-4096), "phys_size"),
])
def test_bad_constructor_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        GoldenMMU(Memory(4096), **kwargs)


def test_defaults_and_limits():
    mmu = GoldenMMU(Memory(8192), walk_cache_entries=64, tlb_entries=1)
    assert mmu.phys_size == 8192 and isinstance(mmu.bus, MemoryBus)
    assert len(mmu.walk_cache.entries) == 64 and len(mmu.tlb.entries) == 1
    with pytest.raises(ValueError, match="mode"):
        mmu.set_csr(mode=9)
    with pytest.raises(ValueError, match="priv"):
        mmu.set_csr(priv=2)
    with pytest.raises(ValueError, match="asid"):
        mmu.set_csr(asid=1 << 16)
    with pytest.raises(TypeError, match="satp"):
        mmu.set_csr(satp=0)
    with pytest.raises(ValueError):
        mmu.translate(1 << 64, Kind.LOAD)
    with pytest.raises(ValueError):
        mmu.translate(0, 4)


def test_translate_from_inside_a_walk_is_refused():
    mem, bus, mmu, t = machine()
    t.map(0x1000, 0x100000, r=True, a=True)
    bus.before = lambda op, a, lock: mmu.translate(0x1000, Kind.LOAD)
    with pytest.raises(RuntimeError, match="inside a bus transaction"):
        mmu.translate(0x1000, Kind.LOAD)
    bus.before = None
    assert mmu.translate(0x1000, Kind.LOAD) == ok(0x100000)


def test_response_hashable():
    assert len({ok(1), ok(1), page_fault(0, Kind.LOAD)}) == 2


# -- the TLB index against a linear scan ------------------------------------------------------

entry_st = st.builds(
    lambda valid, asid, g, level, vpn: TlbEntry(valid, asid, g, level, vpn, 0, True, False,
                                                False, False, True, False),
    st.booleans(), st.integers(0, 2), st.booleans(), st.integers(0, 2),
    st.sampled_from([0, 1, 0x200, 0x201, 0x40000, 0x40201, 0x7FFFFFF]))
op_st = st.one_of(
    st.tuples(st.just("fill"), st.integers(0, 7), entry_st),
    st.tuples(st.just("flush"), st.booleans(), st.sampled_from([0, 1, 0x201, 0x40001]),
              st.booleans(), st.integers(0, 2)),
    st.tuples(st.just("lookup"), st.sampled_from([0, 1, 0x201, 0x40001, 0x40201, 0x7FFFFFF]),
              st.integers(0, 2)))


@settings(max_examples=150, deadline=None)
@given(st.lists(op_st, max_size=40))
def test_tlb_index_matches_linear_scan(ops):
    mmu = GoldenMMU(Memory(4096), tlb_entries=8)
    tlb = mmu.tlb
    for op in ops:
        if op[0] == "fill":
            tlb.fill(op[1], op[2])
        elif op[0] == "flush":
            tlb.flush(op[1], op[2], op[3], op[4])
        else:
            _, vpn, asid = op
            scan = [i for i, e in enumerate(tlb.entries) if e.matches(vpn, asid)]
            assert tlb.lookup(vpn, asid) == (scan[0] if scan else -1)


# -- the TLB answers as a fresh walk would, while the tables do not change ------------------

def mostly(value):
    return st.sampled_from([value] * 5 + [not value])


leaf_st = st.fixed_dictionaries({
    "level": st.integers(0, 2), "slot": st.integers(0, 3),
    "ppn": st.sampled_from([0x0, 0x0, 0x80, 0x200, 0x201, 0x400, 0x40000]),
    "v": mostly(True), "r": mostly(True), "w": mostly(True), "x": st.booleans(),
    "u": mostly(False), "g": st.booleans(), "a": mostly(True), "d": st.booleans(),
    "n": mostly(False)})
context_st = st.none() | st.none() | st.fixed_dictionaries({
    "priv": st.sampled_from([Priv.U, Priv.S, Priv.S, Priv.M]), "sum": mostly(True),
    "mxr": st.booleans(), "adue": mostly(True), "asid": st.sampled_from([1, 1, 2])})
request_st = st.tuples(
    st.integers(0, 3), st.sampled_from([0, 0, 0x8, 0x1008, 0x1FF008, 0x3FF000, 1 << 38]),
    st.sampled_from(list(Kind)), context_st)


@settings(max_examples=100, deadline=None)
@given(st.lists(leaf_st, min_size=1, max_size=6),
       st.lists(request_st, min_size=1, max_size=10))
def test_tlb_hits_answer_as_walks(leaves, requests):
    # 4 MiB of memory: ppn 0x400 and up are outside it, and so is most of a superpage.
    cached, fresh = (machine(tlb_entries=4, phys=4 << 20) for _ in range(2))
    bases = [0, 1 << 30, 3 << 30, 0xFFFF_FFFF_8000_0000]     # one level-2 PTE each
    by_slot = {leaf["slot"]: leaf for leaf in leaves}
    for mem, _, _, t in (cached, fresh):
        for leaf in by_slot.values():
            flags = {f: leaf[f] for f in ("v", "r", "w", "x", "u", "g", "a", "d", "n")}
            t.map(bases[leaf["slot"]], leaf["ppn"] << 12, level=leaf["level"], **flags)
    for slot, offset, kind, context in requests * 3:       # repeated, so that some hit
        vaddr = (bases[slot] + offset) & ((1 << 64) - 1)
        for _, _, mmu, _ in (cached, fresh):
            mmu.set_csr(**context or {})
        fresh[2].sfence(False, 0, False, 0)
        assert cached[2].translate(vaddr, kind) == fresh[2].translate(vaddr, kind)
    assert cached[0].data == fresh[0].data

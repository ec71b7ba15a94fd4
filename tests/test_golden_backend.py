"""The golden backend against the hardware seam."""

import pytest

from mkclean.sim.model.backend import GoldenHardware
from mkclean.sim.hw.seam import Cause, Csr, Hardware, Kind, Priv, Trap
from mkclean.sim.model import make_pte
from mkclean.sim.model.pte import A, D

ROOT, L1, L0 = 0x1000, 0x2000, 0x3000


@pytest.fixture
def hw():
    hw = GoldenHardware(phys_size=1 << 20, tlb_entries=4, walk_cache_entries=2)
    hw.write_pte(ROOT, make_pte(L1 >> 12))
    hw.write_pte(L1, make_pte(L0 >> 12))
    hw.write_pte(L0 + 8 * 1, make_pte(0x10, r=True, w=True, u=True, a=True, d=True))
    hw.write_pte(L0 + 8 * 2, make_pte(0x11, r=True, u=True, a=True))
    hw.write_pte(L0 + 8 * 3, make_pte(0x12, r=True, w=True, x=True, u=True))
    hw.set_csr(mode=8, ppn=ROOT >> 12, asid=3, priv=Priv.U)
    return hw


def test_implements_the_protocol():
    hw = GoldenHardware()
    for name in [n for n in dir(Hardware) if not n.startswith("_")] + ["phys_size", "csr"]:
        assert hasattr(hw, name), name
    assert hw.phys_size == 64 << 20 == hw.mmu.phys_size == hw.mem.size
    assert isinstance(hw.csr, Csr) and hw.csr is hw.mmu.csr
    with pytest.raises(ValueError, match="tlb_entries"):
        GoldenHardware(tlb_entries=3)
    with pytest.raises(ValueError, match="phys_size"):
        GoldenHardware(phys_size=1000)


def test_physical_read_write(hw):
    hw.write(0x10000, b"hello")
    assert hw.read(0x10000, 5) == b"hello" == hw.mem.read(0x10000, 5)
    with pytest.raises(IndexError):
        hw.read((1 << 20) - 2, 4)


def test_pte_read_write_cas(hw):
    addr = L0 + 8 * 5
    hw.write_pte(addr, 0x1234)
    assert hw.read_pte(addr) == 0x1234 and hw.read(addr, 2) == b"\x34\x12"
    assert hw.cas_pte(addr, 0x1234, 0x5678) == 0x1234          # success: the old value
    assert hw.read_pte(addr) == 0x5678
    assert hw.cas_pte(addr, 0x1234, 0x9999) == 0x5678          # failure: what was found
    assert hw.read_pte(addr) == 0x5678
    for call in (lambda: hw.read_pte(addr + 4), lambda: hw.write_pte(addr + 1, 0),
                 lambda: hw.cas_pte(addr + 2, 0, 0)):
        with pytest.raises(ValueError, match="aligned"):
            call()


def test_cas_refused_inside_locked_sequence(hw):
    hw.bus.locked = True            # as inside the walker's read-compare-write
    with pytest.raises(RuntimeError, match="locked"):
        hw.cas_pte(L0, 0, 1)
    hw.bus.locked = False
    assert hw.cas_pte(L0, 0, 1) == 0


def test_set_csr(hw):
    hw.set_csr(sum=True, mxr=True, adue=False, priv=Priv.S)
    assert (hw.csr.sum, hw.csr.mxr, hw.csr.adue, hw.csr.priv) == (True, True, False, Priv.S)
    with pytest.raises(TypeError):
        hw.set_csr(bogus=1)


def test_access_load_store_fetch_amo(hw):
    assert hw.access(0x1008, Kind.STORE, b"\x01\x02\x03") == b""
    assert hw.read(0x10008, 3) == b"\x01\x02\x03"
    assert hw.access(0x1008, Kind.LOAD, size=4) == b"\x01\x02\x03\x00"
    assert hw.access(0x1008, Kind.AMO, b"\xff\xee") == b"\x01\x02"        # a swap
    assert hw.read(0x10008, 3) == b"\xff\xee\x03"
    assert hw.access(0x3000, Kind.FETCH, size=2) == b"\x00\x00"
    assert hw.read_pte(L0 + 24) & (A | D) == A                             # Svadu set A
    assert hw.access(0x1FFC, Kind.LOAD, size=4) == b"\x00" * 4           # last bytes of page


def test_access_traps(hw):
    trap = hw.access(0x2010, Kind.STORE, b"x")
    assert trap == Trap(Cause.STORE_PAGE, 0x2010) and isinstance(trap.cause, Cause)
    assert hw.access(0x5000, Kind.LOAD, size=1) == Trap(Cause.LOAD_PAGE, 0x5000)
    assert hw.access(0x1000, Kind.FETCH, size=4) == Trap(Cause.FETCH_PAGE, 0x1000)
    hw.set_csr(priv=Priv.M)
    assert hw.access(1 << 20, Kind.LOAD, size=1) == Trap(Cause.LOAD_ACCESS, 1 << 20)
    assert hw.access(0x10000, Kind.LOAD, size=1) == b"\x00"               # bare
    hw.set_csr(priv=Priv.S, adue=False)
    assert hw.access(0x3000, Kind.LOAD, size=1) == Trap(Cause.LOAD_PAGE, 0x3000)  # no SUM


def test_access_rejects_page_crossing(hw):
    with pytest.raises(ValueError, match="crosses"):
        hw.access(0x1FFC, Kind.LOAD, size=8)
    with pytest.raises(ValueError, match="crosses"):
        hw.access(0x1FFF, Kind.STORE, b"ab")
    with pytest.raises(ValueError):
        hw.access(0x1000, Kind.STORE)
    assert hw.mmu.counters["tlb_misses"] == 0


def test_sfence_vma_operands(hw):
    hw.access(0x1000, Kind.LOAD, size=1)
    hw.access(0x2000, Kind.LOAD, size=1)
    live = lambda: [e.vpn for e in hw.mmu.tlb.entries if e.valid]       # noqa: E731
    hw.sfence_vma(0x1000)
    assert live() == [2] and sum(v for v, _, _ in hw.mmu.walk_cache.entries) == 2
    hw.sfence_vma(asid=4)
    assert live() == [2]
    hw.sfence_vma(0x2000, 3)
    assert live() == []
    hw.access(0x1000, Kind.LOAD, size=1)
    hw.sfence_vma()
    assert live() == [] and not any(v for v, _, _ in hw.mmu.walk_cache.entries)


def test_stale_tlb_through_the_seam(hw):
    """A PTE changed without sfence keeps translating the old way (what the kernel must avoid)."""
    assert hw.access(0x1000, Kind.STORE, b"a") == b""
    hw.cas_pte(L0 + 8, hw.read_pte(L0 + 8), make_pte(0x10, r=True, u=True, a=True))
    assert hw.access(0x1000, Kind.STORE, b"b") == b""
    hw.sfence_vma(0x1000, 3)
    assert hw.access(0x1000, Kind.STORE, b"c") == Trap(Cause.STORE_PAGE, 0x1000)

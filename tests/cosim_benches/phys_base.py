"""Directed cocotb tests of the RTL MMU built at a physical base (tests/test_rtl_phys_base.py
builds it at 0x8000_0000, QEMU's): memory is [phys_base, phys_base + phys_size). Every
translation also runs on the golden model at the same base (responses and bus
transactions must agree, pair.py), and each test asserts the outcome hdl/README.md
prescribes, so a bug both sides share still fails: addresses below the base are outside
memory as much as those past its end, and the walker's bus carries offsets."""

import cocotb

from cosim_benches.directed import expect as expect_response
from mkclean.sim.cosim.build import params_from_env
from mkclean.sim.cosim.pair import Pair
from mkclean.sim.cosim.stimulus import LEAF_RW, PTE_A, PTE_D, PTE_V, PTE_X, PageTables, pte
from mkclean.sim.hw.seam import Kind

#: names of the tests here, for pytest to parametrize over
NAMES = []

LOAD, STORE, FETCH, AMO = Kind.LOAD, Kind.STORE, Kind.FETCH, Kind.AMO
AF = {LOAD: 5, STORE: 7, FETCH: 1, AMO: 7}
VA = 0x0000_0040_2000          # an ordinary user-half address
VA_2M = 0x4020_0000
VA_1G = 0x3f_c000_0000         # the last 1G page of the lower half
DATA = 0x80_0000               # data pages from base + 8 MiB


def directed(fn):
    NAMES.append(fn.__name__)
    return cocotb.test()(fn)


class Setup:
    def __init__(self, pair, pt):
        self.pair, self.pt = pair, pt
        self.base = pair.phys_base
        self.size = pair.params["phys_size"]
        self.end = self.base + self.size
        self.root = pt.root

    def inside(self, log):
        return all(self.base <= addr < self.end for _, _, addr, _ in log)


async def setup(dut, **csr):
    params = params_from_env()
    assert params["phys_base"], "this bench is for an MMU built at a base other than 0"
    pair = Pair(dut, params)
    # Every bus address the walker puts out, as the RAM takes it (an offset).
    pair.offsets = []
    physical = pair.rtl.ram.physical

    def spy(offset):
        pair.offsets.append(offset)
        return physical(offset)
    pair.rtl.ram.physical = spy
    await pair.start()
    base = pair.phys_base
    pair.memory.write(base + 0x1000, bytes(4096))
    pt = PageTables(pair.memory, base + 0x1000, base + 0x10000)
    await pair.set_csr(**{"mode": 8, "ppn": pt.root >> 12, **csr})
    return Setup(pair, pt)


async def expect(s, vaddr, kind, *, paddr=None, cause=None):
    """directed.py's expectation, and no bus transaction outside memory."""
    out = await expect_response(s.pair, vaddr, kind, paddr=paddr, cause=cause)
    assert s.inside(out.bus_log), f"{vaddr:#x}: a transaction outside memory {out.bus_log}"
    return out


@directed
async def translate_4k_2m_1g_at_the_base(dut):
    """Pages inside memory at the base translate to their physical addresses; the TLB
    keeps them as the golden model does (its full PPNs through the debug port), hits
    answer in a cycle; the walker's bus carried offsets below the memory's size."""
    s = await setup(dut)
    base = s.base
    s.pt.map(VA, base + DATA)
    s.pt.map(VA_2M, base + 0x20_0000, level=1)
    s.pt.map(VA_1G, base, level=2)                # 1G-aligned: the page holds memory
    await expect(s, VA + 0x123, LOAD, paddr=base + DATA + 0x123)
    await expect(s, VA_2M + 0x1f_f008, STORE, paddr=base + 0x3f_f008)
    await expect(s, VA_1G + 0xabc_def, LOAD, paddr=base + 0xabc_def)
    await s.pair.check_tlb()
    entries = [e for e in s.pair.golden.tlb.entries if e.valid]
    assert sorted(e.ppn for e in entries) == sorted(
        [(base + DATA) >> 12, (base + 0x20_0000) >> 12, base >> 12]), entries
    out = await expect(s, VA + 8, LOAD, paddr=base + DATA + 8)
    assert out.bus_log == [] and out.cycles == 1, out
    assert s.pair.offsets and all(o < s.size for o in s.pair.offsets), s.pair.offsets
    s.pair.check_memory()


@directed
async def pte_address_outside_is_an_access_fault(dut):
    """A root or a pointer below the base or past the end: an access fault at that level,
    with no transaction outside memory (hdl/README.md, step 3)."""
    s = await setup(dut)
    base, end = s.base, s.end
    s.pt.map(VA, base + DATA)
    for name, ppn in (("below", (base >> 12) - 1), ("past", end >> 12), ("zero", 0),
                      ("far", (1 << 44) - 1)):
        await s.pair.set_csr(ppn=ppn)
        await s.pair.sfence()
        out = await expect(s, VA, LOAD, cause=5)
        assert out.bus_log == [], (name, out.bus_log)
    await s.pair.set_csr(ppn=s.root >> 12)
    l1 = s.pt.pte_addr(VA, 1)
    good = s.pair.read64(l1)
    for name, ppn in (("below", (base >> 12) - 1), ("past", end >> 12), ("zero", 0)):
        s.pair.write64(l1, pte(ppn, PTE_V))
        for kind in (LOAD, STORE, FETCH):
            await s.pair.sfence()           # the walk cache too: both PTEs are read
            out = await expect(s, VA, kind, cause=AF[kind])
            assert [a for _, _, a, _ in out.bus_log] == [s.root, l1], (name, out.bus_log)
    s.pair.write64(l1, good)
    await s.pair.sfence()
    await expect(s, VA, LOAD, paddr=base + DATA)


@directed
async def leaf_outside_is_an_access_fault_after_its_ad(dut):
    """A leaf whose page is below the base or past the end passed every page-fault
    check: Svadu writes its A/D, then the range check faults (as in Sail), and nothing
    stays in the TLB."""
    s = await setup(dut, adue=1)
    base, end = s.base, s.end
    for i, frame in enumerate((base - 0x1000, end, 0, (1 << 56) - 0x1000, base - (1 << 30))):
        va = VA + (i << 12)
        addr = s.pt.map(va, frame, PTE_V | 0x2 | 0x4)                   # R W, no A, no D
        out = await expect(s, va + 0x18, STORE, cause=7)
        assert s.pair.read64(addr) & (PTE_A | PTE_D) == PTE_A | PTE_D, hex(frame)
        assert [(we, lock) for we, lock, *_ in out.bus_log][-2:] == [(0, 1), (1, 1)]
        out = await expect(s, va + 0x18, LOAD, cause=5)
        assert out.bus_log, "an access fault left its leaf in the TLB"
    await s.pair.check_tlb()
    assert not any(e.valid for e in s.pair.golden.tlb.entries)


@directed
async def superpage_holding_memory_hits_outside_it(dut):
    """A 1G page at the base holds memory and far more: filled from inside, its hits past
    the end are access faults from the TLB (step 8 on a hit), those inside translate,
    and neither walks."""
    s = await setup(dut)
    base = s.base
    s.pt.map(VA_1G, base & ~((1 << 30) - 1), LEAF_RW | PTE_X, level=2)
    into = base & ((1 << 30) - 1)
    await expect(s, VA_1G + into + 0x40, LOAD, paddr=base + 0x40)
    for offset, kind, want in ((s.size, FETCH, None), (s.size - 8, AMO, s.end - 8),
                               (s.size + 0x1000_0000, LOAD, None), (0x80, STORE, base + 0x80)):
        if want is None:
            out = await expect(s, VA_1G + into + offset, kind, cause=AF[kind])
        else:
            out = await expect(s, VA_1G + into + offset, kind, paddr=want)
        assert out.bus_log == [], f"{offset:#x}: walked {out.bus_log}"
    await s.pair.check_tlb()


@directed
async def bare_and_m_mode_pass_through_inside_memory_only(dut):
    s = await setup(dut)
    base, end = s.base, s.end
    for csr in ({"mode": 0}, {"mode": 8, "priv": 3}):
        await s.pair.set_csr(**csr)
        await expect(s, base, LOAD, paddr=base)
        await expect(s, end - 8, STORE, paddr=end - 8)
        for vaddr in (base - 8, end, 0, 0x1000, base | 1 << 56, base | 1 << 63):
            await expect(s, vaddr, LOAD, cause=5)
        await s.pair.set_csr(mode=8, priv=1)

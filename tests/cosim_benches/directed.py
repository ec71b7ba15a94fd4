"""Directed cocotb tests of the RTL MMU: one per fault class of REFERENCES.md, each sfence
case, the sfence-during-walk race and the A/D re-walk. Every translation is also run on
the golden model (responses and bus transactions must agree), and each test asserts the
outcome the contract prescribes, so a bug shared by both sides still fails."""

import cocotb

from mkclean.sim.cosim.build import params_from_env
from mkclean.sim.cosim.pair import Event, Pair
from mkclean.sim.cosim.stimulus import (LEAF_RW, PTE_A, PTE_D, PTE_G, PTE_R, PTE_U, PTE_V,
                                        PTE_W, PTE_X, PageTables, pte)
from mkclean.sim.hw.seam import Kind

#: names of the tests here, for pytest to parametrize over
NAMES = []

LOAD, STORE, FETCH, AMO = Kind.LOAD, Kind.STORE, Kind.FETCH, Kind.AMO
ROOT = 0x1000
DATA = 0x80_0000          # 8 MiB: data pages (and 2M-aligned superpage frames)
VA = 0x0000_0040_2000     # an ordinary user-half address
PF = {LOAD: 13, STORE: 15, FETCH: 12, AMO: 15}
AF = {LOAD: 5, STORE: 7, FETCH: 1, AMO: 7}


def directed(fn):
    NAMES.append(fn.__name__)
    return cocotb.test()(fn)


async def setup(dut, **csr):
    pair = Pair(dut, params_from_env())
    await pair.start()
    tables = PageTables(pair.memory, ROOT, 0x10000)
    await pair.set_csr(**{"mode": 8, "ppn": ROOT >> 12, **csr})
    return pair, tables


async def expect(pair, vaddr, kind, *, paddr=None, cause=None, events=()):
    out = await pair.translate(vaddr, kind, events)
    r = out.response
    if cause is not None:
        assert r.fault and r.cause == cause and r.tval == vaddr, \
            f"{vaddr:#x} kind {int(kind)}: want cause {cause}, got {r}"
    else:
        assert not r.fault and r.paddr == paddr, \
            f"{vaddr:#x} kind {int(kind)}: want paddr {paddr:#x}, got {r}"
    return out


@directed
async def translate_4k_2m_1g(dut):
    pair, pt = await setup(dut)
    pt.map(VA, DATA)
    pt.map(0x4020_0000, DATA, level=1)
    pt.map(0x3f_c000_0000, 0, level=2)      # the last 1G page of the lower half
    await expect(pair, VA + 0x123, LOAD, paddr=DATA + 0x123)
    await expect(pair, 0x4020_0000 + 0x1f_f008, STORE, paddr=DATA + 0x1f_f008)
    await expect(pair, 0x3f_c000_0000 + 0xabc_def, LOAD, paddr=0xabc_def)
    await pair.check_tlb()
    # Hits: no bus transaction, answered in one cycle.
    out = await expect(pair, VA + 8, LOAD, paddr=DATA + 8)
    assert out.bus_log == [] and out.cycles == 1, out


@directed
async def invalid_pte_at_each_level(dut):
    pair, pt = await setup(dut)
    bad = {
        "V=0": PTE_R | PTE_W | PTE_A | PTE_D,
        "W without R": PTE_V | PTE_W | PTE_A | PTE_D,
        "reserved bit 54": LEAF_RW | 1 << 54,
        "reserved bit 60": LEAF_RW | 1 << 60,
        "PBMT=1": LEAF_RW | 1 << 61,
        "PBMT=2": LEAF_RW | 2 << 61,
        "N": LEAF_RW | 1 << 63,
    }
    for level in (2, 1, 0):
        for name, flags in bad.items():
            vaddr = VA + (level << 31)
            addr = pt.pte_addr(vaddr, level)
            pair.write64(addr, pte(0, flags))
            await pair.sfence()
            for kind in (LOAD, STORE, FETCH):
                out = await expect(pair, vaddr, kind, cause=PF[kind])
                assert not any(we for we, *_ in out.bus_log), f"{name}: wrote {out.bus_log}"
            pair.write64(addr, 0)


@directed
async def nonleaf_with_a_d_u_faults(dut):
    pair, pt = await setup(dut)
    pt.map(VA, DATA)
    l1 = pt.pte_addr(VA, 1)
    good = pair.read64(l1)
    for flag in (PTE_A, PTE_D, PTE_U):
        pair.write64(l1, good | flag)
        await pair.sfence()
        await expect(pair, VA, LOAD, cause=13)
    pair.write64(l1, good)
    await pair.sfence()
    await expect(pair, VA, LOAD, paddr=DATA)


@directed
async def nonleaf_at_level0_faults(dut):
    pair, pt = await setup(dut)
    pair.write64(pt.pte_addr(VA, 0), pte(DATA >> 12, PTE_V))
    await expect(pair, VA, LOAD, cause=13)
    await expect(pair, VA, FETCH, cause=12)


#: Misaligned superpages: (level, base vaddr, PPN) with one PPN bit below the level set:
#: a 2M page misaligned in ppn[8:0], a 1G page misaligned only in ppn[8:0] and one only in
#: ppn[17:9] (each slice at both ends). The aligned PPN is the PPN without that bit.
MISALIGNED = [(1, 0x4000_0000 + i * (1 << 21), (DATA >> 12) | 1 << bit)
              for i, bit in enumerate((0, 8))] + \
             [(2, (2 + i) << 30, 1 << bit) for i, bit in enumerate((0, 8, 9, 17))]


@directed
async def misaligned_superpages_fault_without_ad(dut):
    """Each misaligned superpage is otherwise fully permitted (V R W X A D, and U when the
    access is from U mode), so alignment alone decides: a check that ignores any PPN bit
    below the level lets the access through. Then the same PTE without A and D under Svadu:
    the fault comes first, nothing is written. The aligned PTE translates (the control)."""
    pair, pt = await setup(dut, adue=1)
    full = PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D
    for priv, u in ((1, 0), (0, PTE_U)):
        await pair.set_csr(priv=priv)
        for level, vaddr, ppn in MISALIGNED:
            addr = pt.pte_addr(vaddr, level)
            for flags in (full | u, (full & ~(PTE_A | PTE_D)) | u):
                pair.write64(addr, pte(ppn, flags))
                await pair.sfence()
                for kind in (LOAD, STORE, FETCH, AMO):
                    out = await expect(pair, vaddr + 0x18, kind, cause=PF[kind])
                    assert not any(we for we, *_ in out.bus_log), \
                        f"level {level} ppn {ppn:#x}: A/D written for a misaligned superpage"
                assert pair.read64(addr) == pte(ppn, flags)
            aligned = ppn & ~((1 << (9 * level)) - 1)
            if (aligned << 12) < pair.params["phys_size"]:
                pair.write64(addr, pte(aligned, full | u))
                await pair.sfence()
                await expect(pair, vaddr + 0x18, STORE, paddr=(aligned << 12) + 0x18)
            pair.write64(addr, 0)
    await pair.sfence()


@directed
async def privilege_sum_mxr(dut):
    pair, pt = await setup(dut)
    user = VA
    kernel = VA + 0x1000
    exec_only = VA + 0x2000
    pt.map(user, DATA, LEAF_RW | PTE_U | PTE_X)
    pt.map(kernel, DATA + 0x1000, LEAF_RW)
    pt.map(exec_only, DATA + 0x2000, PTE_V | PTE_X | PTE_A)
    # S mode, SUM=0: U pages are out of reach.
    await expect(pair, user, LOAD, cause=13)
    await expect(pair, user, STORE, cause=15)
    await pair.set_csr(sum=1)          # seen at once, also by the TLB entry just filled
    await expect(pair, user, LOAD, paddr=DATA)
    await expect(pair, user, STORE, paddr=DATA)
    await expect(pair, user, FETCH, cause=12)    # SUM never allows fetch
    # U mode: S pages fault, U pages work.
    await pair.set_csr(priv=0)
    await expect(pair, kernel, LOAD, cause=13)
    await expect(pair, user, FETCH, paddr=DATA)
    # MXR: loads from execute-only pages.
    await expect(pair, exec_only, LOAD, cause=13)
    await pair.set_csr(mxr=1)
    await expect(pair, exec_only, LOAD, cause=13)   # still U mode on an S page
    await pair.set_csr(priv=1)
    await expect(pair, exec_only, LOAD, paddr=DATA + 0x2000)
    await pair.set_csr(mxr=0)
    await expect(pair, exec_only, LOAD, cause=13)   # a TLB hit re-checks MXR
    await expect(pair, exec_only, STORE, cause=15)


@directed
async def non_canonical_vaddr(dut):
    pair, pt = await setup(dut)
    pt.map(VA, DATA)
    for vaddr in (1 << 39, 1 << 63, (1 << 38) | VA, 0xffff_ffc0_0000_0000 ^ (1 << 40)):
        out = await expect(pair, vaddr, LOAD, cause=13)
        assert out.bus_log == []
    await expect(pair, 0xffff_ffc0_0000_0000, LOAD, cause=13)   # canonical, unmapped


@directed
async def svade_faults_on_a_and_d(dut):
    pair, pt = await setup(dut, adue=0)
    pt.map(VA, DATA, PTE_V | PTE_R | PTE_W)                 # A=0
    await expect(pair, VA, LOAD, cause=13)
    pt.map(VA, DATA, PTE_V | PTE_R | PTE_W | PTE_A)         # A=1, D=0
    await expect(pair, VA, LOAD, paddr=DATA)                # fills the TLB with D=0
    await expect(pair, VA, STORE, cause=15)                 # a hit with D=0 faults
    await expect(pair, VA, AMO, cause=15)
    assert pair.read64(pt.pte_addr(VA, 0)) == pte(DATA >> 12, PTE_V | PTE_R | PTE_W | PTE_A)


@directed
async def svadu_sets_a_then_d_atomically(dut):
    pair, pt = await setup(dut, adue=1)
    addr = pt.map(VA, DATA, PTE_V | PTE_R | PTE_W)
    out = await expect(pair, VA, LOAD, paddr=DATA)
    assert pair.read64(addr) == pte(DATA >> 12, PTE_V | PTE_R | PTE_W | PTE_A)
    assert [(we, lock) for we, lock, *_ in out.bus_log][-2:] == [(0, 1), (1, 1)], out.bus_log
    out = await expect(pair, VA, STORE, paddr=DATA)         # hit with D=0 -> walker
    assert pair.read64(addr) == pte(DATA >> 12, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
    assert out.bus_log[-1][:2] == (1, 1)
    out = await expect(pair, VA, STORE, paddr=DATA)         # now a plain hit
    assert out.bus_log == []
    await pair.check_tlb()


@directed
async def bus_error_is_access_fault(dut):
    pair, pt = await setup(dut)
    addr = pt.map(VA, DATA, PTE_V | PTE_R | PTE_W | PTE_X)      # A=0: Svadu will update
    # Transactions: 0-2 the walk's reads, 3 the locked re-read, 4 the A/D write.
    for at in range(5):
        for kind in (LOAD, STORE, FETCH):
            await pair.sfence()
            out = await expect(pair, VA, kind, cause=AF[kind], events=[Event(at, "error")])
            assert len(out.bus_log) == at + 1 and out.bus_log[-1][3] is None, out.bus_log
            assert pair.read64(addr) == pte(DATA >> 12, PTE_V | PTE_R | PTE_W | PTE_X)


@directed
async def ppn_beyond_memory_is_access_fault(dut):
    pair, pt = await setup(dut)
    size = pair.params["phys_size"]
    pair.write64(pt.pte_addr(VA, 1), pte(size >> 12, PTE_V))       # next table outside
    out = await expect(pair, VA, LOAD, cause=5)
    assert [a for _, _, a, _ in out.bus_log] == [ROOT + 8 * 0, pt.pte_addr(VA, 1)], \
        "a transaction beyond memory"
    pt2 = VA + (1 << 30)
    addr = pt.map(pt2, size, PTE_V | PTE_R | PTE_W)               # leaf outside
    await expect(pair, pt2, STORE, cause=7)
    # As in Sail: the leaf passed every page-fault check, so A/D were set first.
    assert pair.read64(addr) & (PTE_A | PTE_D) == PTE_A | PTE_D
    await expect(pair, pt2, STORE, cause=7)                       # not cached


@directed
async def sfence_four_cases(dut):
    pair, pt = await setup(dut, asid=1)
    a, b, g, big = VA, VA + 0x1000, VA + 0x2000, 0x4000_0000
    pt.map(a, DATA)
    pt.map(b, DATA + 0x1000)
    pt.map(g, DATA + 0x2000, LEAF_RW | PTE_G)
    pt.map(big, 0x20_0000, LEAF_RW, level=1)

    async def fill(asid):
        await pair.set_csr(asid=asid)
        for v in (a, b, g, big):
            await pair.translate(v, LOAD)

    async def cached():
        return {(e.asid, e.vpn) for e in await pair.rtl.tlb_entries(16) if e.valid}

    async def fresh(vaddrs, asid):
        """Which of vaddrs walk (are not in the TLB) for asid."""
        await pair.set_csr(asid=asid)
        out = []
        for v in vaddrs:
            o = await pair.translate(v, LOAD)
            out.append(bool(o.bus_log))
        return out

    await fill(1)
    await fill(2)
    await pair.check_tlb()
    assert len(await cached()) == 7          # a, b, big for two ASIDs, g once (global)

    await pair.sfence(asid=1)                # rs1=x0, rs2=1: ASID 1 only, not global
    await pair.check_tlb()
    assert await fresh([a, b, g, big], 2) == [False, False, False, False]
    assert await fresh([a, b, g, big], 1) == [True, True, False, True]

    await pair.sfence(vaddr=g)               # rs1=g, rs2=x0: global entries too
    assert await fresh([g], 2) == [True]
    await pair.sfence(vaddr=big + 0x12_3456)  # hits the 2M entries of both ASIDs
    assert await fresh([big], 1) == [True] and await fresh([big], 2) == [True]

    await pair.sfence(vaddr=a, asid=2)       # one address in one address space
    assert await fresh([a], 1) == [False]
    assert await fresh([a, b], 2) == [True, False]

    await pair.sfence(vaddr=g, asid=2)       # ... which spares global entries
    assert await fresh([g], 2) == [False]

    await pair.sfence()                      # everything
    assert await cached() == set()
    await pair.check_tlb()


@directed
async def sfence_during_walk_installs_nothing(dut):
    pair, pt = await setup(dut)
    pt.map(VA, DATA)
    l1 = pt.pte_addr(VA, 1)
    old_l1 = pair.read64(l1)
    other = pt.alloc_table()
    pair.write64(other + ((VA >> 12) & 0x1ff) * 8, pte((DATA >> 12) + 1, LEAF_RW))
    new_l1 = pte(other >> 12, PTE_V)
    # The kernel moves the L0 table and fences (rs1=x0) while the walk is in flight:
    # before the walk reads L1 (the walk sees the new table), or after (it answers
    # from the old one). Either way nothing it read may stay cached.
    for at, answer in ((1, DATA + 0x1000), (2, DATA)):
        pair.write64(l1, old_l1)
        await pair.sfence()
        events = [Event(at, "write", addr=l1, value=new_l1), Event(at, "sfence")]
        await expect(pair, VA, LOAD, paddr=answer, events=events)
        assert not any(e.valid for e in await pair.rtl.tlb_entries(16))
        assert not any(valid for valid, *_ in pair.golden.walk_cache.entries)
        out = await expect(pair, VA, LOAD, paddr=DATA + 0x1000)
        assert len(out.bus_log) == 3, "the next walk used a stale cached PTE"


@directed
async def ad_update_rewalks_when_pte_changed(dut):
    pair, pt = await setup(dut, adue=1)
    addr = pt.map(VA, DATA, PTE_V | PTE_R | PTE_W | PTE_A)       # clean, writable
    # Between the walk's read (transaction 2) and the locked re-read (3), mkclean
    # write-protects the PTE. The walker must see it, walk again, and fault.
    clean_ro = pte(DATA >> 12, PTE_V | PTE_R | PTE_A)
    out = await expect(pair, VA, STORE, cause=15,
                       events=[Event(3, "write", addr=addr, value=clean_ro)])
    assert pair.read64(addr) == clean_ro, "the A/D write resurrected a write-protected PTE"
    assert not any(we for we, *_ in out.bus_log)
    assert pair.rtl.counters()["walks"] == 2

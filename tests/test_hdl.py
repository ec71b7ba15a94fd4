"""Fast unit tests of the gateware blocks in Amaranth's simulator (async testbenches)."""

import random

import pytest
from amaranth.sim import Simulator

from hdl_harness import Harness
from mkclean.hdl.mmu import MMU, miss_cycles
from mkclean.hdl.tlb import TLB
from mkclean.hdl.top import MMUTop
from mkclean.hdl.walk_cache import OFFERED, WalkCache
from mkclean.sim.cosim.stimulus import (LEAF_RW, PTE_A, PTE_D, PTE_R, PTE_U, PTE_V, PTE_W,
                                        PTE_X, PageTables, pte)
from mkclean.sim.model.memory import Memory
from mkclean.sim.model.mmu import GoldenMMU


def simulate(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


# -- TLB -----------------------------------------------------------------------------

def entry(vpn, asid=1, level=0, g=0, ppn=0):
    return {"valid": 1, "g": g, "level": level, "asid": asid, "vpn": vpn, "ppn": ppn,
            "r": 1, "w": 1, "x": 0, "u": 0, "a": 1, "d": 1}


async def fill(ctx, tlb, e, at=None):
    """Fill, then two cycles without one: the TLB chooses a victim ahead, and the MMU
    never fills sooner. Where it goes is set a cycle before, as the MMU does."""
    ctx.set(tlb.fill_at_index, at is not None)
    ctx.set(tlb.fill_index, at or 0)
    await ctx.tick()
    ctx.set(tlb.fill_entry, e)
    ctx.set(tlb.fill_en, 1)
    await ctx.tick()
    ctx.set(tlb.fill_en, 0)
    await ctx.tick().repeat(2)


async def lookup(ctx, tlb, vpn, asid=1):
    """Look up, and read the answer in the next cycle."""
    ctx.set(tlb.lookup_vpn, vpn)
    ctx.set(tlb.lookup_asid, asid)
    ctx.set(tlb.lookup_en, 1)
    await ctx.tick()
    ctx.set(tlb.lookup_en, 0)
    return ctx.get(tlb.hit), ctx.get(tlb.hit_index)


def test_tlb_fills_invalid_entries_first_then_plru_victims():
    tlb = TLB(4)
    victims = []

    async def bench(ctx):
        for vpn in range(4):
            victims.append(ctx.get(tlb.victim))
            await fill(ctx, tlb, entry(vpn))
        for vpn in range(4, 9):
            victims.append(ctx.get(tlb.victim))
            await fill(ctx, tlb, entry(vpn))
    simulate(tlb, bench)
    # Invalid entries 0..3 in order; then the tree-PLRU by hand (hdl/README.md): after
    # touching 0,1,2,3 the root points left (3 was last, on the right): victim 0; touching
    # 0 points the root right and node 2 to 1... giving 0, 2, 1, 3, 0.
    assert victims == [0, 1, 2, 3, 0, 2, 1, 3, 0]


def test_tlb_touch_reaches_the_victim_of_a_fill_three_cycles_later():
    """A touch goes into a register before the tree, and the victim is chosen a cycle
    ahead from the tree: a fill three cycles after a touch sees it (the MMU fills no
    sooner: a walk is longer)."""
    tlb = TLB(4)
    victims = []

    async def bench(ctx):
        for vpn in range(4):
            await fill(ctx, tlb, entry(vpn))
        victims.append(ctx.get(tlb.victim))          # 0, as in the test above
        ctx.set(tlb.touch_index, 0)
        ctx.set(tlb.touch_en, 1)
        await ctx.tick()
        ctx.set(tlb.touch_en, 0)
        for _ in range(3):
            victims.append(ctx.get(tlb.victim))
            await ctx.tick()
        victims.append(ctx.get(tlb.victim))
    simulate(tlb, bench)
    # Touching 0 points the root right: victim 2, from the third cycle after the touch.
    assert victims == [0, 0, 0, 2, 2]


def test_tlb_lookup_superpage_global_and_lowest_index():
    tlb = TLB(4)

    async def bench(ctx):
        await fill(ctx, tlb, entry(0x12345 & ~0x1ff, level=1))          # 2M, asid 1
        await fill(ctx, tlb, entry(0x40000, level=2, g=1, asid=7))      # 1G global
        await fill(ctx, tlb, entry(0x12345))                            # 4K inside the 2M
        assert await lookup(ctx, tlb, 0x12345) == (1, 0)                # lowest index wins
        assert (await lookup(ctx, tlb, 0x12345, asid=2))[0] == 0          # other ASID
        assert (await lookup(ctx, tlb, 0x7ffff, asid=3))[0] == 1        # global 1G
        assert (await lookup(ctx, tlb, 0x80000, asid=3))[0] == 0
    simulate(tlb, bench)


def test_tlb_lookup_sees_a_fence_of_its_cycle_not_a_fill():
    """The compare runs in the cycle of the lookup and decides the hit: a fence in that
    cycle counts, one after it does not change the answer; a fill in that cycle is not
    seen (the entries as they were before it; the MMU never looks up then), the next
    lookup sees it (hdl/README.md, "TLB")."""
    tlb = TLB(4)
    out = []

    async def look(ctx, vpn, fence=False, fill=None, at=None):
        ctx.set(tlb.lookup_vpn, vpn)
        ctx.set(tlb.lookup_asid, 1)
        ctx.set(tlb.lookup_en, 1)
        ctx.set(tlb.sfence.payload, {"by_vaddr": 0, "by_asid": 0})
        ctx.set(tlb.sfence.valid, fence)
        if fill is not None:
            ctx.set(tlb.fill_at_index, at is not None)
            ctx.set(tlb.fill_index, at or 0)
            await ctx.tick()
            ctx.set(tlb.fill_entry, fill)
            ctx.set(tlb.fill_en, 1)
        await ctx.tick()
        ctx.set(tlb.lookup_en, 0)
        ctx.set(tlb.sfence.valid, 0)
        ctx.set(tlb.fill_en, 0)
        out.append((ctx.get(tlb.hit), ctx.get(tlb.hit_index)))
        await ctx.tick()

    async def bench(ctx):
        await fill(ctx, tlb, entry(0x10))                               # 0
        await look(ctx, 0x20, fill=entry(0x20))                         # into 1, now: miss
        await look(ctx, 0x20)                                           # then: hit 1
        await look(ctx, 0x10, fill=entry(0x30), at=0)                   # over 0, now: 0x10
        await look(ctx, 0x10)                                           # then: gone
        ctx.set(tlb.lookup_vpn, 0x20)
        ctx.set(tlb.lookup_en, 1)
        await ctx.tick()
        ctx.set(tlb.lookup_en, 0)
        ctx.set(tlb.sfence.payload, {"by_vaddr": 0, "by_asid": 0})
        ctx.set(tlb.sfence.valid, 1)                                    # after the lookup
        await ctx.tick()
        ctx.set(tlb.sfence.valid, 0)
        out.append((ctx.get(tlb.hit), ctx.get(tlb.hit_index)))          # decided before
        await fill(ctx, tlb, entry(0x20))
        await look(ctx, 0x20, fence=True)                               # in the lookup's cycle
    simulate(tlb, bench)
    assert [hit for hit, _ in out] == [0, 1, 1, 0, 1, 0]
    assert out[1][1] == 1 and out[2][1] == 0


@pytest.mark.parametrize("by_vaddr,by_asid,left", [
    (0, 0, []), (0, 1, [1, 2]), (1, 0, [2]), (1, 1, [1, 2]),
])
def test_tlb_sfence_cases(by_vaddr, by_asid, left):
    tlb = TLB(4)
    result = []

    async def bench(ctx):
        await fill(ctx, tlb, entry(0x10, asid=1))            # 0: asid 1, the address
        await fill(ctx, tlb, entry(0x10, asid=2))            # 1: asid 2, the address
        await fill(ctx, tlb, entry(0x20, asid=1, g=1))       # 2: global, elsewhere
        s = tlb.sfence
        ctx.set(s.payload, {"vaddr": 0x10 << 12, "asid": 1, "by_vaddr": by_vaddr,
                            "by_asid": by_asid})
        ctx.set(s.valid, 1)
        await ctx.tick()
        ctx.set(s.valid, 0)
        for i in range(4):
            if ctx.get(tlb.dbg_entries[i].valid):
                result.append(i)
    simulate(tlb, bench)
    assert result == left


# -- walk cache ----------------------------------------------------------------------

def test_walk_cache_round_robin_and_flush():
    wc = WalkCache(2)

    async def bench(ctx):
        for addr in (0x100, 0x200, 0x300):
            ctx.set(wc.insert_addr, addr)
            ctx.set(wc.insert_pte, addr + 1)
            ctx.set(wc.offer, 1)
            ctx.set(wc.insert_en, 1)
            await ctx.tick()
        ctx.set(wc.offer, 0)
        ctx.set(wc.insert_en, 0)
        hits = {}
        for addr in (0x100, 0x200, 0x300):
            hits[addr] = await wc_lookup(ctx, wc, addr)
        assert hits == {0x100: (0, 0), 0x200: (1, 0x201), 0x300: (1, 0x301)}
        ctx.set(wc.flush, 1)
        await ctx.tick()                            # a flush of the next lookup counts
        ctx.set(wc.flush, 0)
        assert not ctx.get(wc.hit)
        assert not (await wc_lookup(ctx, wc, 0x300))[0]
    simulate(wc, bench)


async def wc_lookup(ctx, wc, addr):
    """Look up, and read the answer in the next cycle."""
    ctx.set(wc.addrs[1], addr)
    ctx.set(wc.pick, 0b010)
    await ctx.tick()
    return ctx.get(wc.hit), ctx.get(wc.pte)


def test_walk_cache_lookup_sees_an_insert_of_its_cycle_and_forgets_a_later_one():
    """The walker looks the next PTE up as it inserts the one it read: a page table that
    points to itself must hit what is being inserted; an insert after a lookup replaces
    the entry it matched; the lookup of where an offered PTE points counts it as
    inserted."""
    wc = WalkCache(1)

    async def bench(ctx):
        ctx.set(wc.insert_addr, 0x100)
        ctx.set(wc.insert_pte, 0x101)
        ctx.set(wc.offer, 1)
        ctx.set(wc.insert_en, 1)
        ctx.set(wc.addrs[OFFERED], 0x100)
        ctx.set(wc.pick, 1 << OFFERED)
        await ctx.tick()
        assert (ctx.get(wc.hit), ctx.get(wc.pte)) == (1, 0x101)
        ctx.set(wc.insert_addr, 0x200)              # over the only entry
        ctx.set(wc.insert_pte, 0x201)
        await ctx.tick()
        ctx.set(wc.offer, 0)
        ctx.set(wc.insert_en, 0)
        assert not ctx.get(wc.hit)
        # An offer not inserted: its cycle's lookup takes it as inserted, the cache does
        # not change.
        ctx.set(wc.addrs[OFFERED], 0x200)
        ctx.set(wc.insert_addr, 0x300)
        ctx.set(wc.offer, 1)
        await ctx.tick()
        ctx.set(wc.offer, 0)
        assert not ctx.get(wc.hit)
        await ctx.tick()
        assert (ctx.get(wc.hit), ctx.get(wc.pte)) == (1, 0x201)
        # Only the lookup of addrs[OFFERED] counts an offer.
        ctx.set(wc.addrs[0], 0x200)
        ctx.set(wc.pick, 0b001)
        ctx.set(wc.offer, 1)
        await ctx.tick()
        ctx.set(wc.offer, 0)
        assert (ctx.get(wc.hit), ctx.get(wc.pte)) == (1, 0x201)
    simulate(wc, bench)


# -- MMU -----------------------------------------------------------------------------

@pytest.mark.parametrize("latency", [1, 4])
def test_mmu_miss_and_hit_timing(latency):
    h = Harness(latency=latency)
    pt = PageTables(h.mem, 0x1000, 0x2000)
    pt.map(0x4000_0000, 0x20_0000)
    pt.map(0x4000_1000, 0x20_1000)
    out = []

    async def bench(ctx):
        h.csr(ctx, ppn=pt.root_ppn)
        out.append(await h.translate(ctx, 0x4000_0123))       # cold: 3 reads
        out.append(await h.translate(ctx, 0x4000_0456))       # TLB hit
        out.append(await h.translate(ctx, 0x4000_1008))       # walk cache: 1 read
    h.run(bench)
    cold, hit, pwc = out
    assert cold[:3] == (0, 0, 0x20_0123) and cold[3] == miss_cycles(3, latency)
    assert hit == (0, 0, 0x20_0456, 1)
    assert pwc[:3] == (0, 0, 0x20_1008) and pwc[3] == miss_cycles(1, latency, cached=2)
    assert len(h.bus_log) == 4


def test_mmu_hit_is_decided_at_lookup():
    """A fence while a hit's answer waits does not take the answer back (the stage's
    registers follow its input once the answer may be taken); a fence in the cycle of
    the lookup does count: that request walks and finds the new mapping."""
    h = Harness()
    pt = PageTables(h.mem, 0x1000, 0x2000)
    at = pt.map(0x4000_0000, 0x20_0000)
    out = []

    async def held(ctx, fence_in_lookup):
        d = h.dut
        out.append(await h.translate(ctx, 0x4000_0010))          # fills the TLB
        h.mem.write64(at, pte(0x30_0000 >> 12, LEAF_RW))         # remapped: fence needed
        ctx.set(d.req.payload.vaddr, 0x4000_0020)
        ctx.set(d.req.valid, 1)
        ctx.set(d.resp.ready, 0)
        if fence_in_lookup:
            await h.sfence(ctx)
        else:
            await ctx.tick()                                     # taken and looked up
            ctx.set(d.req.valid, 0)
            await h.sfence(ctx)                                  # while the answer waits
        ctx.set(d.req.valid, 0)
        ctx.set(d.resp.ready, 1)
        while not ctx.get(d.resp.valid):
            await ctx.tick()
        out.append(ctx.get(d.resp.payload).paddr)
        await ctx.tick()

    async def bench(ctx):
        h.csr(ctx, ppn=pt.root_ppn)
        await held(ctx, fence_in_lookup=False)
        h.mem.write64(at, pte(0x20_0000 >> 12, LEAF_RW))
        await h.sfence(ctx)
        await held(ctx, fence_in_lookup=True)
    h.run(bench)
    assert out[1] == 0x20_0020     # decided before the fence: the mapping it looked up
    assert out[3] == 0x30_0020     # the fence of its lookup's cycle: walked again


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("latency", [1, 3])
def test_mmu_under_backpressure_answers_as_golden(seed, latency):
    """Random request gaps and a response side that takes an answer one cycle in two or
    five: every answer equals the golden model's, in order. 4K pages with every flag
    mix, superpages inside, straddling and beyond memory, a 4-entry TLB."""
    print(f"seed {seed}")
    rng = random.Random(seed)
    h = Harness(latency=latency, tlb_entries=4, walk_cache_entries=8)
    pt = PageTables(h.mem, 0x1000, 0x2000)
    vas = []
    for i in range(24):
        va = 0x4000_0000 + i * 0x1000 + (rng.randrange(4) << 21)
        flags = PTE_V | rng.choice([PTE_R, PTE_R | PTE_W, PTE_X, PTE_R | PTE_X,
                                    PTE_R | PTE_W | PTE_X])
        flags |= rng.choice([0, PTE_A, PTE_A | PTE_D]) | rng.choice([0, 0, 0, PTE_U])
        pt.map(va, 0x20_0000 + i * 0x1000, flags)
        vas.append(va)
    pt.map(0x8000_0000, 0x20_0000, LEAF_RW, level=1)            # 2M
    pt.map(0x8020_0000, 0x40_0000, LEAF_RW, level=1)            # 2M beyond memory (4M)
    pt.map(0xC000_0000, 0x0, LEAF_RW | PTE_X, level=2)          # 1G straddling its end
    vas += [0x8000_0000, 0x8012_3000, 0x8020_0000, 0xC000_0000, 0xC03F_F000, 0xC040_0000,
            0x7000_0000]
    golden_mem = Memory(h.mem.size)
    golden_mem.write(0, h.mem.read(0, h.mem.size))
    golden = GoldenMMU(golden_mem, tlb_entries=4, walk_cache_entries=8)
    golden.set_csr(mode=8, asid=0, ppn=pt.root_ppn, priv=1, sum=0, mxr=0, adue=1)
    n = 200
    reqs = [(rng.choice(vas) | rng.randrange(4096) & ~7, rng.randrange(4)) for _ in range(n)]
    p_ready = 0.5 if seed % 2 else 0.2
    got = []
    dut = h.dut

    async def bench(ctx):
        h.csr(ctx, ppn=pt.root_ppn)
        i = 0
        while len(got) < n:
            valid = i < n and rng.random() < 0.7
            vaddr, kind = reqs[i] if valid else (rng.getrandbits(39), rng.randrange(4))
            ctx.set(dut.req.payload.vaddr, vaddr)
            ctx.set(dut.req.payload.kind, kind)
            ctx.set(dut.req.valid, valid)
            ready = rng.random() < p_ready
            ctx.set(dut.resp.ready, ready)
            if ctx.get(dut.resp.valid) and ready:
                p = ctx.get(dut.resp.payload)
                got.append((p.fault, p.cause.value if p.fault else 0, 0 if p.fault else p.paddr))
            if valid and ctx.get(dut.req.ready):
                i += 1
            await ctx.tick()
    h.run(bench)
    for k, ((vaddr, kind), answer) in enumerate(zip(reqs, got)):
        e = golden.translate(vaddr, kind)
        assert answer == (int(e.fault), e.cause or 0, 0 if e.fault else e.paddr), (
            f"seed {seed}, request {k}: {vaddr:#x} kind {kind}")


def test_mmu_svade_faults_and_svadu_sets_ad():
    h = Harness()
    pt = PageTables(h.mem, 0x1000, 0x2000)
    addr = pt.map(0x4000_0000, 0x20_0000, PTE_V | PTE_R | PTE_W)
    out = []

    async def bench(ctx):
        h.csr(ctx, ppn=pt.root_ppn, adue=0)
        out.append(await h.translate(ctx, 0x4000_0000, 1))
        h.csr(ctx, ppn=pt.root_ppn, adue=1)
        out.append(await h.translate(ctx, 0x4000_0000, 1))
    h.run(bench)
    assert out[0][:2] == (1, 15)
    assert out[1][:3] == (0, 0, 0x20_0000)
    assert h.mem.read64(addr) == (0x200 << 10) | LEAF_RW
    assert [(we, lock) for we, lock, _, _ in h.bus_log[-2:]] == [(0, 1), (1, 1)]


@pytest.mark.parametrize("level,ppn", [(1, 0x201), (1, 0x300), (2, 0x1), (2, 0x100),
                                       (2, 0x200), (2, 0x20000)],
                         ids=["2m-ppn0", "2m-ppn8", "1g-ppn0", "1g-ppn8", "1g-ppn9",
                              "1g-ppn17"])
def test_mmu_misaligned_superpage_faults_though_permitted(level, ppn):
    """A misaligned superpage that is otherwise fully permitted (V R W X A D): the
    alignment check alone decides, for a bit in either of a 1G page's PPN slices."""
    h = Harness()
    pt = PageTables(h.mem, 0x1000, 0x2000)
    vaddr = 0x4000_0000
    pt.map(vaddr, ppn << 12, LEAF_RW | PTE_X, level=level)
    out = []

    async def bench(ctx):
        h.csr(ctx, ppn=pt.root_ppn)
        for kind in range(4):
            out.append(await h.translate(ctx, vaddr + 8, kind))
    h.run(bench)
    assert [o[:2] for o in out] == [(1, 13), (1, 15), (1, 12), (1, 15)], out
    assert not any(we for we, *_ in h.bus_log)


def test_mmu_sfence_marks_walk_stale():
    h = Harness(latency=2)
    pt = PageTables(h.mem, 0x1000, 0x2000)
    pt.map(0x4000_0000, 0x20_0000)
    stale = []

    async def bench(ctx):
        h.csr(ctx, ppn=pt.root_ppn)
        dut = h.dut
        ctx.set(dut.req.payload.vaddr, 0x4000_0000)
        ctx.set(dut.req.valid, 1)
        ctx.set(dut.resp.ready, 1)
        await ctx.tick()
        ctx.set(dut.req.valid, 0)
        await ctx.tick().repeat(3)                  # the walk is reading
        await h.sfence(ctx)
        await ctx.tick().until(dut.resp.valid)
        await ctx.tick().repeat(2)
        stale.append(ctx.get(dut.debug.tlb_entries[0].valid))
    h.run(bench)
    assert stale == [0]


@pytest.mark.parametrize("params,word", [
    (dict(phys_size=1 << 20, tlb_entries=0), "tlb_entries"),
    (dict(phys_size=1 << 20, tlb_entries=12), "tlb_entries"),
    (dict(phys_size=1 << 20, walk_cache_entries=65), "walk_cache_entries"),
    (dict(phys_size=1 << 20, walk_cache_entries=-1), "walk_cache_entries"),
    (dict(phys_size=1000), "phys_size"),
    (dict(phys_size=0), "phys_size"),
])
def test_bad_configuration_is_refused_by_name(params, word):
    with pytest.raises(ValueError, match=word):
        MMU(**params)


def test_top_elaborates_without_deprecations():
    import warnings

    from amaranth.back import rtlil
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rtlil.convert(MMUTop(phys_size=1 << 20, tlb_entries=4, walk_cache_entries=0))

"""The Wishbone RAM (sim/cosim/wishbone_ram.py): its transaction core and hook protocol,
as the golden model's bus and under Amaranth's simulator (the cocotb adapter runs in every
RTL test)."""

from hdl_harness import Harness
from mkclean.sim.cosim.stimulus import PTE_A, PTE_R, PTE_V, PTE_W, PageTables
from mkclean.sim.cosim.wishbone_ram import ERROR, WishboneRam
from mkclean.sim.model.memory import Memory
from mkclean.sim.model.mmu import GoldenMMU


def test_hook_sees_each_transaction_before_it_is_answered():
    ram = WishboneRam(Memory(1 << 16))
    ram.mem.write64(0x100, 7)
    seen = []

    def hook(number, we, lock, addr):
        seen.append((number, we, lock, addr, ram.locked))
        if number == 0:
            ram.mem.write64(0x100, 8)       # "another hart", before the answer
        return ERROR if number == 2 else None
    ram.hook = hook
    assert ram.transaction(0, 1, 0x100) == 8 and ram.locked
    assert ram.transaction(1, 1, 0x100, 9) == 9 and not ram.locked
    assert ram.transaction(0, 0, 0x108) is None
    # the hook runs before the lock state changes: a locked read not yet answered has not
    # locked anything
    assert seen == [(0, 0, 1, 0x100, False), (1, 1, 1, 0x100, True),
                    (2, 0, 0, 0x108, False)]
    assert ram.bus_log == [(0, 1, 0x100, 8), (1, 1, 0x100, 9), (0, 0, 0x108, None)]
    assert ram.mem.read64(0x100) == 9


def test_wait_states_drawn_from_a_range():
    ram = WishboneRam(Memory(4096), latency=(0, 3))
    draws = {ram.wait_states() for _ in range(200)}
    assert draws == {0, 1, 2, 3}
    assert WishboneRam(Memory(4096), latency=2).wait_states() == 2


def test_as_the_golden_models_bus_a_hook_error_is_an_access_fault():
    mem = Memory(1 << 20)
    pt = PageTables(mem, 0x1000, 0x2000)
    pt.map(0x4000_0000, 0x8_0000)
    ram = WishboneRam(mem)
    ram.hook = lambda number, we, lock, addr: ERROR if number == 1 else None
    mmu = GoldenMMU(mem, tlb_entries=4, walk_cache_entries=0, bus=ram)
    mmu.set_csr(mode=8, ppn=pt.root_ppn, priv=1)
    r = mmu.translate(0x4000_0000, 0)
    assert r.fault and r.cause == 5
    assert [value is None for *_, value in ram.bus_log] == [False, True]


def test_under_amaranth_a_hook_error_is_an_access_fault_and_ad_is_locked():
    h = Harness(latency=2)
    pt = PageTables(h.mem, 0x1000, 0x2000)
    pt.map(0x4000_0000, 0x20_0000, PTE_V | PTE_R | PTE_W | PTE_A)
    h.ram.hook = lambda number, we, lock, addr: ERROR if number == 1 else None
    out = []

    async def bench(ctx):
        h.csr(ctx, ppn=pt.root_ppn)
        out.append(await h.translate(ctx, 0x4000_0000))
        h.ram.hook = None
        out.append(await h.translate(ctx, 0x4000_0000, 1))     # a store: D by the walker
    h.run(bench)
    assert out[0][:2] == (1, 5)
    assert out[1][:3] == (0, 0, 0x20_0000)
    assert [(we, lock) for we, lock, *_ in h.bus_log[-2:]] == [(0, 1), (1, 1)]

"""The gateware and the co-simulation at a physical base (issue 12): memory at
``[phys_base, phys_base + phys_size)``, QEMU's 0x8000_0000 among others.

In Amaranth's simulator (fast): the MMU at a base against the golden model at the same
base, response by response, transaction by transaction and TLB entry by TLB entry, with
PTE addresses, leaf addresses, superpage hits and Bare accesses below the base and past
the end; bad bases refused by name. Under Verilator (minutes, cached builds): the
directed bench (tests/cosim_benches/phys_base.py) and the random campaign at
0x8000_0000, and ``mkclean verify --phys-base``.
"""

import dataclasses
import json
import random
import subprocess
import sys

import pytest

from cosim_benches import phys_base as phys_base_bench
from hdl_harness import Harness
from mkclean.hdl.mmu import MMU, check_params
from mkclean.hdl.pte import PhysMemory
from mkclean.hdl.tlb import TLB
from mkclean.sim.cosim import build
from mkclean.sim.cosim.stimulus import LEAF_RW, PTE_U, PTE_V, PTE_X, PageTables, pte
from mkclean.sim.cosim.verify import run_campaign
from mkclean.sim.cosim.wishbone_ram import WishboneRam
from mkclean.sim.model.memory import Memory
from mkclean.sim.model.mmu import GoldenMMU
from mkclean.sim.model.tlb import TlbEntry

QEMU_BASE = 0x8000_0000
LOAD, STORE, FETCH, AMO = range(4)
AF = {LOAD: 5, STORE: 7, FETCH: 1, AMO: 7}
GiB, MiB = 1 << 30, 1 << 20


# -- bad bases ---------------------------------------------------------------------------

@pytest.mark.parametrize("base,size,message", [
    (0x8080_0000, 16 * MiB, "phys_base 0x80800000 is not aligned to 16 MiB, the power of two "
                            "at or above phys_size 0x1000000"),
    (0x8000_0000 + 2 * MiB, 3 * MiB, "phys_base 0x80200000 is not aligned to 4 MiB"),
    (0x1000, 8192, "phys_base 0x1000 is not aligned to 8 KiB"),
    ((1 << 56) - 4096, 8192, "phys_base 0xfffffffffff000 is not aligned to 8 KiB"),
    (1 << 56, 4096, "phys_base 0x100000000000000 \\+ phys_size 0x1000 ends beyond the "
                    "56-bit physical address space"),
    (-4096, 4096, "phys_base must be a non-negative integer, not -4096"),
    ("0x80000000", 4096, "phys_base must be a non-negative integer, not '0x80000000'"),
    (True, 4096, "phys_base must be a non-negative integer, not True"),
])
def test_a_bad_base_is_refused_by_name(base, size, message):
    """The gateware's check is the golden model's rule (one naturally aligned block, in
    the 56-bit space), with the same words, for every block that takes a base."""
    from mkclean.hdl.boards.top import BoardCore, BoardTop
    from mkclean.hdl.bridge import Bridge
    from mkclean.hdl.ptw import PageTableWalker
    for make in (lambda: check_params(phys_size=size, phys_base=base),
                 lambda: MMU(phys_size=size, phys_base=base),
                 lambda: PageTableWalker(phys_size=size, phys_base=base),
                 lambda: TLB(4, phys_size=size, phys_base=base),
                 lambda: Bridge(phys_size=size, phys_base=base, frame_timeout=10),
                 lambda: BoardCore(phys_size=size, phys_base=base, frame_timeout=10),
                 lambda: BoardTop(clk_freq=25e6, phys_size=size, phys_base=base)):
        with pytest.raises(ValueError, match=f"^{message}"):
            make()


def test_the_gateware_and_the_golden_model_take_the_same_bases():
    from mkclean.sim.model.memory import check_phys_base
    rng = random.Random(12)
    for _ in range(2000):
        size = rng.choice((4096, 3 << 20, 16 * MiB, 48 * MiB, GiB))
        base = rng.choice((0, QEMU_BASE, rng.randrange(1 << 40) & ~0xFFF,
                           rng.randrange(1 << 56 + 1) & ~0xFFF, (1 << 56) - size))
        outcomes = []
        for check in (check_phys_base, lambda b, s: check_params(phys_size=s, phys_base=b)):
            try:
                check(base, size)
                outcomes.append(True)
            except ValueError:
                outcomes.append(False)
        assert outcomes[0] == outcomes[1], (hex(base), hex(size))


def test_verilog_command_refuses_a_bad_base():
    p = subprocess.run([sys.executable, "-m", "mkclean.hdl.verilog", "--phys-size",
                        "0x1000000", "--phys-base", "0x80800000", "-o", "/dev/null"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert "phys_base 0x80800000 is not aligned to 16 MiB" in p.stderr, p.stderr


@pytest.mark.parametrize("args,message", [
    (["--phys-base", "0x80800000"], "mkclean verify: phys_base 0x80800000 is not aligned "
                                    "to 16 MiB, the power of two at or above phys_size"),
    (["--phys-base", "2G"], "mkclean verify: --phys-base '2G' is not an integer"),
    (["--phys-base", "-4096"], "mkclean verify: --phys-base must be at least 0"),
    (["--phys-base", hex(1 << 56)], "mkclean verify: phys_base 0x100000000000000 + "
                                    "phys_size 0x1000000 ends beyond"),
])
def test_verify_refuses_a_bad_base_in_one_line_before_building(args, message):
    p = subprocess.run([sys.executable, "-m", "mkclean.sim.cli", "verify", "--seed", "1",
                        "--quiet", *args], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith(message) and p.stderr.count("\n") == 1, p.stderr


# -- PhysMemory: the one range check ------------------------------------------------------

@pytest.mark.parametrize("size,base", [(16 * MiB, QEMU_BASE), (3 * MiB, QEMU_BASE),
                                       (4096, 0x1000), (16 * MiB, 0),
                                       (MiB, (1 << 56) - MiB)])
def test_outside_is_the_range_check(size, base):
    """``outside`` on constants, at the edges and at random: exactly ``not base <= a <
    base + size``, for addresses of 56 and 64 bits."""
    from amaranth.hdl import Module, Signal
    from amaranth.sim import Simulator
    phys = PhysMemory(size, base)
    rng = random.Random(size ^ base)
    edges = [base - 1, base, base + size - 1, base + size, 0, (1 << 56) - 1, 1 << 63,
             base | 1 << 60, base + size + (1 << 56)]
    addrs = [a for a in edges if a >= 0] + [rng.randrange(1 << 64) for _ in range(50)] + \
            [base + rng.randrange(2 * size) - size // 2 for _ in range(50)]
    addrs = [a % (1 << 64) for a in addrs]
    m = Module()
    probe = Signal(64)
    out56, out64 = Signal(), Signal()
    m.d.comb += [out56.eq(phys.outside(probe[:56])), out64.eq(phys.outside(probe))]
    got = []

    async def bench(ctx):
        for a in addrs:
            ctx.set(probe, a)
            got.append((ctx.get(out56), ctx.get(out64)))
    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    for a, (o56, o64) in zip(addrs, got):
        assert o64 == (not base <= a < base + size), hex(a)
        assert o56 == (not base <= a % (1 << 56) < base + size), hex(a)


# -- the MMU at a base against the golden model ------------------------------------------

class Both:
    """The MMU at a base in Amaranth's simulator and the golden model at the same base,
    each with its own memory; page tables are written to both. :meth:`translate` asks
    both, compares the answers and the bus transactions, and returns the answer."""

    def __init__(self, size, base, tlb_entries=8, latency=1):
        self.h = Harness(phys_size=size, phys_base=base, latency=latency,
                         tlb_entries=tlb_entries, walk_cache_entries=4)
        self.size, self.base = size, base
        self.golden_mem = Memory(size, base)
        self.golden_bus = WishboneRam(self.golden_mem)
        self.golden = GoldenMMU(self.golden_mem, tlb_entries=tlb_entries,
                                walk_cache_entries=4, bus=self.golden_bus)
        self.log = []

    # memory, for PageTables: reads the golden side, writes both
    def read64(self, addr):
        return self.golden_mem.read64(addr)

    def write64(self, addr, value):
        self.h.mem.write64(addr, value)
        self.golden_mem.write64(addr, value)

    def write(self, addr, data):
        self.h.mem.write(addr, data)
        self.golden_mem.write(addr, data)

    def tables(self, root, next_free):
        view = _View(self)
        self.write(root, bytes(4096))
        return PageTables(view, root, next_free)

    def csr(self, ctx, **fields):
        self.h.csr(ctx, **fields)
        want = dict(mode=8, asid=0, ppn=0, priv=1, sum=0, mxr=0, adue=1)
        want.update(fields)
        self.golden.set_csr(**want)

    async def sfence(self, ctx, vaddr=None, asid=None):
        await self.h.sfence(ctx, vaddr, asid)
        self.golden.sfence(vaddr is not None, vaddr or 0, asid is not None, asid or 0)

    async def translate(self, ctx, vaddr, kind=LOAD):
        self.h.ram.bus_log = []
        self.golden_bus.bus_log = []
        fault, cause, paddr, _ = await self.h.translate(ctx, vaddr, kind)
        g = self.golden.translate(vaddr, kind)
        got = (bool(fault), cause if fault else None, None if fault else paddr)
        want = (g.fault, g.cause, g.paddr)
        assert got == want, f"{vaddr:#x} kind {kind}: rtl {got} vs golden {want}"
        assert self.h.ram.bus_log == self.golden_bus.bus_log, (
            f"{vaddr:#x}: rtl bus {self.h.ram.bus_log} vs golden {self.golden_bus.bus_log}")
        self.log.append((vaddr, kind, got, list(self.h.ram.bus_log)))
        return got

    def check_tlb(self, ctx):
        """Every valid entry through the debug port equals the golden model's: the full
        PPN (but a superpage's bits below its level, which a walk leaves 0)."""
        for i, g in enumerate(self.golden.tlb.entries):
            r = ctx.get(self.h.dut.debug.tlb_entries[i])
            assert bool(r.valid) == g.valid, i
            if not g.valid:
                continue
            got = TlbEntry(True, r.asid, bool(r.g), r.level, r.vpn, r.ppn, bool(r.r),
                           bool(r.w), bool(r.x), bool(r.u), bool(r.a), bool(r.d))
            low = (1 << (9 * g.level)) - 1
            got = dataclasses.replace(got, vpn=got.vpn & ~low, ppn=got.ppn & ~low)
            want = dataclasses.replace(g, vpn=g.vpn & ~low, ppn=g.ppn & ~low)
            assert got == want, f"TLB entry {i}: rtl {got} vs golden {want}"

    def run(self, bench):
        self.h.run(bench)


class _View:
    """A memory for PageTables over :class:`Both`."""

    def __init__(self, both):
        self.both, self.base, self.size = both, both.base, both.size

    def read64(self, addr):
        return self.both.read64(addr)

    def write64(self, addr, value):
        self.both.write64(addr, value)

    def write(self, addr, data):
        self.both.write(addr, data)


def test_access_faults_below_the_base_and_past_the_end():
    """At QEMU's base: the root, a pointer and a leaf below the base and past the end are
    access faults (no transaction for a PTE outside; a leaf outside after its A/D, as in
    Sail); Bare and M mode pass through inside memory only; the page just inside each
    end translates."""
    size, base = 4 * MiB, QEMU_BASE
    b = Both(size, base)
    end = base + size
    root = base + 0x1000
    pt = b.tables(root, base + 0x2000)
    data = base + 2 * MiB
    va = 0x40_0000_0000 >> 2                      # an ordinary address, root[1]
    pt.map(va, data)                              # inside
    pt.map(va + 0x1000, base)                     # memory's first page
    pt.map(va + 0x2000, end - 0x1000)             # its last page
    leaf_below = pt.map(va + 0x3000, base - 0x1000, LEAF_RW & ~(1 << 7))   # D clear
    leaf_past = pt.map(va + 0x4000, end, LEAF_RW & ~(1 << 7))
    pt.map(va + 0x5000, 0)                        # physical 0: far below
    pt.map(va + 0x6000, (1 << 56) - 0x1000)       # the top of the physical space
    # Pointers outside: L1 entries for two more 2M regions.
    l1_below, l1_past = pt.pte_addr(va + (1 << 21), 1), pt.pte_addr(va + (2 << 21), 1)
    b.write64(l1_below, pte((base >> 12) - 1, PTE_V))
    b.write64(l1_past, pte(end >> 12, PTE_V))
    out = {}

    async def bench(ctx):
        b.csr(ctx, ppn=root >> 12)
        for name, vaddr, kind in [
                ("inside", va + 0x18, LOAD), ("first", va + 0x1008, STORE),
                ("last", va + 0x2ff8, LOAD), ("leaf below", va + 0x3010, STORE),
                ("leaf past", va + 0x4010, LOAD), ("zero", va + 0x5000, LOAD),
                ("top", va + 0x6ff8, AMO), ("pointer below", va + (1 << 21), LOAD),
                ("pointer past", va + (2 << 21) + 8, STORE)]:
            out[name] = (await b.translate(ctx, vaddr, kind), list(b.h.ram.bus_log))
        for name, ppn in (("root below", (base >> 12) - 1), ("root past", end >> 12),
                          ("root at 0", 0)):
            b.csr(ctx, ppn=ppn)
            await b.sfence(ctx)
            out[name] = (await b.translate(ctx, va, LOAD), list(b.h.ram.bus_log))
        b.csr(ctx, mode=0)
        for name, vaddr in (("bare inside", base + 0x123), ("bare below", base - 8),
                            ("bare past", end), ("bare low", 0x123),
                            ("bare high bits", base | 1 << 56)):
            out[name] = (await b.translate(ctx, vaddr, LOAD), list(b.h.ram.bus_log))
        b.csr(ctx, mode=8, ppn=root >> 12, priv=3)
        out["M inside"] = (await b.translate(ctx, end - 8, STORE), list(b.h.ram.bus_log))
        out["M below"] = (await b.translate(ctx, base - 8, STORE), list(b.h.ram.bus_log))
    b.run(bench)
    assert out["inside"][0] == (False, None, data + 0x18)
    assert out["first"][0] == (False, None, base + 8)
    assert out["last"][0] == (False, None, end - 8)
    for name, kind in (("leaf below", STORE), ("leaf past", LOAD), ("zero", LOAD),
                       ("top", AMO)):
        assert out[name][0] == (True, AF[kind], None), name
    # The leaf passed every page-fault check: A/D were set before the range check.
    assert b.read64(leaf_below) & 0xC0 == 0xC0 and b.read64(leaf_past) & 0xC0 == 0x40
    for name, kind in (("pointer below", LOAD), ("pointer past", STORE),
                       ("root below", LOAD), ("root past", LOAD), ("root at 0", LOAD)):
        result, log = out[name]
        assert result == (True, AF[kind], None), name
        assert all(base <= a < end for _, _, a, _ in log), f"{name}: a read outside: {log}"
        assert (log == []) == name.startswith("root"), (name, log)
    assert all(base <= a < end for *_, log in b.log for _, _, a, _ in log)
    assert out["bare inside"][0] == (False, None, base + 0x123)
    assert out["M inside"][0] == (False, None, end - 8)
    for name in ("bare below", "bare past", "bare low", "bare high bits"):
        assert out[name][0] == (True, AF[LOAD], None), name
    assert out["M below"][0] == (True, AF[STORE], None)


@pytest.mark.parametrize("size,base", [(4 * MiB, QEMU_BASE), (4 * MiB, 0x4040_0000),
                                       (3 * MiB, QEMU_BASE)],
                         ids=["qemu", "inside-a-1g-page", "not-a-power-of-two"])
def test_superpages_holding_memory_hit_with_the_range_check(size, base):
    """A 1G page holding memory, filled from inside memory, then hit past the end and
    (where memory is not at the page's start) below the base: the TLB's hit finds those
    outside. At 0x4040_0000 the page starts 4 MiB below memory, so the base's bits and
    the page's differ below the level (the TLB keeps neither). Where memory's end is
    not 2M-aligned, a 2M page runs past it likewise."""
    b = Both(size, base, tlb_entries=4)
    end = base + size
    root = base + 0x1000
    pt = b.tables(root, base + 0x2000)
    giga, mega = 5 << 30, 6 << 30                 # root[5] and root[6]
    pt.map(giga, base & ~(GiB - 1), LEAF_RW | PTE_X, level=2)
    two_m = (end - 1) & ~((2 * MiB) - 1)          # the 2M page holding memory's end
    pt.map(mega, two_m, LEAF_RW, level=1)
    into = base & (GiB - 1)                       # memory's offset in its 1G page
    plan = [("fill", giga + into + 0x40, LOAD, (False, None, base + 0x40)),
            ("hit", giga + into + 0x48, STORE, (False, None, base + 0x48)),
            ("past", giga + into + size, FETCH, (True, AF[FETCH], None)),
            ("last", giga + into + size - 8, AMO, (False, None, end - 8))]
    if into:
        plan.append(("below", giga + into - 8, LOAD, (True, AF[LOAD], None)))
    if two_m + 2 * MiB > end:
        plan += [("2m fill", mega + (end - two_m) - 8, LOAD, (False, None, end - 8)),
                 ("2m past", mega + (end - two_m), STORE, (True, AF[STORE], None))]
    seen = []

    async def bench(ctx):
        b.csr(ctx, ppn=root >> 12)
        for _, vaddr, kind, _ in plan:
            seen.append(await b.translate(ctx, vaddr, kind))
        b.check_tlb(ctx)
        # Random offsets through both entries, a few sfences between.
        rng = random.Random(base ^ size)
        for i in range(120):
            page, span, near = rng.choice(((giga, GiB, into), (mega, 2 * MiB, 0)))
            off = (near + rng.randrange(-size, 2 * size)) % span
            seen.append(await b.translate(ctx, page + off, rng.randrange(4)))
            if i % 40 == 39:
                await b.sfence(ctx)
        b.check_tlb(ctx)
    b.run(bench)
    for (name, _, _, want), got, (*_, log) in zip(plan, seen, b.log):
        assert got == want, f"{name}: {got}, want {want}"
        if name not in ("fill", "2m fill"):
            assert log == [], f"{name}: not answered from the TLB: {log}"
    faults = [r for r in seen[len(plan):] if r[0]]
    assert faults and len(faults) < 110, "the random part must fault inside and outside"


@pytest.mark.parametrize("seed", [1, 2])
def test_random_tables_at_a_base_answer_as_golden(seed):
    """Random 4K pages and pointers inside, below and past memory at 0x8000_0000 (a
    4-entry TLB, wait states), CSR and sfence changes: every answer, transaction and TLB
    entry as the golden model's."""
    rng = random.Random(seed)
    size, base = 2 * MiB, QEMU_BASE
    b = Both(size, base, tlb_entries=4, latency=(0, 2))
    end = base + size
    root = base + 0x1000
    pt = b.tables(root, base + 0x2000)
    vas = []
    for i in range(40):
        va = (rng.randrange(1, 4) << 30) + (rng.randrange(8) << 21) + (i << 12)
        where = rng.random()
        if where < 0.7:
            frame = base + 0x10_0000 + rng.randrange(0x100) * 0x1000
        elif where < 0.85:
            frame = rng.randrange(base >> 12) << 12
        else:
            frame = end + (rng.randrange(1 << 16) << 12)
        flags = PTE_V | rng.choice([0x2, 0x6, 0x8, 0xA, 0xE])       # R, RW, X, RX, RWX
        flags |= rng.choice([0, 0x40, 0xC0]) | rng.choice([0, 0, PTE_U])
        if pt.pte_addr(va, 0) is not None:
            pt.map(va, frame, flags)
            vas.append(va)
    for _ in range(3):                                # pointers outside memory
        va = (rng.randrange(1, 4) << 30) + (rng.randrange(8, 16) << 21)
        at = pt.pte_addr(va, 1)
        if at is not None:
            outside = rng.choice([rng.randrange(base >> 12), (end >> 12) + rng.randrange(99)])
            b.write64(at, pte(outside, PTE_V))
            vas.append(va)

    async def bench(ctx):
        b.csr(ctx, ppn=root >> 12)
        for i in range(300):
            r = rng.random()
            if r < 0.05:
                await b.sfence(ctx, rng.choice(vas) if rng.random() < 0.5 else None)
            elif r < 0.1:
                fields = dict(ppn=root >> 12, priv=rng.choice((0, 1)), sum=rng.randrange(2),
                              mxr=rng.randrange(2), adue=rng.randrange(2))
                b.csr(ctx, **fields)
            else:
                vaddr = rng.choice(vas) + (rng.randrange(512) << 3)
                await b.translate(ctx, vaddr, rng.randrange(4))
        b.check_tlb(ctx)
    b.run(bench)
    outcomes = {("fault" if got[0] else "ok") for _, _, got, _ in b.log}
    assert outcomes == {"fault", "ok"}
    assert any(got[1] in (1, 5, 7) for _, _, got, _ in b.log), "no access fault"


def test_the_bus_carries_offsets_within_memory():
    """The RAM takes the walker's addresses as offsets: a walk at 0x8000_0000 reads word
    offsets below the memory's size, and a bus address beyond memory is a design error
    the RAM names."""
    size, base = MiB, QEMU_BASE
    h = Harness(phys_size=size, phys_base=base)
    adrs = []
    physical = h.ram.physical

    def spy(offset):
        adrs.append(offset)
        return physical(offset)
    h.ram.physical = spy
    root = base + 0x1000
    h.mem.write(root, bytes(4096))
    pt = PageTables(h.mem, root, base + 0x2000)
    pt.map(0x4000_0000, base + 0x8000)
    got = []

    async def bench(ctx):
        h.csr(ctx, ppn=root >> 12)
        got.append(await h.translate(ctx, 0x4000_0010))
    h.run(bench)
    assert got[0][:3] == (0, 0, base + 0x8010)
    assert adrs and all(a < size for a in adrs), [hex(a) for a in adrs]
    assert [a for _, _, a, _ in h.bus_log] == [base + a for a in adrs]
    with pytest.raises(AssertionError, match="the bus carries the offset within memory"):
        h.ram.physical(base + 0x1000)


# -- under Verilator, at 0x8000_0000 ------------------------------------------------------

#: The co-simulation's default MMU (16 MiB, 16 TLB entries) at QEMU's base.
AT_QEMU = {"phys_base": QEMU_BASE}


@pytest.fixture(scope="module")
def directed_results():
    return {r.name: r for r in build.run("cosim_benches.phys_base", AT_QEMU)}


@pytest.mark.parametrize("name", phys_base_bench.NAMES)
def test_directed_at_qemus_base(directed_results, name):
    assert name in directed_results, f"cocotb did not run {name}; see the build's test.log"
    assert directed_results[name].passed, directed_results[name].message


@pytest.fixture(scope="module")
def backend_results():
    return {r.name: r for r in build.run("cosim_benches.rtl_backend_vs_golden",
                                         {"batch_depth": 64, **AT_QEMU})}


@pytest.mark.parametrize("name", ["rtl_backend_matches_golden",
                                  "mirror_check_catches_a_touch_that_does_nothing"])
def test_rtl_backend_at_qemus_base(backend_results, name):
    """The seam's rtl backend (the batch top, its page-table mirror by offset) at the
    base against the golden backend at the same base, kernel-shaped code on both."""
    assert backend_results[name].passed, backend_results[name].message


#: Beyond-memory classes the campaign must reach at a base: PPNs below the base and past
#: the end, for leaves and for pointers.
BEYOND = ["access_fault:ppn_range", "access_fault:ppn_range_below",
          "access_fault:nonleaf_range", "access_fault:nonleaf_range_below"]


def test_campaign_at_qemus_base():
    """The random campaign and its directed fill with every physical address at
    0x8000_0000: no mismatch, every reachable coverage bin, and translations whose leaf
    or pointer lies below the base and past the end."""
    seed, walks = 12, 1500
    result = run_campaign(seed, walks, AT_QEMU)
    replay = f"replay: mkclean verify --seed {seed} --walks {walks} --phys-base {QEMU_BASE:#x}"
    assert result["mismatches"] == 0, f"{result['first_mismatch']}\n{replay}"
    missing = [c for c in BEYOND + ["ok:4k", "ok:2m", "ok:1g"]
               if not result["classes"].get(c)]
    assert not missing, f"never reached {missing}: {result['classes']}; {replay}"
    cov = result["coverage"]
    holes = [h for g in cov["groups"].values() for h in g["holes"]]
    assert cov["percent"] == 100.0, f"{len(holes)} holes, {holes[:10]}; {replay}"
    assert cov["excluded_hits"] == {}, cov["excluded_hits"]


def test_verify_command_at_a_base(tmp_path):
    out = tmp_path / "v.json"
    p = subprocess.run([sys.executable, "-m", "mkclean.sim.cli", "verify", "--seed", "5",
                        "--walks", "200", "--no-fill", "--quiet", "--phys-base", "0x80000000",
                        "--json", str(out)], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr
    result = json.loads(out.read_text())
    assert result["mismatches"] == 0 and result["translations"] == 200
    assert result["phys_base"] == QEMU_BASE
    assert "translations 200  mismatches 0  seed 5  memory at 0x80000000" in p.stdout
    assert result["replay"] == ("mkclean verify --seed 5 --walks 200 --phys-base 0x80000000 "
                                "--no-fill"), result["replay"]


#: Small files keep each run short (tests/test_cosim.py's).
KERNEL_OPTIONS = {"db": {"file_pages": 64, "msync_every": 500, "writeback_every": 300},
                  "random": {}}
KERNEL_RUNS = [("db", "writenotify", "svadu", 1), ("random", "hwdirty", "svade", 2),
               ("random", "legacy", "svadu", 3)]


def kernel_job(workload, policy, ad, seed):
    return {"kernel": {"policy": policy, "ad": ad, "store_dir": None, "phys_size": 16 * MiB,
                       "phys_base": QEMU_BASE, "tlb_entries": 16, "trace": True},
            "workload": workload, "seed": seed, "accesses": 1500,
            "options": KERNEL_OPTIONS[workload]}


def test_the_kernel_on_the_rtl_at_qemus_base():
    """The kernel model at 0x8000_0000 on the rtl backend built there (what `mkclean run
    --backend rtl --phys-base 0x80000000` runs), with the page-table mirror checked after
    every batch and invariant 2 after every kernel step: the golden backend's traps,
    files and faults at the same base."""
    import hashlib

    from mkclean.sim.cosim import jobs
    from mkclean.sim.kernel import Kernel
    from mkclean.sim.workloads import WORKLOADS
    out = jobs.run_job("mkclean.sim.cosim.commands.run",
                       {"jobs": [kernel_job(*c) for c in KERNEL_RUNS]},
                       {"batch_depth": 64, **AT_QEMU}, env={"MKCLEAN_CHECK_MIRROR": "1"})
    for config, rtl in zip(KERNEL_RUNS, out["results"]):
        j = kernel_job(*config)
        k = Kernel(backend="golden", **j["kernel"])
        try:
            golden = WORKLOADS[j["workload"]](k, j["seed"], j["accesses"], **j["options"]).run()
            trace = [list(t) for t in k.trace]
            files = {f.name: hashlib.sha256(f.on_disk(0, f.size)).hexdigest()
                     for f in k.files.values()}
        finally:
            k.close()
        assert rtl["invariant_violations"] == [], config
        assert rtl["lost_writes"] == golden["lost_writes"] == 0, config
        assert rtl["trace"] == trace, f"traps differ: {config}"
        assert rtl["files"] == files, f"files differ: {config}"
        assert rtl["faults"] == golden["faults"] and rtl["accesses"] == 1500, config
        assert rtl["step_checks"] > 0 and rtl["walks"] > 0, config


def test_a_simulated_board_at_qemus_base():
    """`--backend board-sim` at a base: the board top built at 0x8000_0000 (its bridge's
    VERSION says so, its block RAM addressed by offset) runs the kernel at that base over
    its UART to the golden backend's outcome there."""
    import hashlib

    from mkclean.sim.cosim.board_sim import make_board_sim
    from mkclean.sim.kernel import Kernel
    from mkclean.sim.workloads import make_workload

    def outcome(hw):
        k = Kernel(backend="golden", phys_size=MiB, phys_base=QEMU_BASE, trace=True, hw=hw)
        try:
            r = make_workload("clean_store", k, 1, 12, pages=3).run()
            return (k.phys_base, k.trace, r["lost_writes"],
                    {f.name: hashlib.sha256(f.on_disk(0, f.size)).hexdigest()
                     for f in k.files.values()})
        finally:
            k.close()
            if hw is not None:
                hw.close()
    want = outcome(None)
    got = outcome(make_board_sim(phys_size=MiB, phys_base=QEMU_BASE))
    assert got == want and want[0] == QEMU_BASE and want[1]

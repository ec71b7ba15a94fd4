"""A physical base (issue 12): memory at ``[phys_base, phys_base + phys_size)``.

QEMU's RAM starts at 0x8000_0000. The golden model takes the base as a parameter and checks
every physical address against that range (an address below the base is outside memory
as much as one past its end); the kernel model uses real physical addresses throughout
(page frames, PTE PPNs, satp), and reaches the same outcome at any base as at 0.
"""

import hashlib
import json
import struct
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mkclean.sim.hw.backends import register_backend
from mkclean.sim.hw.seam import Kind, Priv, Trap
from mkclean.sim.kernel import Kernel
from mkclean.sim.kernel.constants import MAP_PRIVATE, MAP_ANONYMOUS, PROT_READ, PROT_WRITE
from mkclean.sim.kernel.errors import KernelBug
from mkclean.sim.kernel.invariants import check_all
from mkclean.sim.model import GoldenMMU, Memory, MemoryBus, Response, make_pte
from mkclean.sim.model.backend import GoldenHardware, make_golden
from mkclean.sim.model.memory import check_phys_base
from mkclean.sim.model.mmu import HIT_RANGE, PADDR_RANGE, PTE_RANGE
from mkclean.sim.workloads import WORKLOADS, make_workload

BASE = 0x8000_0000
PHYS = 16 << 20
ACCESS_FAULT = {Kind.LOAD: 5, Kind.STORE: 7, Kind.FETCH: 1, Kind.AMO: 7}
RWX_AD = dict(r=True, w=True, x=True, a=True, d=True)


# -- check_phys_base ------------------------------------------------------------------------

@pytest.mark.parametrize("base,size", [
    (0, 4096), (BASE, 64 << 20), (0x4000_0000, 64 << 20), (BASE, 1 << 31),
    (64 << 20, 48 << 20),                   # 48 MiB: one 64 MiB block
    (0x1_0000, 0x1_0000), ((1 << 56) - (1 << 20), 1 << 20),     # ends at 2**56 exactly
])
def test_an_aligned_base_is_taken(base, size):
    assert check_phys_base(base, size) == base
    assert Memory(size, base).base == base


@pytest.mark.parametrize("base,size,message", [
    (0x8100_0000, 0x200_0000, "phys_base 0x81000000 is not aligned to 32 MiB, the power "
                              "of two at or above phys_size 0x2000000"),
    (32 << 20, 48 << 20, "phys_base 0x2000000 is not aligned to 64 MiB"),
    (0x1000, 8192, "phys_base 0x1000 is not aligned to 8 KiB"),
    (BASE + 0x800, 0x1000, "phys_base 0x80000800 is not aligned to 4 KiB"),
    (BASE, 1 << 32, "phys_base 0x80000000 is not aligned to 4 GiB"),
    (-4096, 4096, "phys_base must be a non-negative integer, got -4096"),
    (True, 4096, "phys_base must be a non-negative integer, got True"),
    (4096.0, 4096, "phys_base must be a non-negative integer, got 4096.0"),
    ("0x80000000", 4096, "phys_base must be a non-negative integer, got '0x80000000'"),
    (1 << 56, 4096, "phys_base 0x100000000000000 \\+ phys_size 0x1000 ends beyond the "
                    "56-bit physical address space"),
    (0, 1000, "phys_size must be a positive multiple of 4096"),
])
def test_a_bad_base_is_a_clear_error(base, size, message):
    for make in (lambda: check_phys_base(base, size), lambda: Memory(size, base),
                 lambda: GoldenMMU(None, size, bus=MemoryBus(None), phys_base=base),
                 lambda: GoldenHardware(size, phys_base=base),
                 lambda: make_golden(size, phys_base=base)):
        with pytest.raises(ValueError, match=f"^{message}"):
            make()


# -- memory -------------------------------------------------------------------------------

def test_memory_at_a_base_takes_physical_addresses():
    mem = Memory(8192, BASE)
    mem.write64(BASE + 8, 0x1122334455667788)
    mem.write(BASE + 8190, b"ab")
    assert mem.data[8:10] == b"\x88\x77" and mem.data[8190:] == b"ab"
    assert mem.read(BASE + 8, 2) == b"\x88\x77" and mem.read64(BASE + 8) == 0x1122334455667788
    for call in (lambda: mem.read(BASE - 1, 2), lambda: mem.read(0, 1),
                 lambda: mem.read64(BASE + 8192), lambda: mem.write(BASE + 8191, b"ab"),
                 lambda: mem.write64(BASE - 8, 0)):
        with pytest.raises(IndexError, match=r"outside physical memory "
                                             r"\[0x80000000, 0x80002000\)"):
            call()


# -- the golden MMU at a base -------------------------------------------------------------

class RecordingBus(MemoryBus):
    def __init__(self, mem):
        super().__init__(mem)
        self.log = []

    def read(self, addr, lock):
        self.log.append(("r", addr, lock))
        return super().read(addr, lock)

    def write(self, addr, value, lock):
        self.log.append(("w", addr, lock))
        return super().write(addr, value, lock)


class Machine:
    """A golden MMU over memory at ``base``, with a bump allocator of page tables from
    its second frame (the root is the first)."""

    def __init__(self, base=BASE, phys=PHYS, tlb_entries=16, **csr):
        self.base, self.phys = base, phys
        self.mem = Memory(phys, base)
        self.bus = RecordingBus(self.mem)
        self.mmu = GoldenMMU(self.mem, tlb_entries=tlb_entries, bus=self.bus)
        self.root = base
        self.next_table = base + 0x1000
        self.mmu.set_csr(**{"mode": 8, "ppn": self.root >> 12, "asid": 1, "priv": Priv.S,
                            **csr})

    def pte_addr(self, vaddr, level):
        table = self.root
        for lv in range(2, level, -1):
            addr = table + ((vaddr >> (12 + 9 * lv)) & 0x1FF) * 8
            pte = self.mem.read64(addr)
            if not pte & 1:
                pte = make_pte(self.next_table >> 12)
                self.next_table += 0x1000
                self.mem.write64(addr, pte)
            table = ((pte >> 10) & ((1 << 44) - 1)) << 12
        return table + ((vaddr >> (12 + 9 * level)) & 0x1FF) * 8

    def map(self, vaddr, paddr, level=0, **flags):
        addr = self.pte_addr(vaddr, level)
        self.mem.write64(addr, make_pte(paddr >> 12, **flags))
        return addr


def ok(paddr):
    return Response(False, None, paddr, None)


def access_fault(vaddr, kind):
    return Response(True, ACCESS_FAULT[kind], None, vaddr)


def test_the_mmu_takes_its_base_from_memory():
    assert GoldenMMU(Memory(8192, BASE)).phys_base == BASE
    assert GoldenMMU(Memory(8192)).phys_base == 0
    assert GoldenMMU(None, 8192, bus=MemoryBus(None)).phys_base == 0
    mmu = GoldenMMU(None, 8192, bus=MemoryBus(None), phys_base=BASE)
    assert (mmu.phys_base, mmu.phys_size) == (BASE, 8192)


def test_a_translation_at_a_base_is_a_real_physical_address():
    m = Machine()
    m.map(0x1000, BASE + 0x5000, r=True, a=True)
    assert m.mmu.translate(0x1234, Kind.LOAD) == ok(BASE + 0x5234)
    assert [addr for _, addr, _ in m.bus.log] == [BASE, BASE + 0x1000, BASE + 0x2000 + 8]
    assert m.mmu.translate(0x1238, Kind.LOAD) == ok(BASE + 0x5238)        # the TLB's
    assert m.mmu.counters["tlb_hits"] == 1


@pytest.mark.parametrize("ppn", [0, (BASE >> 12) - 1, (BASE + PHYS) >> 12, 1 << 43])
def test_satp_outside_memory_is_an_access_fault_without_a_read(ppn):
    """satp's table below the base (or past the end): step 3's PTE address is outside."""
    m = Machine(ppn=ppn)
    for kind in Kind:
        assert m.mmu.translate(0x1000, kind) == access_fault(0x1000, kind)
        assert m.mmu.decided == (PTE_RANGE, 2, None)
    assert m.bus.log == []


@pytest.mark.parametrize("table", [0, BASE - 0x1000, BASE + PHYS])
def test_a_non_leaf_pointing_outside_memory_is_an_access_fault(table):
    m = Machine()
    m.mem.write64(m.root, make_pte(table >> 12))
    assert m.mmu.translate(0x1000, Kind.STORE) == access_fault(0x1000, Kind.STORE)
    assert m.bus.log == [("r", m.root, False)] and m.mmu.decided == (PTE_RANGE, 1, None)
    # The last frame of memory is inside.
    last = BASE + PHYS - 0x1000
    m.mem.write64(m.root, make_pte(last >> 12))
    m.mem.write64(last, make_pte((BASE + 0x7000) >> 12))
    m.mem.write64(BASE + 0x7000 + 8, make_pte((BASE + 0x9000) >> 12, r=True, a=True))
    m.mmu.sfence(False, 0, False, 0)            # the walk cache holds the old root PTE
    assert m.mmu.translate(0x1010, Kind.LOAD) == ok(BASE + 0x9010)


@pytest.mark.parametrize("paddr", [0, BASE - 0x1000, BASE + PHYS, 1 << 55])
def test_a_leaf_outside_memory_is_an_access_fault_after_its_ad_update(paddr):
    m = Machine()
    addr = m.map(0x3000, paddr, r=True, w=True)
    assert m.mmu.translate(0x3008, Kind.STORE) == access_fault(0x3008, Kind.STORE)
    assert m.mmu.decided[0] == PADDR_RANGE
    # Step 8 comes after step 7, as in Sail: the A/D bits are written all the same.
    assert m.mem.read64(addr) == make_pte(paddr >> 12, r=True, w=True, a=True, d=True)
    assert not any(e.valid for e in m.mmu.tlb.entries)


def test_a_superpage_hit_below_the_base_is_an_access_fault():
    """Memory of 16 MiB at 0x8100_0000 inside a 1 GiB page at 0x8000_0000: the page's
    first 16 MiB are below the base, its rest past the end."""
    base = 0x8100_0000
    m = Machine(base=base)
    m.map(0x4000_0000, BASE, level=2, **RWX_AD)
    assert m.mmu.translate(0x4100_0010, Kind.LOAD) == ok(base + 0x10)
    for vaddr in (0x4000_0000, 0x40FF_FFFF, 0x4200_0000):
        assert m.mmu.translate(vaddr, Kind.LOAD) == access_fault(vaddr, Kind.LOAD)
        assert m.mmu.decided == (HIT_RANGE, 2, None)
    assert m.mmu.counters["walks"] == 1 and m.mmu.counters["tlb_hits"] == 3


@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("csr", [dict(mode=0), dict(priv=Priv.M)])
def test_bare_and_m_mode_pass_memory_through_and_nothing_else(kind, csr):
    m = Machine(**csr)
    for vaddr in (BASE, BASE + PHYS - 1):
        assert m.mmu.translate(vaddr, kind) == ok(vaddr)
    for vaddr in (0, BASE - 1, BASE + PHYS, 1 << 63):
        assert m.mmu.translate(vaddr, kind) == access_fault(vaddr, kind)
    assert m.bus.log == []


def test_the_golden_backend_at_a_base():
    hw = GoldenHardware(1 << 20, tlb_entries=4, walk_cache_entries=2, phys_base=BASE)
    assert hw.phys_base == hw.mmu.phys_base == hw.mem.base == BASE
    assert make_golden(1 << 20, phys_base=BASE).phys_base == BASE
    root, l1, l0, page = (BASE + n * 0x1000 for n in range(1, 5))
    hw.write_pte(root, make_pte(l1 >> 12))
    hw.write_pte(l1, make_pte(l0 >> 12))
    hw.write_pte(l0 + 8, make_pte(page >> 12, r=True, w=True, u=True, a=True, d=True))
    hw.set_csr(mode=8, ppn=root >> 12, asid=3, priv=Priv.U)
    assert hw.access(0x1010, Kind.STORE, b"hello") == b""
    assert hw.read(page + 0x10, 5) == b"hello" == hw.mem.data[0x4010:0x4015]
    assert hw.access(0x1010, Kind.AMO, b"HELL") == b"hell"
    assert hw.access(0x1010, Kind.LOAD, size=5) == b"HELLo"
    assert hw.cas_pte(l1, make_pte(l0 >> 12), 0) == make_pte(l0 >> 12)
    assert hw.read_pte(l1) == 0 == int.from_bytes(hw.mem.data[0x2000:0x2008], "little")
    assert hw.access(0x2000, Kind.LOAD, size=1) == Trap(13, 0x2000)
    with pytest.raises(IndexError, match=r"\[0x80000000, 0x80100000\)"):
        hw.read(0x1000, 1)


# -- at any base the MMU answers as at 0, its addresses moved by the base -------------------

def mostly(value):
    return st.sampled_from([value] * 5 + [not value])


leaf_st = st.fixed_dictionaries({
    "slot": st.integers(0, 3), "level": st.integers(0, 2),
    # frames inside memory, its last, past its end (an access fault at either base), and
    # superpage-aligned or not
    "frame": st.sampled_from([0x0, 0x0, 0x80, 0x200, 0x201, 0x3FF, 0x400, 0x40000]),
    "flags": st.fixed_dictionaries({
        "v": mostly(True), "r": mostly(True), "w": mostly(True), "x": st.booleans(),
        "u": mostly(False), "a": mostly(True), "d": st.booleans()}),
})
request_st = st.tuples(
    st.integers(0, 3), st.sampled_from([0, 8, 8, 0x10, 0x1008, 0x1FF008, 0x3FF000]),
    st.sampled_from(list(Kind)), st.sampled_from([Priv.U, Priv.S, Priv.S]),    # sum,
    mostly(True), st.booleans(), mostly(True))                                 # mxr, adue


@settings(max_examples=100, deadline=None)
@given(st.lists(leaf_st, min_size=1, max_size=6), st.lists(request_st, min_size=1,
                                                           max_size=12))
def test_at_a_base_the_mmu_answers_as_at_zero(leaves, requests):
    """Page tables and leaves moved by the base: the same responses, bus transactions and
    TLB entries, each address moved by the base (4 MiB of memory: frame 0x400 and up are
    past its end at either base)."""
    machines = [Machine(base=base, phys=4 << 20, tlb_entries=4) for base in (0, BASE)]
    vbases = [0, 1 << 30, 3 << 30, 0xFFFF_FFFF_8000_0000]
    by_slot = {leaf["slot"]: leaf for leaf in leaves}
    for m in machines:
        for leaf in by_slot.values():
            m.map(vbases[leaf["slot"]], m.base + (leaf["frame"] << 12), level=leaf["level"],
                  **leaf["flags"])
    for slot, offset, kind, priv, sum_, mxr, adue in requests * 2:
        vaddr = (vbases[slot] + offset) & ((1 << 64) - 1)
        answers = []
        for m in machines:
            m.mmu.set_csr(priv=priv, sum=sum_, mxr=mxr, adue=adue)
            r = m.mmu.translate(vaddr, kind)
            answers.append(r if r.fault else ok(r.paddr - m.base))
        assert answers[0] == answers[1]
    zero, based = machines
    assert [(op, addr + BASE, *rest) for op, addr, *rest in zero.bus.log] == based.bus.log
    assert zero.mmu.counters == based.mmu.counters
    moved = [replace(e, ppn=e.ppn + (BASE >> 12)) if e.valid else e
             for e in zero.mmu.tlb.entries]
    assert moved == based.mmu.tlb.entries


# -- the kernel model at a base -----------------------------------------------------------

#: small runs of each workload (as tests/test_kernel_run.py's); random checks every
#: invariant every 50 steps, at the base too
SMALL = {"random": dict(file_pages=8, writeback_every=97, check_every=50),
         "db": dict(file_pages=256, hot_pages=8, msync_every=700, writeback_every=1100),
         "stream": dict(file_pages=64, writeback_every=300, write_every=5),
         "clean_store": dict(pages=3)}
ACCESSES = 3000
#: a seed's policy and A/D mode: three seeds cover the three policies and both modes
SEEDS = {1: ("writenotify", "svadu"), 2: ("legacy", "svade"), 3: ("hwdirty", "svadu")}
_PTES = struct.Struct("<512Q")
PPN_FIELD = ((1 << 44) - 1) << 10


def moved_back(data: bytes, base: int) -> bytes:
    """A page table's frame with every entry's PPN moved down by ``base``."""
    delta = (base >> 12) << 10
    return _PTES.pack(*(pte - delta if pte & PPN_FIELD else pte
                        for pte in _PTES.unpack(data)))


def outcome(workload, seed, base, phys):
    """What a run at ``base`` did, in terms a run at 0 must match: the traps in order (ASID,
    cause, vaddr), the kernel's counters, the files, the MMU's counters, and memory to the
    byte with the PPNs of the page tables moved back by the base."""
    policy, ad = SEEDS[seed]
    k = Kernel(policy=policy, ad=ad, phys_size=phys, phys_base=base, trace=True)
    try:
        r = make_workload(workload, k, seed, ACCESSES, **SMALL[workload]).run()
        check_all(k)
        mem = k.hw.mem
        assert k.phys_base == mem.base == base and k.mem.zero_page.paddr == base
        assert all(k.mem.pfn_valid(pfn) for pfn in k.mem.free)
        data = bytearray(mem.data)
        for page in k.mem.mem_map:
            if page.PageTable():
                at = page.paddr - base
                data[at:at + 4096] = moved_back(data[at:at + 4096], base)
        return {"trace": list(k.trace), "stats": k.stats, "result": {
                    key: r[key] for key in ("accesses", "faults", "lost_writes", "mismatches",
                                            "dirty_known", "dirty_real")},
                "files": {f.name: hashlib.sha256(f.on_disk(0, f.size)).hexdigest()
                          for f in k.files.values()},
                "mmu": dict(k.hw.mmu.counters),
                "memory": hashlib.sha256(data).hexdigest()}
    finally:
        k.close()


_at_zero = {}


def at_zero(workload, seed, phys):
    key = (workload, seed, phys)
    if key not in _at_zero:
        _at_zero[key] = outcome(workload, seed, 0, phys)
    return _at_zero[key]


@pytest.mark.parametrize("seed", sorted(SEEDS))
@pytest.mark.parametrize("workload", sorted(WORKLOADS))
@pytest.mark.parametrize("base,phys", [(BASE, 8 << 20), (0x4000_0000, 64 << 20)],
                         ids=["0x80000000-8M", "0x40000000-64M"])
def test_the_kernel_at_a_base_reaches_the_outcome_at_zero(base, phys, workload, seed):
    want = at_zero(workload, seed, phys)
    got = outcome(workload, seed, base, phys)
    assert got["trace"] and got["trace"] == want["trace"]
    assert got["result"]["lost_writes"] == got["result"]["mismatches"] == 0
    assert got == want


def test_the_kernel_asks_its_backend_for_a_base_only_when_there_is_one():
    """A factory that knows memory only at 0 (the rtl and board-sim backends' today)
    works unchanged, and refuses a base itself."""
    made = []

    def at_zero_only(phys_size, tlb_entries, walk_cache_entries, **options):
        made.append(options)
        if options:
            raise ValueError(f"the test-zero backend takes no options {sorted(options)}")
        return GoldenHardware(phys_size, tlb_entries, walk_cache_entries)
    register_backend("test-zero", at_zero_only)
    with Kernel(backend="test-zero", phys_size=1 << 20) as k:
        assert k.phys_base == 0 and made == [{}]
    with pytest.raises(ValueError, match=r"takes no options \['phys_base'\]"):
        Kernel(backend="test-zero", phys_size=1 << 20, phys_base=BASE)
    with pytest.raises(ValueError, match="phys_base 0x80080000 is not aligned to 1 MiB"):
        Kernel(phys_size=1 << 20, phys_base=BASE + 0x8_0000)        # the golden backend's


def test_a_kernel_on_given_hardware_takes_its_base():
    hw = GoldenHardware(1 << 20, phys_base=BASE)
    with Kernel(hw=hw) as k:
        assert k.phys_base == BASE and k.mem.ARCH_PFN_OFFSET == BASE >> 12
        p = k.spawn()
        k.switch_to(p)
        assert hw.csr.ppn == p.mm.pgd >> 12 and BASE <= p.mm.pgd < BASE + (1 << 20)
        va = p.mmap(4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
        p.store(va, b"based")
        pte = p.pte(va)
        assert BASE >> 12 < pte.ppn < (BASE + (1 << 20)) >> 12
        assert hw.read(pte.ppn << 12, 5) == b"based"
    with Kernel(hw=GoldenHardware(1 << 20, phys_base=BASE), phys_base=BASE) as k:
        assert k.phys_base == BASE
    with pytest.raises(ValueError, match="phys_base 0x40000000 asked for, but the "
                                         "GoldenHardware backend's memory starts at "
                                         "0x80000000"):
        Kernel(hw=GoldenHardware(1 << 20, phys_base=BASE), phys_base=0x4000_0000)

    class AtZero:           # a backend that predates the base: memory at 0
        def __init__(self):
            self.hw = GoldenHardware(1 << 20)

        def __getattr__(self, name):
            if name == "phys_base":
                raise AttributeError(name)
            return getattr(self.hw, name)
    with Kernel(hw=AtZero()) as k:
        assert k.phys_base == 0 and k.mem.zero_page.pfn == 0


def test_pfn_to_page_at_a_base():
    with Kernel(phys_size=1 << 20, phys_base=BASE) as k:
        mem = k.mem
        first, last = BASE >> 12, ((BASE + (1 << 20)) >> 12) - 1
        assert mem.pfn_to_page(first) is mem.mem_map[0] is mem.zero_page
        assert mem.pfn_to_page(last) is mem.mem_map[-1]
        assert mem.page_to_pfn(mem.mem_map[-1]) == last
        assert all(mem.pfn_to_page(mem.page_to_pfn(page)) is page for page in mem.mem_map)
        assert mem.pfn_valid(first) and mem.pfn_valid(last)
        for pfn in (0, first - 1, last + 1):
            assert not mem.pfn_valid(pfn)
            with pytest.raises(KernelBug, match=f"pfn_to_page\\({pfn:#x}\\): no such frame, "
                                                r"memory's pfns are \[0x80000, 0x80100\)"):
                mem.pfn_to_page(pfn)


# -- mkclean run --phys-base ----------------------------------------------------------------

def test_run_command_at_a_base(tmp_path, capsys):
    """``--phys-base`` (hex or decimal) reaches the kernel and the JSON; the figures are
    those of a run at 0; a failed run's replay command carries it."""
    from mkclean.sim.cli import main as cli
    args = ["run", "--no-progress", "--workload", "db", "--accesses", "3000", "--phys-mb", "16",
            "--set", "file_pages=64", "--set", "msync_every=700"]
    figures = {}
    for base in ("0", "0x80000000", str(BASE)):
        path = tmp_path / f"{base}.json"
        assert cli([*args, "--phys-base", base, "--json", str(path)]) == 0
        out = capsys.readouterr().out
        r = json.loads(path.read_text())
        assert r["phys_base"] == int(base, 0)
        assert ("memory at 0x80000000" in out) == (base != "0")
        figures[base] = {key: r[key] for key in ("accesses", "faults", "traps", "sfences",
                                                 "mkclean_ptes", "writeback_pages",
                                                 "dirty_known", "dirty_real", "lost_writes")}
    assert figures["0"] == figures["0x80000000"] == figures[str(BASE)]
    assert cli([*args, "--phys-base", "0x80000000", "--plant", "missing-writeback"]) == 1
    err = capsys.readouterr().err
    assert "--phys-mb 16 --phys-base 0x80000000 --tlb-entries 16" in err

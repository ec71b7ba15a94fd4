"""The RTL MMU and the golden model side by side, fed the same stimulus.

Each side has its own copy of physical memory. Events scripted against a request's bus
transactions (a PTE store by "the kernel", an sfence, a bus error) are applied to both
sides at the same transaction, so any difference in responses, in transactions or in the
memory left behind is a disagreement between the RTL and the contract.

Both sides' memories are :class:`~.wishbone_ram.WishboneRam`: the RTL's on the walker's
bus, the golden model's as its walker's Bus, with the same hook applying the events.
Both are at the build's ``phys_base`` (0 unless built otherwise): every address here, in
events, bus logs and page tables, is a physical address.

What the stimulus does to the machines goes through :class:`Pair`'s methods, each
applying it to every side: :meth:`Pair.write` (every store to memory: page tables,
:class:`Mirrored`), :meth:`Pair.set_csr`, :meth:`Pair.sfence`, and :meth:`Pair.translate`,
where the sides' responses and transactions are compared. A further machine (another
model of the same contract) joins the comparison there.

With a :class:`~.coverage.CampaignCoverage` as ``coverage``, every translation and sfence
is sampled: the check the golden model says decided it, under which CSRs, the events and
wait states of its transactions.

Runs inside the simulator. Imports: the golden model, :mod:`.mmu_driver`,
:mod:`.wishbone_ram`.
"""

import dataclasses
import functools
from dataclasses import dataclass, field

from ..model.memory import Memory
from ..model.mmu import GoldenMMU, Response
from .mmu_driver import RtlMmu
from .wishbone_ram import ERROR, WishboneRam


@dataclass
class Event:
    """Something that happens just before transaction ``at`` of a request is answered.

    ``what`` is "write" (store ``value`` at ``addr``), "sfence" (``vaddr``/``asid``,
    None for x0) or "error" (answer the transaction with a bus error). A write aimed at
    the locked A/D write is dropped on both sides: the bus lock keeps others out there.
    """
    at: int
    what: str
    addr: int = 0
    value: int = 0
    vaddr: int | None = None
    asid: int | None = None


class Mismatch(AssertionError):
    pass


class Mirrored:
    """Memory-like view of both sides' memories: reads the golden one, writes both
    through :meth:`Pair.write` (for building page tables)."""

    def __init__(self, pair):
        self.pair = pair
        self.size = pair.params["phys_size"]
        self.base = pair.phys_base

    def read64(self, addr):
        return self.pair.golden_mem.read64(addr)

    def write64(self, addr, value):
        self.pair.write(addr, value.to_bytes(8, "little"))

    def write(self, addr, data):
        self.pair.write(addr, data)


@dataclass
class _Side:
    mem: Memory
    sfence: object


@dataclass
class Outcome:
    response: Response
    cycles: int
    bus_log: list = field(default_factory=list)


class Pair:
    """RTL and golden MMU with identical memories, CSRs and events.

    Parameters
    ----------
    dut
        The cocotb handle of ``mkclean_mmu``.
    params : dict
        The parameters the RTL was built with (phys_size, phys_base, tlb_entries, ...).
    latency : int or (int, int)
        Memory wait states of the RTL side (the golden side has no time).
    coverage : CampaignCoverage, optional
        Sampled by every translation and sfence (see the module).
    """

    def __init__(self, dut, params, latency=1, rng=None, coverage=None):
        self.params = params
        #: where physical memory starts, on both sides
        self.phys_base = params.get("phys_base", 0)
        self.rtl_mem = Memory(params["phys_size"], self.phys_base)
        self.golden_mem = Memory(params["phys_size"], self.phys_base)
        self.rtl = RtlMmu(dut, self.rtl_mem, latency=latency, rng=rng)
        #: the golden walker's bus: one call a transaction, no time
        self.bus = WishboneRam(self.golden_mem)
        self.golden = GoldenMMU(self.golden_mem, tlb_entries=params["tlb_entries"],
                                walk_cache_entries=params["walk_cache_entries"], bus=self.bus)
        self.rtl_side = _Side(self.rtl_mem, lambda vaddr, asid: self.rtl.sfence_now(vaddr, asid))
        self.golden_side = _Side(self.golden_mem, self._golden_sfence)
        self.coverage = coverage
        #: the RTL memory's wait states, one a transaction of the current request
        self.waits = []
        draw = self.rtl.ram.wait_states

        def wait_states():            # read by the RAM's task when it starts (start())
            n = draw()
            self.waits.append(n)
            return n
        self.rtl.ram.wait_states = wait_states
        # One hook protocol on both sides: the same events at the same transaction.
        self.rtl.ram.hook = functools.partial(self._apply, self.rtl_side)
        self.bus.hook = functools.partial(self._apply, self.golden_side)
        self.events = {}
        #: write here to change both memories alike
        self.memory = Mirrored(self)
        #: a third machine (:class:`~.qemu_side.QemuSide`), told of every write, CSR
        #: change and sfence before the two sides, and checked after each translation
        self.third = None

    async def start(self):
        await self.rtl.start()

    def write(self, addr, data):
        """Store ``data`` at physical ``addr`` on every side, between requests."""
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"write: bytes, not {type(data).__name__}")
        if self.third is not None:
            self.third.write(addr, data)
        self.rtl_mem.write(addr, data)
        self.golden_mem.write(addr, data)

    def write64(self, addr, value):
        self.memory.write64(addr, value)

    def read64(self, addr):
        return self.memory.read64(addr)

    def _apply(self, side, number, we, lock, addr):
        outcome = None
        for event in self.events.get(number, ()):
            if event.what == "error":
                outcome = ERROR
            elif event.what == "write" and not (we and lock):
                side.mem.write64(event.addr, event.value)
            elif event.what == "sfence":
                side.sfence(event.vaddr, event.asid)
        return outcome

    async def set_csr(self, **fields):
        """Set CSR fields (satp's ``mode``, ``asid``, ``ppn``: a full physical PPN;
        ``priv``, ``sum``, ``mxr``, ``adue``) on every side."""
        if self.third is not None:
            self.third.set_csr(**fields)
        await self.rtl.set_csr(**fields)
        self.golden.set_csr(**fields)

    def _golden_sfence(self, vaddr, asid):
        if self.coverage is not None:
            self.coverage.sfence(self.golden.tlb.entries, vaddr, asid)
        self.golden.sfence(vaddr is not None, vaddr or 0, asid is not None, asid or 0)

    async def sfence(self, vaddr=None, asid=None):
        """sfence.vma (None: x0) on every side, between requests."""
        if self.third is not None:
            self.third.sfence(vaddr, asid)
        await self.rtl.sfence(vaddr, asid)
        self._golden_sfence(vaddr, asid)

    async def translate(self, vaddr, kind, events=()):
        """Translate on both sides; raise :class:`Mismatch` if they differ in the response
        or in the bus transactions. Returns the RTL's :class:`Outcome`."""
        self.events = {}
        for event in events:
            self.events.setdefault(event.at, []).append(event)
        self.bus.bus_log = []
        self.waits = []
        coverage, golden_mmu = self.coverage, self.golden
        if coverage is not None:
            csr = golden_mmu.csr       # as the request finds them (events change no CSR)
            csrs = (int(csr.priv), int(csr.sum), int(csr.mxr), int(csr.adue))
            golden_mmu.read_levels = []
            walks = golden_mmu.counters["walks"]
        response, cycles = await self.rtl.translate(vaddr, kind)
        rtl_log = self.rtl.ram.bus_log
        golden = golden_mmu.translate(vaddr, kind)
        self.events = {}
        golden_log = self.bus.bus_log
        if response != golden or rtl_log != golden_log:
            raise Mismatch(
                f"vaddr={vaddr:#x} kind={int(kind)}: rtl {response} vs golden {golden}\n"
                f"  rtl bus    {_fmt_log(rtl_log)}\n  golden bus {_fmt_log(golden_log)}")
        if self.third is not None:
            if events:
                raise ValueError("a third machine takes no events inside a walk")
            self.third.compare(vaddr, kind, golden)
        if coverage is not None:
            coverage.translation(int(kind), *csrs, golden_mmu.decided, golden_log,
                                 golden_mmu.read_levels, events, self.waits,
                                 golden_mmu.counters["walks"] - walks)
            golden_mmu.read_levels = None
        return Outcome(response, cycles, rtl_log)

    async def check_tlb(self):
        """Compare every TLB entry through the RTL's debug port with the golden TLB."""
        rtl = await self.rtl.tlb_entries(self.params["tlb_entries"])
        for i, (r, g) in enumerate(zip(rtl, self.golden.tlb.entries)):
            if not r.valid and not g.valid:
                continue
            got, want = dataclasses.asdict(r), dataclasses.asdict(g)
            if got["level"] >= 1:
                # The lower VPN fields of a superpage are not compared, nor its PPN bits
                # below its level: 0 in the PTE, the RTL's TLB may show the base's there
                # (hdl/tlb.py dbg_entries).
                mask = (1 << (9 * got["level"])) - 1
                for name in ("vpn", "ppn"):
                    got[name] &= ~mask
                    want[name] &= ~mask
            if got != want:
                raise Mismatch(f"TLB entry {i}: rtl {got} vs golden {want}")

    def check_memory(self):
        rtl, golden = self.rtl_mem.data, self.golden_mem.data
        if rtl != golden:      # no copies of 16 MiB
            for at in range(0, len(rtl), 8):
                if rtl[at:at + 8] != golden[at:at + 8]:
                    addr = self.phys_base + at
                    raise Mismatch(f"memory at {addr:#x}: rtl {self.rtl_mem.read64(addr):#x} "
                                   f"vs golden {self.golden_mem.read64(addr):#x}")


def _fmt_log(log):
    return " ".join(f"{'W' if we else 'R'}{'L' if lock else ''}@{addr:#x}"
                    f"={'ERR' if value is None else hex(value)}"
                    for we, lock, addr, value in log) or "(none)"

"""The rtl backend of the hardware seam: the kernel model on the RTL MMU under Verilator.

The kernel model is synchronous Python; cocotb is asynchronous. The kernel runs in a
thread started with ``cocotb.bridge`` and every call that needs the simulator blocks that
thread with ``cocotb.resume`` until the simulator has answered. cocotb runs one of the two
at a time, so while kernel code runs the simulation is stopped: the kernel's PTE
compare-and-swaps can never land inside the walker's locked A/D sequence (which only runs
while the kernel waits on an access).

Physical memory is one :class:`~mkclean.sim.model.memory.Memory`, the kernel's direct map
and the memory behind the walker's Wishbone port alike. Accesses go through the batch top
(hdl/batch.py): a batch of loads and stores is translated by the RTL at one per cycle with
Python asleep, then their data moves in program order.
"""

import sys

from ..hw.seam import Cause, Csr, Kind, Trap
from ..model.memory import Memory
from ..model.tlb import TlbEntry
from .driver import BatchRtlMmu

_STORE, _AMO = int(Kind.STORE), int(Kind.AMO)
SWITCH_INTERVAL_S = 1e-5            # measured best of 1e-4, 1e-5 and 1e-6 on db


class RtlHardware:
    """:class:`~mkclean.sim.hw.seam.Hardware` over the RTL MMU in a cocotb simulation.

    ``step_check``, when set, is called with the TLB's entries before the first access
    after kernel code has touched page tables, CSRs or the TLB: after every kernel step,
    at the moment a stale translation could be used (the co-simulation checks invariant 2
    there). It runs while the kernel's thread waits.

    Parameters
    ----------
    dut
        The cocotb handle of the batch top (``mkclean_batch``).
    params : dict
        What the RTL was built with: phys_size, tlb_entries, walk_cache_entries,
        batch_depth.
    latency : int or (int, int)
        Memory wait states on the walker's bus.
    rtl : BatchRtlMmu, optional
        The driver of an earlier run in this simulation, to reuse (start() resets it).
    """

    def __init__(self, dut, params, latency=0, rng=None, rtl=None):
        self.params = params
        self.phys_size = params["phys_size"]
        self.depth = params["batch_depth"]
        self.mem = Memory(self.phys_size)
        if rtl is None:
            rtl = BatchRtlMmu(dut, self.mem, latency=latency, rng=rng)
        else:                    # a new run in the same simulation: new memory, reset MMU
            rtl.mem = self.mem
            rtl.hook = None
        self.rtl = rtl
        self.csr = Csr()
        self.batches = 0
        self.step_check = None       # called with the TLB entries (see the class doc)
        self.step_checks = 0
        self._pending = []
        self._queued = None          # the accesses whose requests are in the RTL's queue
        self._queued_at = None       # where the last batch stopped on a fault
        self._kernel_ran = True
        self._in_bus_hook = False

    name = "rtl"

    async def start(self):
        """From the simulator (before the kernel's thread starts)."""
        # The kernel's thread and the simulator's hand over to each other at every batch;
        # with Python's default 5 ms switch interval a hand-over could wait that long for
        # the GIL, which cost more than everything else the co-simulation does.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        await self.rtl.start()
        c = self.csr
        await self.rtl.set_csr(mode=c.mode, asid=c.asid, ppn=c.ppn, priv=int(c.priv),
                               sum=c.sum, mxr=c.mxr, adue=c.adue)
        self._pending.clear()

    @staticmethod
    def _resume(coroutine_function):
        from cocotb.task import resume
        return resume(coroutine_function)

    # -- physical memory: the simulation is stopped whenever kernel code runs --------------

    def read(self, paddr, n):
        return self.mem.read(paddr, n)

    def write(self, paddr, data):
        self._kernel_ran = True
        self.mem.write(paddr, data)

    def read_pte(self, paddr):
        return self.mem.read64(paddr)

    def write_pte(self, paddr, value):
        self._kernel_ran = True
        self.mem.write64(paddr, value)

    def cas_pte(self, paddr, expected, new):
        self._kernel_ran = True
        if self.rtl.locked:
            raise RuntimeError("cas_pte inside the walker's locked A/D sequence")
        found = self.mem.read64(paddr)
        if found == expected:
            self.mem.write64(paddr, new)
        return found

    # -- the MMU's control inputs ------------------------------------------------------

    # sfence.vma and CSR writes wait in _pending until the simulator next runs: nothing
    # happens in the MMU in between, and one hand-over to the simulator per batch instead
    # of one per kernel action is most of the co-simulation's speed.

    def sfence_vma(self, vaddr=None, asid=None):
        self._kernel_ran = True
        if self._in_bus_hook:
            # Kernel code run by a bus hook ("another hart", mid-walk): the fence reaches
            # the MMU in this very cycle. Several fences in one cycle become one that
            # covers them all.
            self.rtl.sfence_now(None, None)
            return
        self._pending.append(("sfence", (vaddr, asid)))

    def on_ad_update(self, pte_addr, action):
        """Run ``action()`` (kernel code: "another hart") once, when the walker begins its
        A/D update of the PTE at ``pte_addr``: before the locked re-read is answered (or,
        in the unlocked variant, before the plain A/D write lands). This is the window
        between the walker's read of the PTE and its A/D write."""
        def hook(number, we, lock, addr):
            if addr == pte_addr and (lock or we):
                self.rtl.hook = None
                self._in_bus_hook = True
                try:
                    action()
                finally:
                    self._in_bus_hook = False
        self.rtl.hook = hook

    def set_csr(self, **fields):
        self._kernel_ran = True
        for name, value in fields.items():
            if not hasattr(self.csr, name):
                raise TypeError(f"set_csr: no CSR field named {name!r}")
            setattr(self.csr, name, value)
        self._pending.append(("csr", {k: int(v) for k, v in fields.items()}))

    async def _sync(self):
        """In the simulator: apply the kernel's pending sfences and CSR writes, then run
        the step check if kernel code ran since the last one."""
        for what, args in self._pending:
            if what == "sfence":
                await self.rtl.sfence(*args)
            else:
                await self.rtl.set_csr(**args)
        self._pending.clear()
        if self._kernel_ran and self.step_check is not None:
            self._kernel_ran = False
            self.step_checks += 1
            self.step_check(await self._read_tlb())

    # -- accesses --------------------------------------------------------------------------

    def access(self, vaddr, kind, data=None, size=0):
        results, trap = self.access_batch([(vaddr, kind, data, size)])
        return trap if trap is not None else results[0]

    def access_batch(self, accesses):
        """Translate ``accesses`` ((vaddr, kind, data, size)) in order on the RTL and do
        them, up to the first trap. Returns (results of those done, the trap or None)."""
        results = []
        pos = 0
        while pos < len(accesses):
            chunk = accesses[pos:pos + self.depth]
            responses = self._resume(self._translate)(chunk)
            buf = self.mem.data
            for (vaddr, kind, data, size), paddr in zip(chunk, responses):
                if paddr < 0:
                    return results, Trap(Cause(-paddr), vaddr)
                if kind == _STORE:            # the common case, inline
                    buf[paddr:paddr + len(data)] = data
                    results.append(b"")
                else:
                    results.append(self._perform(paddr, int(kind), data, size))
            pos += len(responses)
        return results, None

    async def _translate(self, accesses):
        """Translate a prefix of ``accesses`` (all of them, or up to a fault)."""
        await self._sync()
        # After a fault the kernel asks again for the rest of the same accesses: the queue
        # still holds them from the one that faulted on; run that part without rewriting.
        queued, at = self._queued, self._queued_at
        if queued is not None and accesses[:len(queued) - at] == queued[at:]:
            first, end = at, len(queued)
        else:
            for vaddr, kind, data, size in accesses:
                n = len(data) if data is not None else size
                if (vaddr & 0xFFF) + n > 4096:
                    raise ValueError(f"access of {n} bytes at {vaddr:#x} crosses a page")
            self.rtl.write_requests(accesses)
            self._queued, first, end = accesses, 0, len(accesses)
        self.batches += 1
        responses = await self.rtl.run(first, end)
        if responses and responses[-1] < 0:
            self._queued_at = first + len(responses) - 1
        else:
            self._queued = self._queued_at = None
        return responses

    def _perform(self, paddr, kind, data, size):
        mem = self.mem
        if kind == _STORE:
            mem.write(paddr, data)
            return b""
        if kind == _AMO:             # a swap, as the golden backend does
            old = mem.read(paddr, len(data))
            mem.write(paddr, data)
            return old
        return mem.read(paddr, size)

    # -- debug -----------------------------------------------------------------------------

    def tlb_entries(self):
        """The RTL TLB's entries, read through the debug port."""
        return self._resume(self._tlb_entries)()

    async def _tlb_entries(self):
        await self._sync()
        return await self._read_tlb()

    async def _read_tlb(self):
        raw = await self.rtl.tlb_entries(self.params["tlb_entries"])
        return [TlbEntry(bool(e["valid"]), e["asid"], bool(e["g"]), e["level"], e["vpn"],
                         e["ppn"], bool(e["r"]), bool(e["w"]), bool(e["x"]), bool(e["u"]),
                         bool(e["a"]), bool(e["d"])) for e in raw]

    def counters(self):
        return self._resume(self._counters)()

    async def _counters(self):
        await self._sync()
        return {**self.rtl.counters(), "cycles": self.rtl.cycle, "batches": self.batches,
                "step_checks": self.step_checks}


async def fresh_hardware(dut, params, previous=None):
    """From the simulator: a new RtlHardware for another run in the same simulation (new
    memory, the MMU reset), reusing ``previous``'s driver."""
    hw = RtlHardware(dut, params, rtl=previous.rtl if previous else None)
    await hw.start()
    return hw


def outside_simulation(**options):
    """The kernel's backend registry entry: the rtl backend needs a running simulation."""
    raise ValueError("the rtl backend runs inside a cocotb simulation: use "
                     "`mkclean run --backend rtl` (it starts Verilator)")

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

from ..hw.seam import Csr, Kind, Trap
from ..model.memory import Memory
from ..model.tlb import TlbEntry
from .driver import BatchRtlMmu

_STORE, _AMO = int(Kind.STORE), int(Kind.AMO)


class RtlHardware:
    """:class:`~mkclean.sim.hw.seam.Hardware` over the RTL MMU in a cocotb simulation.

    Parameters
    ----------
    dut
        The cocotb handle of the batch top (``mkclean_batch``).
    params : dict
        What the RTL was built with: phys_size, tlb_entries, walk_cache_entries,
        batch_depth.
    latency : int or (int, int)
        Memory wait states on the walker's bus.
    """

    def __init__(self, dut, params, latency=1, rng=None):
        self.params = params
        self.phys_size = params["phys_size"]
        self.depth = params["batch_depth"]
        self.mem = Memory(self.phys_size)
        self.rtl = BatchRtlMmu(dut, self.mem, latency=latency, rng=rng)
        self.csr = Csr()
        self.batches = 0
        self._in_bus_hook = False

    async def start(self):
        """From the simulator (before the kernel's thread starts)."""
        await self.rtl.start()
        c = self.csr
        await self.rtl.set_csr(mode=c.mode, asid=c.asid, ppn=c.ppn, priv=int(c.priv),
                               sum=c.sum, mxr=c.mxr, adue=c.adue)

    @staticmethod
    def _resume(coroutine_function):
        from cocotb.task import resume
        return resume(coroutine_function)

    # -- physical memory: the simulation is stopped whenever kernel code runs --------------

    def read(self, paddr, n):
        return self.mem.read(paddr, n)

    def write(self, paddr, data):
        self.mem.write(paddr, data)

    def read_pte(self, paddr):
        return self.mem.read64(paddr)

    def write_pte(self, paddr, value):
        self.mem.write64(paddr, value)

    def cas_pte(self, paddr, expected, new):
        if self.rtl.locked:
            raise RuntimeError("cas_pte inside the walker's locked A/D sequence")
        found = self.mem.read64(paddr)
        if found == expected:
            self.mem.write64(paddr, new)
        return found

    # -- the MMU's control inputs ------------------------------------------------------

    def sfence_vma(self, vaddr=None, asid=None):
        if self._in_bus_hook:
            # Kernel code run by a bus hook ("another hart", mid-walk): the fence reaches
            # the MMU in this very cycle. Several fences in one cycle become one that
            # covers them all.
            self.rtl.sfence_now(None, None)
            return
        self._resume(self.rtl.sfence)(vaddr, asid)

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
        for name, value in fields.items():
            if not hasattr(self.csr, name):
                raise TypeError(f"set_csr: no CSR field named {name!r}")
            setattr(self.csr, name, value)
        self._resume(self.rtl.set_csr)(**{k: int(v) for k, v in fields.items()})

    # -- accesses --------------------------------------------------------------------------

    def access(self, vaddr, kind, data=None, size=0):
        results, trap = self.access_batch([(vaddr, kind, data, size)])
        return trap if trap is not None else results[0]

    def access_batch(self, accesses):
        """Translate ``accesses`` ((vaddr, kind, data, size)) in order on the RTL and do
        them, up to the first trap. Returns (results of those done, the trap or None)."""
        results = []
        for start in range(0, len(accesses), self.depth):
            chunk = accesses[start:start + self.depth]
            for vaddr, kind, data, size in chunk:
                n = len(data) if data is not None else size
                if (vaddr & 0xFFF) + n > 4096:
                    raise ValueError(f"access of {n} bytes at {vaddr:#x} crosses a page")
            responses = self._resume(self._translate)([(a[0], a[1]) for a in chunk])
            for (vaddr, kind, data, size), r in zip(chunk, responses):
                if r.fault:
                    return results, Trap(r.cause, vaddr)
                results.append(self._perform(r.paddr, int(kind), data, size))
        return results, None

    async def _translate(self, requests):
        self.rtl.write_requests(requests)
        self.batches += 1
        return await self.rtl.run(0, len(requests))

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
        raw = self._resume(self.rtl.tlb_entries)(self.params["tlb_entries"])
        return [TlbEntry(bool(e["valid"]), e["asid"], bool(e["g"]), e["level"], e["vpn"],
                         e["ppn"], bool(e["r"]), bool(e["w"]), bool(e["x"]), bool(e["u"]),
                         bool(e["a"]), bool(e["d"])) for e in raw]

    def counters(self):
        counters = self._resume(self._counters)()
        return counters

    async def _counters(self):
        return {**self.rtl.counters(), "cycles": self.rtl.cycle, "batches": self.batches}

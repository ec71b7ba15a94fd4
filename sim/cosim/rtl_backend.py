"""The rtl backend of the hardware seam: the kernel model on the RTL MMU under Verilator.

The kernel model is synchronous Python; cocotb is asynchronous. The kernel runs in a
thread started with ``cocotb.bridge`` and every call that needs the simulator blocks that
thread with ``cocotb.resume`` until the simulator has answered. cocotb runs one of the two
at a time, so while kernel code runs the simulation is stopped: the kernel's PTE
compare-and-swaps can never land inside the walker's locked A/D sequence (which only runs
while the kernel waits on an access).

Physical memory is one :class:`~mkclean.sim.model.memory.Memory`, the kernel's direct map
and the memory behind the walker's Wishbone port alike; the batch top's page-table mirror
holds copies of the frames the walker reads, which every write here keeps in step
(``rtl.touch``). Accesses go through the batch top (hdl/batch.py): the kernel's pending
sfences, then a batch of loads and stores translated by the RTL at one per cycle with
Python asleep; then their data moves in program order.

In a traced run (MKCLEAN_TRACED=1, which build.run sets) the kernel's actions
(``kernel_event``) wait in a list while the kernel runs and go to the testbench's debug
port when the simulator next runs, before anything else it does there: the story of a
fault (the access's batch, the kernel's answer, the retry's batch) reads in order in the
trace. Untraced, ``kernel_event`` is a method that returns.

Runs inside the simulator (the kernel's thread and cocotb's). Imports: the seam
(sim/hw/seam.py), the golden model's Memory, :mod:`.batch_driver`. It must stay
importable outside a simulator: the backend registry (sim/hw/backends.py) names
:func:`outside_simulation` here by its path.
"""

import os
import sys

from ..hw.seam import Cause, Csr, Kind, Trap
from ..model.memory import Memory
from .batch_driver import SNAPSHOT_OP, BatchRtlMmu, fence_op, split

_LOAD, _STORE, _AMO = int(Kind.LOAD), int(Kind.STORE), int(Kind.AMO)
SWITCH_INTERVAL_S = 1e-5            # measured best of 1e-4, 1e-5 and 1e-6 on db


class RtlHardware:
    """:class:`~mkclean.sim.hw.seam.Hardware` over the RTL MMU in a cocotb simulation.

    ``step_check``, when set, is called with the TLB's entries as they were before the
    first access after kernel code touched page tables, CSRs or the TLB: after every
    kernel step, at the moment a stale translation could be used (the co-simulation
    checks invariant 2 there). A snapshot operation in the queue takes them after the
    kernel's fences; the check runs when the batch is over, before any of its data moves,
    while the kernel's thread waits.

    Parameters
    ----------
    dut
        The cocotb handle of the batch top (``mkclean_batch``).
    params : dict
        What the RTL was built with: phys_size, phys_base (0 if absent), tlb_entries,
        walk_cache_entries, batch_depth. The kernel's physical addresses are in
        ``[phys_base, phys_base + phys_size)``.
    latency : int or (int, int)
        Memory wait states on the walker's bus.
    rtl : BatchRtlMmu, optional
        The driver of an earlier run in this simulation, to reuse (start() resets it).
    check_mirror : bool, optional
        Check the page-table mirror against memory after every batch (see
        :class:`~.batch_driver.BatchRtlMmu`; default: MKCLEAN_CHECK_MIRROR=1 in the
        environment).
    traced : bool, optional
        Show the kernel's events on the testbench's debug port (see the module; default:
        MKCLEAN_TRACED=1 in the environment, a run that records a trace).
    """

    def __init__(self, dut, params, latency=0, rng=None, rtl=None, check_mirror=None,
                 traced=None):
        self.params = params
        self.phys_size = params["phys_size"]
        self.phys_base = params.get("phys_base", 0)
        self.mem = Memory(self.phys_size, self.phys_base)
        if rtl is None:
            rtl = BatchRtlMmu(dut, self.mem, latency=latency, rng=rng,
                              check_mirror=check_mirror)
        else:                    # a new run in the same simulation: new memory, reset MMU
            rtl.attach(self.mem)
        self.rtl = rtl
        self.depth = rtl.depth
        self.csr = Csr()
        self.batches = 0
        self.step_check = None       # called with the TLB entries (see the class doc)
        self.step_checks = 0
        self._csr_writes = []
        self._fences = []            # sfence.vma queue entries, for the next batch
        self._queued = None          # the accesses whose requests are in the RTL's queue
        self._queued_from = 0        # ... from this queue index
        self._fault_at = None        # the queue index where the last batch stopped on a fault
        self._kernel_ran = True
        self._in_bus_hook = False
        #: frame -> the cycles (first, last) of the last batch that stored to it: where a
        #: lost write's window of waves goes (commands/run.py)
        self.last_store = {}
        self._batch_cycles = (0, 0)
        self._events = []            # (KernelEvent, addr) since the simulator last ran
        if traced is None:
            traced = os.environ.get("MKCLEAN_TRACED") == "1"
        if traced:
            self.kernel_event = self._queue_kernel_event

    name = "rtl"

    async def start(self):
        """From the simulator (before the kernel's thread starts)."""
        # The kernel's thread and the simulator's hand over to each other at every batch;
        # with Python's default 5 ms switch interval a hand-over could wait that long for
        # the GIL, which cost more than everything else the co-simulation does.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        await self.rtl.start()
        self._first_cycle = self.rtl.cycle
        c = self.csr
        await self.rtl.set_csr(mode=c.mode, asid=c.asid, ppn=c.ppn, priv=int(c.priv),
                               sum=c.sum, mxr=c.mxr, adue=c.adue)
        self._csr_writes.clear()
        self._fences.clear()

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
        self.rtl.touch(paddr, len(data))

    def read_pte(self, paddr):
        return self.mem.read64(paddr)

    def write_pte(self, paddr, value):
        self._kernel_ran = True
        self.mem.write64(paddr, value)
        self.rtl.touch(paddr, 8)

    def cas_pte(self, paddr, expected, new):
        self._kernel_ran = True
        if self.rtl.ram.locked:
            raise RuntimeError("cas_pte inside the walker's locked A/D sequence")
        found = self.mem.read64(paddr)
        if found == expected:
            self.mem.write64(paddr, new)
            self.rtl.touch(paddr, 8)
        return found

    # -- the MMU's control inputs ------------------------------------------------------

    # sfence.vma goes into the batch queue ahead of the next accesses, and CSR writes wait
    # until the simulator next runs: nothing happens in the MMU in between, and one
    # hand-over to the simulator per batch instead of one per kernel action is most of
    # the co-simulation's speed. Applying the CSR writes before the fences instead of in
    # program order changes nothing: an sfence's effect depends on its operands alone.

    def sfence_vma(self, vaddr=None, asid=None):
        self._kernel_ran = True
        if self._in_bus_hook:
            # Kernel code run by a bus hook ("another hart", mid-walk): the fence reaches
            # the MMU in this very cycle. Several fences in one cycle become one that
            # covers them all.
            self.rtl.sfence_now(None, None)
            return
        self._fences.append(fence_op(vaddr, asid))

    def on_ad_update(self, pte_addr, action):
        """Run ``action()`` (kernel code: "another hart") once, when the walker begins its
        A/D update of the PTE at ``pte_addr``: before the locked re-read is answered (or,
        in the unlocked variant, before the plain A/D write lands). This is the window
        between the walker's read of the PTE and its A/D write. (While a hook is set, the
        walker's reads all go to Python: the page-table mirror is off.)"""
        ram = self.rtl.ram

        def hook(number, we, lock, addr):
            if addr == pte_addr and (lock or we):
                ram.hook = None
                self._in_bus_hook = True
                try:
                    action()
                finally:
                    self._in_bus_hook = False
        ram.hook = hook

    def set_csr(self, **fields):
        self._kernel_ran = True
        for name, value in fields.items():
            if not hasattr(self.csr, name):
                raise TypeError(f"set_csr: no CSR field named {name!r}")
            setattr(self.csr, name, value)
        self._csr_writes.append({k: int(v) for k, v in fields.items()})

    # -- the kernel's actions, for a trace ------------------------------------------------

    def kernel_event(self, event, addr=0):
        """Untraced: nothing (a traced instance has :meth:`_queue_kernel_event` here)."""

    def _queue_kernel_event(self, event, addr=0):
        # Kernel code, the simulation stopped: shown by _sync when it next runs. Events of
        # kernel code run by a bus hook (mid-batch) wait for the batch's end likewise.
        self._events.append((event, addr))

    async def _sync(self):
        """In the simulator, first thing at every hand-over from the kernel (every
        batch, TLB read and counter read goes through here), before the MMU runs: the
        kernel's events since the last one, its CSR writes, and the page-table mirror
        brought up to date."""
        if self._events:
            events, self._events = self._events, []
            await self.rtl.show_kernel_events(events)
        for fields in self._csr_writes:
            await self.rtl.set_csr(**fields)
        self._csr_writes.clear()
        self.rtl.sync_mirror()

    async def _apply_fences(self, snapshot=False):
        """Run the pending sfences alone (and then a TLB snapshot), from queue index 0,
        keeping a faulted batch's accesses when they are not in the way."""
        ops, self._fences = self._fences, []
        if snapshot:
            ops.append(SNAPSHOT_OP)
        for i in range(0, len(ops), self.depth):
            part = ops[i:i + self.depth]
            if self._fault_at is None or len(part) > self._fault_at:
                self._queued = self._fault_at = None
            self.rtl.write_ops(0, *split(part))
            await self.rtl.run(0, len(part))

    # -- accesses --------------------------------------------------------------------------

    def access(self, vaddr, kind, data=None, size=0):
        results, trap = self.access_batch([(vaddr, kind, data, size)])
        return trap if trap is not None else results[0]

    def access_batch(self, accesses, on_trap=None):
        """Translate ``accesses`` ((vaddr, kind, data, size)) in order on the RTL and do
        them, up to the first trap. Returns (results of those done, the trap or None).
        With ``on_trap`` (see the seam) the kernel's trap handler runs in the simulator's
        thread, between batches, and the accesses go on: one hand-over to the simulator
        for the whole list, not one per fault."""
        return self._resume(self._access_batch)(accesses, on_trap)

    async def _access_batch(self, accesses, on_trap):
        results = []
        append = results.append
        pos = 0
        mirror = self.rtl.mirror
        buf, base = self.mem.data, self.phys_base      # buf is indexed by paddr - base
        last_store = self.last_store
        while pos < len(accesses):
            chunk = accesses[pos:pos + self.depth] if pos or len(accesses) > self.depth \
                else accesses
            responses = await self._translate(chunk)
            cycles = self._batch_cycles
            for (vaddr, kind, data, size), paddr in zip(chunk, responses):
                if paddr < 0:
                    trap = Trap(Cause(-paddr), vaddr)
                    if on_trap is None:
                        return results, trap
                    on_trap(trap, len(results))     # kernel code; the MMU is idle
                    break
                # Stores and loads, the common cases, inline.
                at = paddr - base
                if kind == _STORE:
                    buf[at:at + len(data)] = data
                    last_store[paddr >> 12] = cycles
                    if at >> 12 in mirror:     # a store into a page table
                        self.rtl.touch(paddr, len(data))
                    append(b"")
                elif kind == _LOAD:
                    append(bytes(buf[at:at + size]))
                else:
                    append(self._perform(paddr, int(kind), data, size))
            pos = len(results)
        return results, None

    async def _translate(self, accesses):
        """Translate a prefix of ``accesses``: all of them, as many as the queue holds
        after the pending sfences, or up to a fault."""
        await self._sync()
        if len(self._fences) >= self.depth:
            await self._apply_fences()
        ops, self._fences = self._fences, []
        check = self._kernel_ran and self.step_check is not None
        if check:
            # The step check looks at the TLB as this batch finds it, after the kernel's
            # fences and before its first access: a snapshot in the queue, read after.
            self._kernel_ran = False
            ops.append(SNAPSHOT_OP)
        k = len(ops)
        # After a fault the kernel asks again for the rest of the same accesses: the queue
        # still holds them from the one that faulted on. Run that part without rewriting
        # it, with the other operations written into the slots just before it.
        queued, at = self._queued, self._fault_at
        rest = queued[at - self._queued_from:] if at is not None else None
        if rest is not None and at >= k and accesses[:len(rest)] == rest:
            first, end = at - k, self._queued_from + len(queued)
            if k:
                self.rtl.write_ops(first, *split(ops))
        else:
            n = min(len(accesses), self.depth - k)
            todo = accesses if n == len(accesses) else accesses[:n]
            ends = [(a[0] & 0xFFF) + (a[3] if a[2] is None else len(a[2])) for a in todo]
            if ends and max(ends) > 4096:
                i = next(i for i, e in enumerate(ends) if e > 4096)
                vaddr = todo[i][0]
                raise ValueError(f"access of {ends[i] - (vaddr & 0xFFF)} bytes at "
                                 f"{vaddr:#x} crosses a page")
            low, high = split(ops)
            low += [a[0] for a in todo]
            high += [a[1] for a in todo]
            self.rtl.write_ops(0, low, high)
            self._queued, self._queued_from, first, end = todo, k, 0, k + n
        self.batches += 1
        start = self.rtl.cycle
        responses = await self.rtl.run(first, end)
        self._batch_cycles = (start, self.rtl.cycle)
        if check:
            self.step_checks += 1
            self.step_check(self.rtl.tlb_snapshot(self.params["tlb_entries"]))
        if k:
            responses = responses[k:]
        if responses and responses[-1] < 0:
            self._fault_at = first + k + len(responses) - 1
        else:
            self._queued = self._fault_at = None
        return responses

    def _perform(self, paddr, kind, data, size):
        mem = self.mem
        if kind == _STORE:
            mem.write(paddr, data)
            self.rtl.touch(paddr, len(data))
            return b""
        if kind == _AMO:             # a swap, as the golden backend does
            old = mem.read(paddr, len(data))
            mem.write(paddr, data)
            self.rtl.touch(paddr, len(data))
            return old
        return mem.read(paddr, size)

    # -- debug -----------------------------------------------------------------------------

    def tlb_entries(self):
        """The RTL TLB's entries, from a snapshot operation (the batch top's debug view)."""
        return self._resume(self._tlb_entries)()

    async def _tlb_entries(self):
        await self._sync()
        await self._apply_fences(snapshot=True)
        return self.rtl.tlb_snapshot(self.params["tlb_entries"])

    def counters(self):
        return self._resume(self._counters)()

    async def _counters(self):
        await self._sync()
        await self._apply_fences()
        return {**self.rtl.counters(), "cycles": self.rtl.cycle - self._first_cycle,
                "batches": self.batches,
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

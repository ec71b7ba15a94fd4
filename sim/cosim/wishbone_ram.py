"""The Wishbone RAM: the memory behind the walker's bus, for every simulation of the MMU.

One class, :class:`WishboneRam`: its pure-Python core answers one transaction at a time
(memory, wait states, the hook, the bus log, the lock state) and three thin adapters put
that core on a bus:

- :meth:`WishboneRam.serve_cocotb`: a cocotb task on the flat ports of a Verilator top
  (``wb_*``), used by the drivers (:mod:`.mmu_driver`, :mod:`.batch_driver`);
- :meth:`WishboneRam.serve_amaranth`: an Amaranth simulator process on a
  :class:`~mkclean.hdl.wishbone` bus (tests/hdl_harness.py);
- :meth:`read`, :meth:`write`, :meth:`unlock`: the golden model's
  :class:`~mkclean.sim.model.memory.Bus`, one call a transaction (:mod:`.pair`).

The Wishbone bus carries the offset within physical memory (hdl/README.md, "Memory"):
the adapters add the memory's base (``mem.base``), and everything else here (the core,
the hook, the bus log, the golden model's calls) speaks physical addresses.

The hook protocol, the same everywhere: ``hook(number, we, lock, addr)`` is called
before transaction ``number`` (counted from the last time ``bus_log`` was emptied) is
answered, with ``we`` and ``lock`` as 0/1 and ``addr`` the physical byte address; it may
change memory, drive other inputs of the design, or set ``hook`` to None; it returns
:data:`ERROR` to answer the transaction with a bus error, anything else to answer it
normally.

Imports: the standard library only (cocotb's triggers inside :meth:`serve_cocotb`, which
runs only in the simulator).
"""

import random

#: what a hook returns to answer the transaction with a bus error
ERROR = "error"


class WishboneRam:
    """Physical memory on a Wishbone bus.

    Parameters
    ----------
    mem : Memory
        What the transactions read and write (its ``base`` and ``size`` say where it is).
    latency : int or (int, int)
        Wait states: a transaction takes ``latency + 1`` cycles (at least 2 under
        :meth:`serve_amaranth`). A pair draws each transaction's wait states from that
        range with ``rng``.

    Attributes
    ----------
    hook
        See the module's docstring; None for no hook.
    bus_log : list
        One ``(we, lock, physical byte address, value or None for a bus error)`` a
        transaction; its owner empties it (a request, a batch).
    locked : bool
        The walker is inside its locked A/D sequence: its locked read was answered and
        its write not yet.
    answered
        None, or called as ``answered(we, addr)`` (a physical address) after every
        transaction answered without error (the batch driver keeps its page-table mirror
        in step).
    """

    def __init__(self, mem, latency=1, rng=None):
        self.mem = mem
        self.latency = latency
        self.rng = rng or random.Random(0)
        self.hook = None
        self.bus_log = []
        self.locked = False
        self.answered = None
        self._pulses = []

    def wait_states(self):
        """The wait states of a new transaction."""
        latency = self.latency
        if isinstance(latency, tuple):
            return self.rng.randint(*latency)
        return latency

    def physical(self, offset):
        """The physical address of byte ``offset`` of memory, as the bus carries it; an
        offset beyond memory is a design that put something else on the bus (a full
        physical address, say), and an AssertionError that says so."""
        mem = self.mem
        if offset >= mem.size:
            raise AssertionError(
                f"bus address {offset:#x} (a byte address) is beyond the {mem.size:#x} "
                f"bytes of memory: the bus carries the offset within memory, not the "
                f"physical address (memory starts at {mem.base:#x})")
        return mem.base + offset

    def transaction(self, we, lock, addr, value=None):
        """Answer one transaction: a write of ``value`` (``we``) or a read at physical
        byte address ``addr``. Returns the value read or written, or None for a bus
        error."""
        log = self.bus_log
        hook = self.hook
        # The hook runs before this transaction is answered: a locked read not yet
        # answered has not locked anything yet.
        says = hook(len(log), we, lock, addr) if hook is not None else None
        self.locked = bool(lock and not we)
        if says == ERROR:
            log.append((we, lock, addr, None))
            return None
        if we:
            self.mem.write64(addr, value)
        else:
            value = self.mem.read64(addr)
        log.append((we, lock, addr, value))
        if self.answered is not None:
            self.answered(we, addr)
        return value

    # -- the golden model's Bus ----------------------------------------------------------

    def read(self, addr, lock):
        return self.transaction(0, int(lock), addr)

    def write(self, addr, value, lock):
        return self.transaction(1, int(lock), addr, value) is not None

    def unlock(self):
        self.locked = False

    # -- cocotb ------------------------------------------------------------------------

    def pulse(self, signal):
        """From a hook under :meth:`serve_cocotb`: set ``signal`` to 1 for the cycle of
        the transaction being answered; the task sets it back to 0 at the next falling
        edge."""
        signal.value = 1
        self._pulses.append(signal)

    async def serve_cocotb(self, dut):
        """The cocotb task of the RAM on ``dut``'s ``wb_*`` ports (start it with
        ``cocotb.start_soon``). It acts on falling clock edges: the walker's outputs
        have settled there, and what it sets holds for the next rising edge. A
        transaction seen at a falling edge is answered at that edge after its wait
        states, and ack or err stays up for one cycle."""
        from cocotb.triggers import FallingEdge, RisingEdge
        transaction, wait_states, pulses = self.transaction, self.wait_states, self._pulses
        waited = 0
        wait_for = None
        acking = False
        while True:
            if not (acking or pulses or int(dut.wb_stb.value)):
                # Idle bus: sleep until the walker starts a transaction rather than wake
                # on every clock.
                await RisingEdge(dut.wb_stb)
            await FallingEdge(dut.clk)
            if pulses:
                for signal in pulses:
                    signal.value = 0
                pulses.clear()
            if acking:
                dut.wb_ack.value = 0
                dut.wb_err.value = 0
                acking = False
            if not (int(dut.wb_cyc.value) and int(dut.wb_stb.value)):
                continue
            if wait_for is None:           # a new transaction: draw its wait states
                wait_for = wait_states()
            if waited < wait_for:
                waited += 1
                continue
            waited = 0
            wait_for = None
            acking = True
            we = int(dut.wb_we.value)
            value = transaction(we, int(dut.wb_lock.value),
                                self.physical(int(dut.wb_adr.value) << 3),
                                int(dut.wb_dat_w.value) if we else None)
            if value is None:
                dut.wb_err.value = 1
                continue
            if not we:
                dut.wb_dat_r.value = value
            dut.wb_ack.value = 1

    # -- Amaranth's simulator ----------------------------------------------------------

    async def serve_amaranth(self, ctx, bus):
        """The Amaranth simulator process of the RAM on ``bus`` (add it with
        ``sim.add_process``). It samples the bus at every clock edge and answers with
        ack or err, combinationally after the edge, at the sample that ends the wait
        states (the first sample counts as one, so no wait states act as one).
        """
        transaction, wait_states = self.transaction, self.wait_states
        waited = 0
        wait_for = 0
        async for _, _, cyc, stb, adr, we, dat_w, lock, ack, err in ctx.tick().sample(
                bus.cyc, bus.stb, bus.adr, bus.we, bus.dat_w, bus.lock, bus.ack, bus.err):
            ctx.set(bus.ack, 0)
            ctx.set(bus.err, 0)
            if ack or err or not (cyc and stb):
                waited = 0
                continue
            if not waited:                 # a new transaction: draw its wait states
                wait_for = wait_states()
            waited += 1
            if waited < wait_for:
                continue
            value = transaction(we, lock, self.physical(adr << 3), dat_w if we else None)
            if value is None:
                ctx.set(bus.err, 1)
                continue
            if not we:
                ctx.set(bus.dat_r, value)
            ctx.set(bus.ack, 1)

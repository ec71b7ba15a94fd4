"""Amaranth-simulator harness for the MMU: a Wishbone memory process with latency and
injected errors, and a request/response helper. Used by the fast unit tests."""

from amaranth.sim import Simulator

from mkclean.hdl.mmu import MMU
from mkclean.sim.model.memory import Memory


class Harness:
    def __init__(self, phys_size=1 << 22, latency=1, **params):
        self.dut = MMU(phys_size=phys_size, **params)
        self.mem = Memory(phys_size)
        self.latency = latency
        self.bus_log = []          # (we, lock, byte address, value) per transaction
        self.error_at = set()      # transaction numbers answered with err
        self.on_transaction = None  # callback(number, we, addr) before it is answered

    def csr(self, ctx, *, mode=8, asid=0, ppn=0, priv=1, sum=0, mxr=0, adue=1):
        c = self.dut.csr
        for field, value in (("mode", mode), ("asid", asid), ("ppn", ppn)):
            ctx.set(getattr(c.satp, field), value)
        ctx.set(c.priv, priv)
        ctx.set(c.sum, sum)
        ctx.set(c.mxr, mxr)
        ctx.set(c.adue, adue)

    async def memory(self, ctx):
        bus = self.dut.bus
        waited = 0
        async for _, _, cyc, stb, adr, we, dat_w, lock, ack, err in ctx.tick().sample(
                bus.cyc, bus.stb, bus.adr, bus.we, bus.dat_w, bus.lock, bus.ack, bus.err):
            ctx.set(bus.ack, 0)
            ctx.set(bus.err, 0)
            if ack or err or not (cyc and stb):
                waited = 0
                continue
            waited += 1
            if waited < self.latency:
                continue
            number = len(self.bus_log)
            addr = adr << 3
            if self.on_transaction:
                self.on_transaction(number, we, addr)
            if number in self.error_at:
                self.bus_log.append((we, lock, addr, None))
                ctx.set(bus.err, 1)
                continue
            if we:
                self.mem.write64(addr, dat_w)
                self.bus_log.append((1, lock, addr, dat_w))
            else:
                value = self.mem.read64(addr)
                self.bus_log.append((0, lock, addr, value))
                ctx.set(bus.dat_r, value)
            ctx.set(bus.ack, 1)

    async def translate(self, ctx, vaddr, kind=0):
        """One request; returns (fault, cause, paddr, cycles from accept to response)."""
        dut = self.dut
        ctx.set(dut.req.payload.vaddr, vaddr)
        ctx.set(dut.req.payload.kind, kind)
        ctx.set(dut.req.valid, 1)
        ctx.set(dut.resp.ready, 1)
        await ctx.tick().until(dut.req.ready)
        ctx.set(dut.req.valid, 0)
        cycles = 1
        while not ctx.get(dut.resp.valid):
            await ctx.tick()
            cycles += 1
        resp = ctx.get(dut.resp.payload)
        await ctx.tick()
        return resp.fault, resp.cause.value, resp.paddr, cycles

    async def sfence(self, ctx, vaddr=None, asid=None):
        s = self.dut.sfence
        ctx.set(s.payload.by_vaddr, vaddr is not None)
        ctx.set(s.payload.vaddr, vaddr or 0)
        ctx.set(s.payload.by_asid, asid is not None)
        ctx.set(s.payload.asid, asid or 0)
        ctx.set(s.valid, 1)
        await ctx.tick()
        ctx.set(s.valid, 0)

    def run(self, bench, vcd=None):
        sim = Simulator(self.dut)
        sim.add_clock(1e-8)
        sim.add_process(self.memory)
        sim.add_testbench(bench)
        if vcd:
            with sim.write_vcd(vcd):
                sim.run()
        else:
            sim.run()

"""Amaranth-simulator harness for the MMU: the Wishbone RAM (with wait states and a hook
that can answer a transaction with a bus error, mkclean.sim.cosim.wishbone_ram) as a
simulator process, and a request/response helper. Used by the fast unit tests."""

from amaranth.sim import Simulator

from mkclean.hdl.mmu import MMU
from mkclean.sim.cosim.wishbone_ram import WishboneRam
from mkclean.sim.model.memory import Memory


class Harness:
    def __init__(self, phys_size=1 << 22, latency=1, phys_base=0, **params):
        self.dut = MMU(phys_size=phys_size, phys_base=phys_base, **params)
        #: the walker's memory: ``ram.hook`` as everywhere (wishbone_ram's protocol)
        self.ram = WishboneRam(Memory(phys_size, phys_base), latency)

    @property
    def mem(self):
        return self.ram.mem

    @property
    def bus_log(self):
        """(we, lock, byte address, value or None) per transaction"""
        return self.ram.bus_log

    def csr(self, ctx, *, mode=8, asid=0, ppn=0, priv=1, sum=0, mxr=0, adue=1):
        c = self.dut.csr
        for field, value in (("mode", mode), ("asid", asid), ("ppn", ppn)):
            ctx.set(getattr(c.satp, field), value)
        ctx.set(c.priv, priv)
        ctx.set(c.sum, sum)
        ctx.set(c.mxr, mxr)
        ctx.set(c.adue, adue)

    async def memory(self, ctx):
        await self.ram.serve_amaranth(ctx, self.dut.bus)

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

"""Simulator side of ``mkclean bench``'s MMU figures: latencies and throughput measured in
RTL simulation cycles, and the simulator's speed, on the bare MMU top."""

import time

import cocotb
from cocotb.triggers import FallingEdge

from ....hdl.mmu import miss_cycles
from ...model.memory import Memory
from ..build import params_from_env
from ..jobs import job_config, write_result
from ..mmu_driver import RtlMmu
from ..stimulus import LEAF_RW, PTE_A, PTE_D, PageTables

LOAD = 0
VA_4K = 0x40_2000
VA_2M = 0x4020_0000
VA_1G = 0x3f_c000_0000
LATENCIES = (1, 4)


@cocotb.test()
async def measure(dut):
    config = job_config()
    params = params_from_env()
    mem = Memory(params["phys_size"])
    pt = PageTables(mem, 0x1000, 0x10000)
    pt.map(VA_4K, 0x80_0000)
    pt.map(VA_4K + 0x1000, 0x80_1000)
    ad_addr = pt.map(VA_4K + 0x2000, 0x80_2000, LEAF_RW & ~(PTE_A | PTE_D))
    pt.map(VA_2M, 0x20_0000, level=1)
    pt.map(VA_2M + (2 << 20), 0x40_0000, level=1)
    pt.map(VA_1G, 0, level=2)
    rtl = RtlMmu(dut, mem)
    await rtl.start()
    await rtl.set_csr(mode=8, ppn=pt.root_ppn, adue=1)

    async def cold(vaddr):
        """A walk with nothing cached: cycles and memory reads."""
        await rtl.sfence()
        _, cycles = await rtl.translate(vaddr, LOAD)
        return cycles, len(rtl.ram.bus_log)

    out = {"memory_latency_cycles": list(LATENCIES), "tlb_entries": params["tlb_entries"],
           "walk_cache_entries": params["walk_cache_entries"]}
    for name in ("miss_4k_cycles", "miss_2m_cycles", "miss_1g_cycles", "miss_4k_pwc_cycles",
                 "miss_2m_pwc_cycles",
                 "ad_update_extra_cycles", "miss_4k_bound_cycles"):
        out[name] = {}
    for latency in LATENCIES:
        rtl.ram.latency = latency
        key = str(latency)
        out["miss_4k_cycles"][key], out["miss_4k_reads"] = await cold(VA_4K)
        # The neighbour page shares both non-leaf PTEs, now in the walk cache.
        _, cycles = await rtl.translate(VA_4K + 0x1000, LOAD)
        out["miss_4k_pwc_cycles"][key] = cycles
        out["miss_4k_pwc_reads"] = len(rtl.ram.bus_log)
        out["miss_2m_cycles"][key], _ = await cold(VA_2M)
        _, out["miss_2m_pwc_cycles"][key] = await rtl.translate(VA_2M + (2 << 20), LOAD)
        out["miss_1g_cycles"][key], _ = await cold(VA_1G)
        mem.write64(ad_addr, mem.read64(ad_addr) & ~(PTE_A | PTE_D))
        with_ad, _ = await cold(VA_4K + 0x2000)
        out["ad_update_extra_cycles"][key] = with_ad - out["miss_4k_cycles"][key]
        out["miss_4k_bound_cycles"][key] = miss_cycles(3, latency)

    rtl.ram.latency = 1
    await rtl.translate(VA_4K, LOAD)
    _, out["tlb_hit_latency_cycles"] = await rtl.translate(VA_4K + 8, LOAD)
    n = config.get("stream", 4000)
    requests = [(VA_4K + (i % 512) * 8, LOAD) for i in range(n)]
    _, cycles = await rtl.stream(requests)
    out["tlb_hits_per_cycle"] = round(n / cycles, 4)

    # The simulator with Python woken on every clock edge, nothing else to do.
    cycles = config.get("idle_cycles", 100_000)
    t0 = time.perf_counter()
    for _ in range(cycles):
        await FallingEdge(dut.clk)
    out["verilator_cycles_per_s"] = round(cycles / (time.perf_counter() - t0))
    write_result(config, out)

"""Invariant 2 on the RTL's TLB can fail: a kernel whose page_mkclean forgets the TLB
flush leaves the RTL a writable, dirty entry for a page writeback just cleaned, and the
co-simulation's step check must say so."""

import cocotb

from mkclean.sim.cosim.build import params_from_env
from mkclean.sim.cosim.jobs import job_config, write_result
from mkclean.sim.cosim.rtl_backend import fresh_hardware
from mkclean.sim.kernel import MAP_SHARED, PROT_READ, PROT_WRITE, Kernel
from mkclean.sim.kernel.invariants import check_clean_pages_not_writable


def scenario(hw, params, forget_flush):
    k = Kernel(policy="writenotify", ad="svadu", hw=hw, phys_size=params["phys_size"],
               tlb_entries=params["tlb_entries"],
               plant="missing-flush" if forget_flush else None)
    problems = []
    hw.step_check = lambda entries: problems.extend(check_clean_pages_not_writable(k, entries))
    try:
        f = k.create_file("f", 4096)
        p = k.spawn()
        va = p.mmap(4096, PROT_READ | PROT_WRITE, MAP_SHARED, file=f)
        p.store(va, b"dirty")                       # the TLB now holds W=1 D=1
        k.writeback()                               # mkclean: clean, write-protected PTE
        p.load(va, 1)                               # the next access runs the check
        return problems
    finally:
        hw.step_check = None
        k.close()


@cocotb.test()
async def step_check_sees_a_missing_flush(dut):
    from cocotb.task import bridge
    params = params_from_env()
    out = {}
    hw = None
    for forget in (False, True):
        hw = await fresh_hardware(dut, params, hw)
        out[str(forget)] = await bridge(scenario)(hw, params, forget)
    write_result(job_config(), out)

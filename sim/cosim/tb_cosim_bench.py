"""cocotb entry of ``mkclean bench``'s co-simulation figures, from one simulation: the
kernel model's db workload through the RTL MMU (accesses/s), and the same simulator with
Python woken on every clock edge and doing nothing else (cycles/s)."""

import time

import cocotb
from cocotb.triggers import FallingEdge

from .rtl_backend import RtlHardware
from .runner import job_config, params_from_env, write_result
from .tb_run import execute


@cocotb.test()
async def measure(dut):
    from cocotb.task import bridge
    config = job_config()
    hw = RtlHardware(dut, params_from_env())
    await hw.start()
    run = await bridge(execute)(hw, config["job"])
    cycles = config["clock_cycles"]
    t0 = time.perf_counter()
    for _ in range(cycles):
        await FallingEdge(dut.clk)
    per_clock = cycles / (time.perf_counter() - t0)
    write_result(config, {
        "rtl_db_accesses_per_s": run["accesses_per_s"],
        "rtl_db_accesses": run["accesses"],
        "rtl_db_cycles": run["cycles"],
        "rtl_db_lost_writes": run["lost_writes"],
        "python_per_clock_cycles_per_s": round(per_clock),
    })

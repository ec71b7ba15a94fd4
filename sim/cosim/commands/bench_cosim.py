"""Simulator side of ``mkclean bench``'s co-simulation figures, from one simulation: the
kernel model's db workload through the RTL MMU (accesses/s), and the same simulator with
Python woken on every clock edge and doing nothing else (cycles/s).

The machines this runs on are shared, and a figure can halve from one minute to the next:
the two are measured in turns, ``repeats`` times each, and the best of each is the figure
(the least disturbed run); every run is reported too."""

import time

import cocotb
from cocotb.triggers import FallingEdge

from ..build import params_from_env
from ..jobs import job_config, write_result
from ..rtl_backend import fresh_hardware
from .run import execute


@cocotb.test()
async def measure(dut):
    from cocotb.task import bridge
    config = job_config()
    params = params_from_env()
    cycles = config["clock_cycles"]
    runs, per_clock = [], []
    hw = None
    for _ in range(config.get("repeats", 1)):
        hw = await fresh_hardware(dut, params, hw)
        runs.append(await bridge(execute)(hw, config["job"]))
        t0 = time.perf_counter()
        for _ in range(cycles):
            await FallingEdge(dut.clk)
        if cycles:
            per_clock.append(round(cycles / (time.perf_counter() - t0)))
    best = max(runs, key=lambda run: run["accesses_per_s"])
    write_result(config, {
        "rtl_db_accesses_per_s": best["accesses_per_s"],
        "rtl_db_accesses_per_s_runs": [run["accesses_per_s"] for run in runs],
        "rtl_db_accesses": best["accesses"],
        "rtl_db_cycles": best["cycles"],
        "rtl_db_lost_writes": max(run["lost_writes"] for run in runs),
        "python_per_clock_cycles_per_s": max(per_clock, default=None),
        "python_per_clock_cycles_per_s_runs": per_clock,
    })

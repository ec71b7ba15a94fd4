"""Simulator side of ``mkclean run --backend rtl``: the kernel model and a workload on the
RTL MMU, with invariant 2 checked on the RTL's TLB after every kernel step; one job, or
several in one simulation (tests/test_cosim.py)."""

import cocotb

from ...kernel import Kernel
from ...kernel.invariants import run_checked
from ...waves.options import DEFAULT_WINDOW
from ...workloads import WORKLOADS
from ..build import params_from_env
from ..jobs import JobProgress, job_config, write_result
from ..rtl_backend import fresh_hardware


def execute(hw, job, progress=None):
    """Run one workload on ``hw`` (in the kernel's thread); returns the run's JSON."""
    k = Kernel(hw=hw, **job["kernel"])
    failure_cycle = None

    def failed():
        # The batch that took the TLB snapshot has just ended: its window of waves holds
        # the kernel's last actions and the stale entry.
        nonlocal failure_cycle
        failure_cycle = hw.rtl.cycle

    try:
        workload = WORKLOADS[job["workload"]](k, job["seed"], job["accesses"], **job["options"])

        def total(n):                   # JobProgress takes the accesses done so far
            progress(workload.done)
        result, _ = run_checked(k, workload, total if progress else None,
                                on_violation=failed)
        result["backend"] = "rtl"
        if failure_cycle is None and result.get("lost_pages"):
            failure_cycle, result["failure_window"] = lost_store_cycles(k, hw, result)
        result["failure_cycle"] = failure_cycle
        return result
    finally:
        k.close()


def lost_store_cycles(k, hw, result):
    """Where a lost write's waves are: around the last batch that stored to the first lost
    page (the lost store is one of its stores; the page was cleaned before it), with a
    window that covers the whole batch. (None, None) if that page has left memory."""
    name, index = result["lost_pages"][0]
    page = k.page(k.files[name], index) if name in k.files else None
    cycles = hw.last_store.get(page.paddr >> 12) if page is not None else None
    if cycles is None:
        return None, None
    result["failure_paddr"] = page.paddr
    first, last = cycles
    return (first + last) // 2, max(DEFAULT_WINDOW, (last - first) // 2 + 100)


@cocotb.test()
async def run_workloads(dut):
    """One job or several (``jobs``), each on a freshly reset MMU and a new memory."""
    from cocotb.task import bridge
    config = job_config()
    params = params_from_env()
    progress = JobProgress(config)
    results = []
    hw = None
    for job in config.get("jobs", [config]):
        hw = await fresh_hardware(dut, params, hw)
        results.append(await bridge(execute)(hw, job, progress))
    write_result(config, {"results": results} if "jobs" in config else results[0])

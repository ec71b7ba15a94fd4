"""The kernel's story on the rtl backend: a store to a clean page of a shared writable
file mapping (its fault, the kernel's answer, the retry) and the msync that cleans and
writes the page, with the kernel's events on the testbench's debug port when the run is
traced (tests/test_kernel_events.py reads them from the trace); and a flood of more
events than fit between two clock edges.

What the kernel saw (the page's addresses, the RTL's counters) goes, as JSON, to the file
MKCLEAN_KERNEL_EVENTS_OUT names: the test compares a traced run's with an untraced one's.
"""

import json
import os

import cocotb
from cocotb.triggers import FallingEdge

from mkclean.sim.cosim.build import params_from_env
from mkclean.sim.cosim.rtl_backend import fresh_hardware
from mkclean.sim.hw.seam import KernelEvent
from mkclean.sim.kernel import MAP_SHARED, MS_SYNC, PAGE_SIZE, PROT_READ, PROT_WRITE, Kernel


def story(hw):
    """The scenario, kernel code in the kernel's thread; returns what the test checks."""
    k = Kernel(hw=hw)
    try:
        f = k.create_file("story", PAGE_SIZE)
        p = k.spawn()
        va = p.mmap(PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, file=f)
        p.load(va, 8)                   # a read fault maps the page read-only and clean
        store_batch = hw.batches + 1    # the store's first batch: the one that faults
        p.store(va + 8, b"dirty")       # TRAP, DO_WP_PAGE, SET_PAGE_DIRTY; the retry
        p.msync(va, PAGE_SIZE, MS_SYNC)  # PAGE_MKCLEAN, SFENCE_VMA, WRITEBACK
        page = k.page(f, 0)
        # The counters' hand-over shows the msync's events (nothing after it would).
        counters = hw.counters()
        return {"va": va, "store": va + 8, "paddr": page.paddr, "store_batch": store_batch,
                "counters": counters, "traps": k.counters["traps"]}
    finally:
        k.close()


@cocotb.test()
async def kernel_story(dut):
    from cocotb.task import bridge
    hw = await fresh_hardware(dut, params_from_env())
    seen = await bridge(story)(hw)
    with open(os.environ["MKCLEAN_KERNEL_EVENTS_OUT"], "w") as out:
        json.dump(seen, out)


#: How many events the flood test sends in one hand-over: more than fit (4000, then MORE).
FLOOD = 4100


@cocotb.test()
async def kernel_event_flood(dut):
    """More events than fit between two clock edges: the trace shows the first ones and
    a MORE event with how many were left out."""
    from cocotb.task import bridge
    hw = await fresh_hardware(dut, params_from_env())

    def flood():
        for i in range(FLOOD):
            hw.kernel_event(KernelEvent.WRITEBACK, i << 12)
        hw.counters()

    await bridge(flood)()
    # The simulation goes on to the next edge, for the trace to hold the NONE after them.
    await FallingEdge(dut.clk)

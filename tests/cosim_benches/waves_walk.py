"""A directed run of the batch top for the waveform tests (tests/test_waves_draw.py): one
batch of two loads, a mapped page (the walker walks: IDLE, WALK, back to IDLE; the
answer is its paddr) then an unmapped one (a page fault, the batch stops), and the
kernel's debug port showing one event between two clock edges.

What the test checks the trace against (the cycle the batch starts, the answers, the
event's cycle) goes, as JSON, to the file MKCLEAN_WAVES_WALK_OUT names."""

import json
import os

import cocotb
from cocotb.triggers import ClockCycles, FallingEdge
from cocotb.utils import get_sim_time

from mkclean.sim.cosim.batch_driver import BatchRtlMmu, access_op, split
from mkclean.sim.cosim.build import CLOCK_HALF_PERIOD_NS, params_from_env
from mkclean.sim.cosim.stimulus import LEAF_RW, PageTables
from mkclean.sim.hw.seam import KernelEvent
from mkclean.sim.model.memory import Memory

MAPPED = 0x40_0000
PADDR = 0x10_0000
UNMAPPED = 0x80_0000
#: Cycles of nothing before the event, between it and the batch, after the batch.
QUIET = 30


def cycle_now():
    return int(get_sim_time("ps")) // (2 * CLOCK_HALF_PERIOD_NS * 1000)


@cocotb.test()
async def walk_then_fault(dut):
    params = params_from_env()
    mem = Memory(params["phys_size"])
    pt = PageTables(mem, 0x1000, 0x2000)
    pt.map(MAPPED, PADDR, LEAF_RW)
    rtl = BatchRtlMmu(dut, mem)
    await rtl.start()
    await rtl.set_csr(mode=8, ppn=pt.root_ppn, adue=1)
    ops = [access_op(MAPPED + 0x10, 0), access_op(UNMAPPED, 0)]
    rtl.write_ops(0, *split(ops))
    # Quiet cycles around each part, so that a window about any of them stays inside.
    await ClockCycles(dut.clk, QUIET)
    await FallingEdge(dut.clk)
    event_cycle = cycle_now()
    await rtl.show_kernel_events([(KernelEvent.DO_FAULT, UNMAPPED)])
    await ClockCycles(dut.clk, QUIET)
    await FallingEdge(dut.clk)
    start = cycle_now()
    answers = await rtl.run(0, len(ops))
    end = cycle_now()
    await ClockCycles(dut.clk, QUIET)
    with open(os.environ["MKCLEAN_WAVES_WALK_OUT"], "w") as out:
        json.dump({"event_cycle": event_cycle, "batch_cycle": start, "end_cycle": end,
                   "answers": answers, "paddr": PADDR + 0x10, "unmapped": UNMAPPED}, out)

"""A short directed run of the batch top for the GTKWave save file's tests
(tests/test_waves_gtkw.py): its trace must hold every walker state, the causes a walk
answers, and every kernel event on the testbench's debug port.

- a load of a page whose PTE has A and D: IDLE, WALK, LEAF, IDLE;
- a store to a page without A and D (Svadu): WALK, LEAF, AD_READ, AD_WRITE;
- a store to a read-only page: a STORE_PAGE fault; a load of an unmapped page: LOAD_PAGE;
- every KernelEvent, one a cycle at its falling edge, with an address made of its value
  (``KERNEL_ADDR + value``), then NONE again.
"""

import cocotb
from cocotb.triggers import FallingEdge, Timer

from mkclean.sim.cosim.batch_driver import BatchRtlMmu, access_op, split
from mkclean.sim.cosim.build import params_from_env
from mkclean.sim.cosim.stimulus import LEAF_RW, PTE_R, PTE_V, PTE_W, PageTables
from mkclean.sim.hw.seam import KernelEvent
from mkclean.sim.model.memory import Memory

VA = 0x40_0000
PA = 0x10_0000
UNMAPPED = 0x80_0000
#: Every kernel event's address is this plus its value: the test knows which is which.
KERNEL_ADDR = 0x3f_c000_0000
LOAD, STORE = 0, 1


@cocotb.test()
async def walks_faults_and_kernel_events(dut):
    params = params_from_env()
    mem = Memory(params["phys_size"])
    pt = PageTables(mem, 0x1000, 0x2000)
    pt.map(VA, PA, LEAF_RW)
    pt.map(VA + 0x1000, PA + 0x1000, PTE_V | PTE_R | PTE_W)     # no A, no D
    pt.map(VA + 0x2000, PA + 0x2000, PTE_V | PTE_R)             # read only
    rtl = BatchRtlMmu(dut, mem)
    await rtl.start()
    await rtl.set_csr(mode=8, ppn=pt.root_ppn, adue=1)
    # A batch ends at its first fault: one batch a fault.
    for ops, want in (([access_op(VA + 8, LOAD), access_op(VA + 0x1010, STORE)],
                       [PA + 8, PA + 0x1010]),
                      ([access_op(VA + 0x2000, STORE)], [-15]),
                      ([access_op(UNMAPPED, LOAD)], [-13])):
        rtl.write_ops(0, *split(ops))
        assert await rtl.run(0, len(ops)) == want
    for event in KernelEvent:
        await FallingEdge(dut.clk)
        dut.kernel_event.value = int(event)
        dut.kernel_addr.value = KERNEL_ADDR + int(event)
        await Timer(1, "ps")
    dut.kernel_event.value = int(KernelEvent.NONE)
    dut.kernel_addr.value = 0
    await FallingEdge(dut.clk)
    await FallingEdge(dut.clk)

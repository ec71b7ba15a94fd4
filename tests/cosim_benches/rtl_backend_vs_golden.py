"""The rtl backend of the seam against the golden backend: one synchronous program (the
shape of kernel code: page tables through write_pte/cas_pte, CSRs, sfence, accesses and
batches with faults in them) runs on both and must see the same results, with the
page-table mirror checked against memory after every batch; and the same program with a
planted bug in the mirror's upkeep, which that check must catch. Its physical addresses
are from the build's phys_base (tests/test_rtl_phys_base.py runs it at 0x8000_0000)."""

import cocotb

from mkclean.sim.cosim.batch_driver import MirrorMismatch
from mkclean.sim.cosim.build import params_from_env
from mkclean.sim.cosim.rtl_backend import RtlHardware
from mkclean.sim.cosim.stimulus import LEAF_RW, PTE_A, PTE_D, PTE_R, PTE_U, PTE_V, PTE_W, pte
from mkclean.sim.hw.seam import Kind, Trap
from mkclean.sim.model.backend import GoldenHardware

ROOT, L1, L0 = 0x1000, 0x2000, 0x3000     # offsets from the base, as every address here
VA = 0x40_0000


def program(hw):
    """Kernel-shaped code over the seam; returns everything it saw."""
    seen = []
    base = hw.phys_base
    frame = base >> 12
    root, l1, l0 = base + ROOT, base + L1, base + L0
    hw.write_pte(root + 0 * 8, pte(l1 >> 12, PTE_V))
    hw.write_pte(l1 + 2 * 8, pte(l0 >> 12, PTE_V))
    user = LEAF_RW | PTE_U
    for i in range(8):
        hw.write_pte(l0 + i * 8, pte(frame + 0x100 + i, user if i != 5 else 0))
    hw.set_csr(mode=8, asid=3, ppn=root >> 12, priv=0, adue=True)
    seen.append(hw.access(VA + 0x10, Kind.STORE, b"hello"))
    seen.append(hw.access(VA + 0x10, Kind.LOAD, None, 5))
    # A batch running into a fault at its fourth access (page 5 is not mapped).
    batch = [(VA + i * 4096 + 8, Kind.STORE, bytes([i]) * 8, 0) for i in (1, 2, 3, 5, 6)]
    seen.append(hw.access_batch(batch))
    # mkclean of page 1: write-protect and clean, then flush: the next store must fault.
    addr = l0 + 1 * 8
    old = hw.read_pte(addr)
    seen.append(hw.cas_pte(addr, old, old & ~(PTE_W | PTE_D)))
    seen.append(hw.cas_pte(addr, old, 0))                  # a failing compare
    hw.sfence_vma(VA + 0x1000, 3)
    seen.append(hw.access(VA + 0x1000, Kind.STORE, b"x"))
    # Svadu: a clean writable PTE gets D from the hardware.
    hw.write_pte(addr, pte(frame + 0x101, PTE_V | PTE_R | PTE_W | PTE_A | PTE_U))
    hw.sfence_vma(VA + 0x1000, 3)
    seen.append(hw.access(VA + 0x1000, Kind.STORE, b"y"))
    seen.append(hw.read_pte(addr))
    seen.append(hw.read(base + 0x101000, 16))
    seen.append(hw.read(base + 0x102008, 8))
    # A page table reached through a user mapping of its own frame: a store through it
    # rewrites page 6's PTE, and the walker must see the new one (on the RTL, the
    # page-table mirror must not keep the old).
    hw.write(base + 0x120000, b"new page")
    seen.append(hw.access(VA + 6 * 4096, Kind.LOAD, None, 8))
    hw.write_pte(l0 + 7 * 8, pte(l0 >> 12, LEAF_RW | PTE_U))
    hw.sfence_vma(VA + 7 * 4096, 3)
    moved = pte(frame + 0x120, LEAF_RW | PTE_U).to_bytes(8, "little")
    seen.append(hw.access(VA + 7 * 4096 + 6 * 8, Kind.STORE, moved))
    hw.sfence_vma(VA + 6 * 4096, 3)
    seen.append(hw.access(VA + 6 * 4096, Kind.LOAD, None, 8))
    return seen


@cocotb.test()
async def rtl_backend_matches_golden(dut):
    from cocotb.task import bridge
    params = params_from_env()
    rtl = RtlHardware(dut, params, check_mirror=True)
    await rtl.start()
    got = await bridge(program)(rtl)
    golden = GoldenHardware(phys_size=params["phys_size"], tlb_entries=params["tlb_entries"],
                            walk_cache_entries=params["walk_cache_entries"],
                            phys_base=params["phys_base"])
    want = program(golden)
    assert got == want, f"rtl {got}\ngolden {want}"
    assert isinstance(got[2][1], Trap) and len(got[2][0]) == 3, got[2]
    assert isinstance(got[5], Trap) and got[5].cause == 15
    assert got[-1] == b"new page" != got[-3], got[-3:]
    entries = await bridge(rtl.tlb_entries)()
    assert [e for e in entries if e.valid] == [e for e in golden.mmu.tlb.entries if e.valid]


@cocotb.test()
async def mirror_check_catches_a_touch_that_does_nothing(dut):
    """The planted bug: kernel writes to a mirrored page-table frame never reach the
    mirror (touch() does nothing). The check after the next batch must say where."""
    from cocotb.task import bridge
    params = params_from_env()
    rtl = RtlHardware(dut, params, check_mirror=True)
    rtl.rtl.touch = lambda paddr, n: None
    await rtl.start()
    try:
        await bridge(program)(rtl)
    except MirrorMismatch as e:
        message = str(e)
    else:
        raise AssertionError("a mirror that misses the kernel's PTE writes went unnoticed")
    l0 = params["phys_base"] + L0
    assert f"frame {l0 >> 12:#x}" in message and "line 0" in message, message
    assert f"(paddr {l0:#x})" in message, message
    assert "holds 0x" in message and "memory holds 0x" in message, message

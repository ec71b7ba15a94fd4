"""The batch top (hdl/batch.py) against the golden model: random batches of translations,
sfences and TLB snapshots over random page tables that change between batches, with the
page-table mirror on and off. The top must stop right after the first fault, and agree
with the model on every response, every snapshot, the TLB and memory."""

import dataclasses
import random
import time

import cocotb

from mkclean.sim.cosim.batch_driver import (SNAPSHOT_OP, BatchRtlMmu, access_op, fence_op,
                                             split)
from mkclean.sim.cosim.build import params_from_env
from mkclean.sim.cosim.stimulus import LEAF_RW, PTE_A, PTE_R, PTE_V, PTE_W, PageTables
from mkclean.sim.model.memory import Memory
from mkclean.sim.model.mmu import GoldenMMU

VA = 0x40_0000
PAGES = 64
FLAGS = (LEAF_RW, LEAF_RW, PTE_V | PTE_R | PTE_A, PTE_V | PTE_R | PTE_W | PTE_A,
         PTE_V | PTE_R | PTE_W, 0)


def random_op(rng):
    """(queue entry, what the golden model does with it)."""
    roll = rng.random()
    if roll < 0.03:
        vaddr = VA + rng.randrange(PAGES) * 4096 if rng.random() < 0.7 else None
        asid = rng.choice((None, None, 0, 1))
        return fence_op(vaddr, asid), ("sfence", vaddr, asid)
    if roll < 0.05:
        return SNAPSHOT_OP, ("snapshot",)
    vaddr = VA + rng.randrange(PAGES) * 4096 + rng.randrange(512) * 8
    kind = rng.choice((0, 0, 0, 1))
    return access_op(vaddr, kind), ("translate", vaddr, kind)


@cocotb.test()
async def batches_match_golden(dut):
    params = params_from_env()
    seed = int(cocotb.RANDOM_SEED)
    rng = random.Random(seed)
    rtl_mem, golden_mem = Memory(params["phys_size"]), Memory(params["phys_size"])
    leaves = []
    for mem in (rtl_mem, golden_mem):
        pt = PageTables(mem, 0x1000, 0x2000)
        flag_rng = random.Random(seed)
        leaves = [pt.map(VA + i * 4096, 0x10_0000 + i * 4096, flag_rng.choice(FLAGS))
                  for i in range(PAGES)]
    rtl = BatchRtlMmu(dut, rtl_mem, check_mirror=True)    # the mirror against memory
    golden = GoldenMMU(golden_mem, tlb_entries=params["tlb_entries"],
                       walk_cache_entries=params["walk_cache_entries"])
    await rtl.start()
    await rtl.set_csr(mode=8, ppn=1, adue=1)
    golden.set_csr(mode=8, ppn=1, adue=1)
    depth = params["batch_depth"]
    total = 0
    t0 = time.perf_counter()
    for batch in range(200):
        # Latency 0 lets the mirror answer the walker; 1 sends every PTE read to Python.
        rtl.ram.latency = rng.choice((0, 0, 1))
        n = rng.randrange(1, depth + 1)
        ops, meaning = zip(*(random_op(rng) for _ in range(n)))
        rtl.write_ops(0, *split(ops))
        first = rng.randrange(n)
        got = await rtl.run(first, n)
        want = []
        for what in meaning[first:]:
            if what[0] == "sfence":
                _, vaddr, asid = what
                golden.sfence(vaddr is not None, vaddr or 0, asid is not None, asid or 0)
                want.append(0)
            elif what[0] == "snapshot":
                snapshot = [dataclasses.replace(e) for e in golden.tlb.entries]
                want.append(0)
            else:
                r = golden.translate(*what[1:])
                want.append(-r.cause if r.fault else r.paddr)
                if r.fault:
                    break
        # The cycle names where a replay's window of waves goes (tests/test_rtl_batch.py).
        context = f"seed {seed}, batch {batch}, cycle {rtl.cycle}: {meaning[first:]}"
        assert got == want, f"{context}\nrtl {got}\ngolden {want}"
        if "snapshot" in {what[0] for what in meaning[first:first + len(got)]}:
            entries = rtl.tlb_snapshot(params["tlb_entries"])
            assert entries == snapshot, f"{context}\nrtl {entries}\ngolden {snapshot}"
        total += len(got)
        if rng.random() < 0.3:
            # Kernel-side PTE changes between batches (then a fence, as a kernel would):
            # the mirror must not answer with the old PTE.
            for _ in range(rng.randrange(1, 4)):
                addr = rng.choice(leaves)
                value = rtl_mem.read64(addr) & ~0x3FF | rng.choice(FLAGS)
                for mem in (rtl_mem, golden_mem):
                    mem.write64(addr, value)
                rtl.touch(addr, 8)
            rtl.sync_mirror()
            rtl.write_ops(0, *split([fence_op()]))
            await rtl.run(0, 1)
            golden.sfence(False, 0, False, 0)
    elapsed = time.perf_counter() - t0
    assert rtl.mirror, "the walker's frames were never mirrored"
    assert rtl_mem.read(0, 1 << 20) == golden_mem.read(0, 1 << 20)
    dut._log.info(f"{total} operations in batches: {total / elapsed:,.0f}/s, "
                  f"{len(rtl.mirror)} frames mirrored")

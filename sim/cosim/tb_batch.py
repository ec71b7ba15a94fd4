"""The batch top (hdl/batch.py) against the golden model: random batches over random page
tables; the top must stop right after the first fault, and agree on every response, on the
TLB and on memory."""

import dataclasses
import random
import time

import cocotb

from ..model.memory import Memory
from ..model.mmu import GoldenMMU, Response
from .driver import BatchRtlMmu
from .runner import params_from_env
from .stimulus import LEAF_RW, PTE_A, PTE_R, PTE_V, PTE_W, PageTables

VA = 0x40_0000


@cocotb.test()
async def batches_match_golden(dut):
    params = params_from_env()
    seed = int(cocotb.RANDOM_SEED)
    rng = random.Random(seed)
    rtl_mem, golden_mem = Memory(params["phys_size"]), Memory(params["phys_size"])
    pages = 64
    for mem in (rtl_mem, golden_mem):
        pt = PageTables(mem, 0x1000, 0x2000)
        flag_rng = random.Random(seed)
        for i in range(pages):
            flags = flag_rng.choice((LEAF_RW, LEAF_RW, PTE_V | PTE_R | PTE_A,
                                     PTE_V | PTE_R | PTE_W | PTE_A, PTE_V | PTE_R | PTE_W, 0))
            pt.map(VA + i * 4096, 0x10_0000 + i * 4096, flags)
    rtl = BatchRtlMmu(dut, rtl_mem)
    golden = GoldenMMU(golden_mem, tlb_entries=params["tlb_entries"],
                       walk_cache_entries=params["walk_cache_entries"])
    await rtl.start()
    await rtl.set_csr(mode=8, ppn=1, adue=1)
    golden.set_csr(mode=8, ppn=1, adue=1)
    depth = params["batch_depth"]
    total = 0
    t0 = time.perf_counter()
    for _ in range(200):
        n = rng.randrange(1, depth + 1)
        requests = [(VA + rng.randrange(pages) * 4096 + rng.randrange(512) * 8,
                     rng.choice((0, 0, 0, 1))) for _ in range(n)]
        rtl.write_requests(requests)
        first = rng.randrange(n)
        got = [Response(True, -r, None, None) if r < 0 else Response(False, None, r, None)
               for r in await rtl.run(first, n)]
        want = []
        for vaddr, kind in requests[first:]:
            r = golden.translate(vaddr, kind)
            want.append(dataclasses.replace(r, tval=None))    # the queue keeps no tval
            if r.fault:
                break
        assert got == want, (f"seed {seed}: batch {requests[first:]}\n"
                             f"rtl {got}\ngolden {want}")
        total += len(got)
        if rng.random() < 0.2:
            await rtl.sfence()
            golden.sfence(False, 0, False, 0)
    elapsed = time.perf_counter() - t0
    assert rtl_mem.read(0, 1 << 20) == golden_mem.read(0, 1 << 20)
    dut._log.info(f"{total} translations in batches: {total / elapsed:,.0f}/s")

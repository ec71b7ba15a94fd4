"""The race the locked A/D update exists for, on the RTL with the kernel model.

A shared file page is mapped writable and dirty; reclaim's aging cleared its A bit, so
the next store makes the walker update A. Between the walker's read of the PTE and its A/D
write, another hart writes the page back: page_mkclean write-protects and cleans the PTE
and the page is clean. With the locked compare-and-write the walker sees the change, walks
again and takes a store page fault, the kernel marks the page dirty, and msync writes the
store. A walker that writes A/D with a plain store (ad_lock=False) puts W and D back on a
page the kernel believes clean: the store lands, nobody knows the page is dirty, and msync
loses it. Both builds run this same test; the result says which happened.
"""

import cocotb

from mkclean.sim.cosim.build import params_from_env
from mkclean.sim.cosim.jobs import job_config, write_result
from mkclean.sim.cosim.rtl_backend import RtlHardware
from mkclean.sim.kernel import MAP_SHARED, MS_SYNC, PROT_READ, PROT_WRITE, Kernel
from mkclean.sim.kernel.pagecache import find_get_page
from mkclean.sim.kernel.pgtable import pte_offset_map
from mkclean.sim.kernel.rmap import folio_referenced


def race(hw, params):
    k = Kernel(policy="writenotify", ad="svadu", hw=hw, phys_size=params["phys_size"],
               tlb_entries=params["tlb_entries"],
               walk_cache_entries=params["walk_cache_entries"])
    try:
        f = k.create_file("race", 4096)
        p = k.spawn()
        va = p.mmap(4096, PROT_READ | PROT_WRITE, MAP_SHARED, file=f)
        p.store(va, b"first.")               # write fault: writable, dirty, PageDirty
        page = find_get_page(f, 0)
        ptep = pte_offset_map(p.mm, va)
        assert folio_referenced(k, page) == 1   # A cleared by reclaim's aging
        # riscv's ptep_clear_flush_young does not flush; we do, so that the store walks.
        k.hw.sfence_vma()
        faults_before = sum(k.stats["faults"].values())
        hw.on_ad_update(ptep, lambda: k.writeback())
        p.store(va, b"second")
        faults = sum(k.stats["faults"].values()) - faults_before
        pte_dirty, page_dirty = p.pte(va).d, k.page_dirty(f, 0)
        p.msync(va, 4096, MS_SYNC)
        return {
            "on_disk": f.on_disk(0, 6).decode(),
            "page_dirty_after_store": page_dirty,
            "pte_dirty_after_store": pte_dirty,
            "faults_on_second_store": faults,
            "walks": hw.counters()["walks"],
        }
    finally:
        k.close()


@cocotb.test()
async def mkclean_during_ad_update(dut):
    from cocotb.task import bridge
    params = params_from_env()
    hw = RtlHardware(dut, params)
    await hw.start()
    result = await bridge(race)(hw, params)
    write_result(job_config(), result)

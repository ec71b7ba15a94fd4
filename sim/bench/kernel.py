"""The kernel model's figures for ``mkclean bench``.

- The golden backend's speed on the ``db`` workload (accesses per second; target 200k/s).
- The cost of page_mkclean for a page with 1, 8 and 64 mappings, and for one page in
  address spaces of 1k and 100k mapped pages: it grows with the mappings of the page (the
  reverse map), not with the address space; next to it, what a scan of every mapped page
  (the hwdirty policy's way of finding D bits) costs in the same address spaces.
- The three policies side by side on the same workload: faults, flushes, dirty pages
  known against really dirty.
"""

import statistics
import time

from ..kernel import Kernel
from ..kernel.constants import MAP_POPULATE, MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE
from ..kernel.locking import lock_page, unlock_page
from ..kernel.policies import HwDirty
from ..kernel.rmap import folio_mkclean
from ..kernel.writeback import WritebackControl
from ..workloads import make_workload

RW = PROT_READ | PROT_WRITE


def _db_speed(quick: bool) -> dict:
    accesses = 200_000 if quick else 1_000_000
    rates = []
    for _ in range(1 if quick else 3):
        k = Kernel()
        try:
            r = make_workload("db", k, 1, accesses, samples=0).run()
        finally:
            k.close()
        if r["lost_writes"] or r["mismatches"]:
            raise RuntimeError(f"db lost writes during the benchmark: {r}")
        rates.append(r["accesses_per_s"])
    return {"accesses_per_s": max(rates), "runs": rates, "accesses": accesses,
            "faults": r["faults_total"], "command": f"mkclean run --workload db --accesses "
                                                   f"{accesses} --seed 1 --no-progress"}


def _time_mkclean(k, page, redirty, repeat: int) -> dict:
    """Mean cost of one page_mkclean of ``page``, re-dirtied by ``redirty()`` between runs."""
    times = []
    c = k.counters
    ptes0 = sf0 = 0
    clock = time.perf_counter
    for _ in range(repeat):
        redirty()
        ptes_before, sf_before = c["mkclean_ptes"], c["sfences"]
        t = clock()
        lock_page(k, page)
        folio_mkclean(k, page)
        unlock_page(k, page)
        times.append(clock() - t)
        ptes0 += c["mkclean_ptes"] - ptes_before
        sf0 += c["sfences"] - sf_before
    return {"us": round(statistics.median(times) * 1e6, 1),
            "ptes_visited": round(ptes0 / repeat, 1),
            "sfences": round(sf0 / repeat, 1)}


def _mkclean_by_mappings(quick: bool) -> dict:
    out = {}
    for n in (1, 8, 64):
        k = Kernel(phys_size=16 << 20)
        try:
            f = k.create_file("shared", 4 * PAGE_SIZE)
            procs = [k.spawn() for _ in range(n)]
            vas = [p.mmap(4 * PAGE_SIZE, RW, MAP_SHARED, file=f) for p in procs]

            def redirty():
                for p, va in zip(procs, vas):
                    p.store(va + 16, b"dirty")

            redirty()
            page = k.page(f, 0)
            r = _time_mkclean(k, page, redirty, 10 if quick else 30)
            out[str(n)] = r
        finally:
            k.close()
    for n, r in out.items():
        r["us_per_mapping"] = round(r["us"] / int(n), 2)
    return out


def _mkclean_by_address_space(quick: bool) -> dict:
    out = {}
    sizes = (1_000, 10_000) if quick else (1_000, 100_000)
    for n in sizes:
        k = Kernel(phys_size=((n * PAGE_SIZE + (32 << 20)) + (1 << 20) - 1) & ~((1 << 20) - 1))
        try:
            f = k.create_file("big", n * PAGE_SIZE)
            p = k.spawn()
            t = time.perf_counter()
            va = p.mmap(n * PAGE_SIZE, RW, MAP_SHARED | MAP_POPULATE, file=f)
            populate_s = time.perf_counter() - t
            target = n // 2
            page = k.page(f, target)

            def redirty():
                p.store(va + target * PAGE_SIZE, b"dirty")

            r = _time_mkclean(k, page, redirty, 10 if quick else 30)
            # What finding dirty pages costs without write faults: a D-bit scan of every
            # mapped page through the reverse map (the hwdirty policy's writeback).
            t = time.perf_counter()
            HwDirty().writeback_prepare(k, f, WritebackControl())
            r["scan_all_ms"] = round((time.perf_counter() - t) * 1e3, 1)
            r["mapped_pages"] = n
            r["populate_s"] = round(populate_s, 2)
            out[str(n)] = r
        finally:
            k.close()
    return out


def _policies(quick: bool) -> dict:
    accesses = 100_000 if quick else 500_000
    opts = dict(msync_every=10**12, writeback_every=10_000)   # the flusher alone cleans
    out = {"workload": f"db, {accesses:,} accesses, seed 1, a flusher pass every 10k "
                       f"accesses, no msync until the end", "by_policy": {}}
    for policy in ("writenotify", "legacy", "hwdirty"):
        for ad in ("svadu", "svade"):
            k = Kernel(policy=policy, ad=ad)
            try:
                r = make_workload("db", k, 1, accesses, **opts).run()
            finally:
                k.close()
            out["by_policy"][f"{policy}/{ad}"] = {
                "faults": r["faults_total"], "faults_by_cause": r["faults"],
                "sfences": r["sfences"], "mkclean_ptes": r["mkclean_ptes"],
                "pte_scans": r["pte_scans"], "writeback_pages": r["writeback_pages"],
                "dirty_known_mean": r["dirty_known_mean"],
                "dirty_real_mean": r["dirty_real_mean"], "lost_writes": r["lost_writes"],
                "accesses_per_s": r["accesses_per_s"]}
    return out


def kernel_bench(quick: bool) -> dict:
    """The kernel model's figures, JSON-able."""
    return {
        "db": _db_speed(quick),
        "mkclean_by_mappings": _mkclean_by_mappings(quick),
        "mkclean_by_address_space": _mkclean_by_address_space(quick),
        "policies": _policies(quick),
    }


def format_kernel_bench(d) -> str:
    db = d["db"]
    lines = [
        "Kernel model (golden backend)",
        f"  db workload: {db['accesses_per_s']:,} accesses/s (best of {db['runs']}; target "
        f"200,000)  [{db['command']}]",
        "  page_mkclean of one page          us/call   us/mapping   PTEs visited   sfences",
    ]
    for n, r in d["mkclean_by_mappings"].items():
        lines.append(f"    {n:>3} mapping(s)                 {r['us']:>8}   {r['us_per_mapping']:>10}"
                     f"   {r['ptes_visited']:>12}   {r['sfences']:>7}")
    lines.append("  one page in an address space of   us/call   PTEs visited   "
                 "scan of all mapped pages (ms)")
    for n, r in d["mkclean_by_address_space"].items():
        lines.append(f"    {int(n):>7,} mapped pages          {r['us']:>8}   {r['ptes_visited']:>12}"
                     f"   {r['scan_all_ms']:>10}")
    p = d["policies"]
    lines.append(f"  policies side by side ({p['workload']})")
    lines.append("    policy/ad              faults   sfences   mkclean PTEs   PTE scans   "
                 "written   dirty known/real (mean)")
    for name, r in p["by_policy"].items():
        lines.append(f"    {name:<20} {r['faults']:>8} {r['sfences']:>9} {r['mkclean_ptes']:>14}"
                     f" {r['pte_scans']:>11} {r['writeback_pages']:>9}   "
                     f"{r['dirty_known_mean']} / {r['dirty_real_mean']}")
    return "\n".join(lines)


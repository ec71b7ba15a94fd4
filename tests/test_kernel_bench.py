"""`mkclean bench`'s kernel figures: their shape, and the counts that do not depend on speed."""

import json

from mkclean.sim.bench.kernel import format_kernel_bench, kernel_bench


def test_kernel_bench_quick():
    d = kernel_bench(quick=True)
    json.dumps(d)
    assert d["db"]["accesses_per_s"] > 0 and "mkclean run --workload db" in d["db"]["command"]
    # page_mkclean visits (and flushes) one PTE per mapping of the page ...
    for n, r in d["mkclean_by_mappings"].items():
        assert r["ptes_visited"] == int(n) and r["sfences"] == int(n)
    # ... and one PTE whatever the size of the address space around it.
    for r in d["mkclean_by_address_space"].values():
        assert r["ptes_visited"] == 1 and r["sfences"] == 1
    pol = d["policies"]["by_policy"]
    assert set(pol) == {f"{p}/{a}" for p in ("writenotify", "legacy", "hwdirty")
                        for a in ("svadu", "svade")}
    assert all(r["lost_writes"] == 0 for r in pol.values())
    wn, legacy = pol["writenotify/svadu"], pol["legacy/svadu"]
    assert wn["dirty_known_mean"] == wn["dirty_real_mean"]
    assert legacy["dirty_known_mean"] < legacy["dirty_real_mean"]
    text = format_kernel_bench(d)
    assert "page_mkclean" in text and "writenotify/svadu" in text

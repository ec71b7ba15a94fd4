"""mkclean racing the walker's A/D update, on the RTL with the kernel model
(tests/cosim_benches/ad_race.py): the locked compare-and-write loses nothing; the
test-only unlocked walker loses the store, which shows the test can fail."""

from mkclean.sim.cosim import jobs

#: the RTL runs here check the page-table mirror against memory after every batch
CHECK = {"MKCLEAN_CHECK_MIRROR": "1"}


def race(ad_lock):
    return jobs.run_job("cosim_benches.ad_race", {}, {"batch_depth": 64, "ad_lock": ad_lock},
                        env=CHECK)


def test_locked_ad_update_loses_nothing():
    r = race(True)
    assert r["faults_on_second_store"] == 1, r      # the re-walk found W=0
    assert r["page_dirty_after_store"], r
    assert r["on_disk"] == "second", r


def test_unlocked_ad_update_loses_the_store():
    r = race(False)
    assert r["faults_on_second_store"] == 0, r      # W and D came back from the walker
    assert r["pte_dirty_after_store"] and not r["page_dirty_after_store"], r
    assert r["on_disk"] == "first.", r              # msync wrote nothing: the store is lost


def test_invariant_2_check_on_the_rtl_tlb_can_fail():
    out = jobs.run_job("cosim_benches.missing_flush", {},
                       {"phys_size": 16 << 20, "batch_depth": 64}, env=CHECK)
    assert out["False"] == [], out                   # the real kernel flushes
    assert out["True"] and "lets a store through" in out["True"][0], out

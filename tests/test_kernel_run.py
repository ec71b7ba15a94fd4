"""The workloads and `mkclean run`: no lost write, no outcome the oracle disagrees with, on
every policy and A/D mode; the JSON; bad input. Random seeds are printed and replayable
with MKCLEAN_SEED."""

import json
import os
import random

import pytest

from mkclean.sim.cli import main as cli
from mkclean.sim.kernel import Kernel
from mkclean.sim.kernel.kernel import PLANTS
from mkclean.sim.workloads import WORKLOADS, make_workload

CONFIGS = [(p, a) for p in ("writenotify", "legacy", "hwdirty") for a in ("svadu", "svade")]
JSON_KEYS = {"accesses", "faults", "sfences", "mkclean_ptes", "writeback_pages", "lost_writes",
             "dirty_known", "dirty_real", "accesses_per_s", "seed", "workload", "policy", "ad",
             "backend"}


def seed_for(test: str) -> int:
    s = int(os.environ.get("MKCLEAN_SEED") or random.randrange(1 << 31))
    print(f"{test}: seed {s} (replay with MKCLEAN_SEED={s})")
    return s


SMALL = {"random": dict(file_pages=8, writeback_every=97, check_every=50),
         "db": dict(file_pages=256, hot_pages=8, msync_every=700, writeback_every=1100),
         "stream": dict(file_pages=64, writeback_every=300, write_every=5),
         "clean_store": dict(pages=3)}


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
@pytest.mark.parametrize("policy,ad", CONFIGS, ids=[f"{p}-{a}" for p, a in CONFIGS])
def test_workload_loses_nothing(workload, policy, ad):
    s = seed_for(f"{workload}/{policy}/{ad}")
    k = Kernel(policy=policy, ad=ad, phys_size=8 << 20)
    try:
        r = make_workload(workload, k, s, 3000, **SMALL[workload]).run()
    finally:
        k.close()
    assert r["lost_writes"] == 0, r
    assert r["mismatches"] == 0, r["first_mismatches"]
    assert JSON_KEYS <= set(r)
    assert r["accesses"] == 3000


def test_policies_differ_as_expected():
    """Before the patch the kernel knows less than is dirty; with it, exactly all."""
    out = {}
    for policy in ("writenotify", "legacy", "hwdirty"):
        k = Kernel(policy=policy, phys_size=8 << 20)
        try:
            out[policy] = make_workload("db", k, 7, 20000, file_pages=256, hot_pages=8,
                                        msync_every=10**9, writeback_every=6000).run()
        finally:
            k.close()
    wn, legacy, hw = out["writenotify"], out["legacy"], out["hwdirty"]
    assert wn["dirty_known"] == wn["dirty_real"] > 0
    assert wn["dirty_known_mean"] == wn["dirty_real_mean"]
    assert legacy["dirty_known"] < legacy["dirty_real"]
    assert legacy["dirty_known_mean"] < legacy["dirty_real_mean"]
    assert wn["faults"].get("wp_shared", 0) > 0 and "wp_shared" not in legacy["faults"]
    assert hw["pte_scans"] > 0 and wn["pte_scans"] == 0


def run_cli(*argv):
    return cli(["run", "--no-progress", *argv])


def test_run_json(tmp_path, capsys):
    path = tmp_path / "out" / "r.json"
    assert run_cli("--workload", "stream", "--accesses", "2000", "--seed", "3",
                   "--phys-mb", "8", "--set", "file_pages=32", "--json", str(path)) == 0
    r = json.loads(path.read_text())
    assert JSON_KEYS <= set(r)
    assert r["workload"] == "stream" and r["seed"] == 3 and r["backend"] == "golden"
    assert r["lost_writes"] == 0
    assert "stream on golden" in capsys.readouterr().out


@pytest.mark.parametrize("argv,needle", [
    (["--workload", "nosuch"], "unknown workload 'nosuch'"),
    (["--policy", "nosuch"], "unknown policy 'nosuch'"),
    (["--ad", "svadx"], "unknown ad mode 'svadx'"),
    (["--backend", "fpga"], "unknown backend 'fpga'"),
    (["--seed", "x1"], "seed 'x1' is not an integer"),
    (["--accesses", "-1"], "accesses must be at least 0"),
    (["--accesses", "lots"], "accesses 'lots' is not an integer"),
    (["--set", "nosuch=1"], "options are"),
    (["--tlb-entries", "12"], "power of two"),
])
def test_run_bad_input(argv, needle, capsys):
    assert run_cli(*argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err


def test_run_fails_on_lost_write(monkeypatch, capsys):
    """A kernel that forgets to write a page back makes `mkclean run` fail."""
    from mkclean.sim.kernel import writeback
    real = writeback.writepage

    def forgetful(kernel, page, wbc):
        if page.index == 3:
            page.mapping.pages[page.index]            # noqa: B018 (the page is there...)
            writeback.set_page_writeback(page)
            writeback.unlock_page(kernel, page)
            kernel.inflight[page.pfn] = page           # ...but its bytes never reach the disk
            return
        real(kernel, page, wbc)

    monkeypatch.setattr(writeback, "writepage", forgetful)
    assert run_cli("--workload", "stream", "--accesses", "200", "--phys-mb", "8",
                   "--set", "file_pages=8") == 1
    assert "FAILED" in capsys.readouterr().err


@pytest.mark.parametrize("plant", sorted(PLANTS))
def test_every_planted_bug_loses_writes(plant):
    """The bugs `mkclean run --plant` offers are real: on the golden backend each loses
    the stores of the clean_store story (the RTL co-simulation catches the first two
    earlier, on its TLB: tests/test_waves_replay.py); without the plant nothing is lost."""
    out = {}
    for carried in (None, plant):
        k = Kernel(plant=carried, phys_size=8 << 20)
        try:
            out[carried] = make_workload("clean_store", k, 1, 12, pages=3).run()
        finally:
            k.close()
    assert out[None]["lost_writes"] == 0
    assert out[plant]["lost_writes"] > 0, out[plant]


def test_an_unknown_plant_is_refused():
    with pytest.raises(ValueError, match="unknown plant 'x': choose one of missing-flush"):
        Kernel(plant="x")

"""The kernel model on the RTL MMU (mkclean run --backend rtl).

The golden and RTL backends, given the same workload and seed, must reach the same
kernel-visible outcome: the same traps in the same order, the same files on disk. All RTL
runs go into one simulation (runner.run_job with several jobs), each on a reset MMU.
"""

import hashlib
import json
import os
import random
import subprocess
import sys

import pytest

from mkclean.sim.cosim import runner
from mkclean.sim.kernel import Kernel
from mkclean.sim.run import RTL_BATCH_DEPTH
from mkclean.sim.workloads import WORKLOADS

PHYS = 64 << 20
ACCESSES = int(os.environ.get("MKCLEAN_COSIM_ACCESSES", "1500"))
SEEDS = [1, random.randrange(1 << 31)]
#: small files keep each run short; the same options go to both backends
OPTIONS = {"db": {"file_pages": 64, "msync_every": 500, "writeback_every": 300},
           "stream": {"file_pages": 32, "writeback_every": 200},
           "random": {}}
CONFIGS = [(w, p, a, s) for w in ("random", "db", "stream")
           for p in ("writenotify", "legacy", "hwdirty") for a in ("svadu", "svade")
           for s in SEEDS]


def job(workload, policy, ad, seed):
    return {"kernel": {"policy": policy, "ad": ad, "store_dir": None, "phys_size": PHYS,
                       "tlb_entries": 16, "trace": True},
            "workload": workload, "seed": seed, "accesses": ACCESSES,
            "options": OPTIONS[workload]}


def on_golden(j):
    k = Kernel(backend="golden", **j["kernel"])
    try:
        r = WORKLOADS[j["workload"]](k, j["seed"], j["accesses"], **j["options"]).run()
        r["trace"] = [list(t) for t in k.trace]
        r["files"] = {f.name: hashlib.sha256(f.on_disk(0, f.size)).hexdigest()
                      for f in k.files.values()}
        return r
    finally:
        k.close()


@pytest.fixture(scope="module")
def rtl_results():
    out = runner.run_job("mkclean.sim.cosim.tb_run", {"jobs": [job(*c) for c in CONFIGS]},
                         {"phys_size": PHYS, "tlb_entries": 16,
                          "batch_depth": RTL_BATCH_DEPTH})
    return dict(zip(CONFIGS, out["results"]))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(map(str, c)))
def test_rtl_and_golden_reach_the_same_outcome(rtl_results, config):
    rtl, golden = rtl_results[config], on_golden(job(*config))
    replay = (f"mkclean run --backend rtl --workload {config[0]} --policy {config[1]} "
              f"--ad {config[2]} --seed {config[3]} --accesses {ACCESSES}")
    assert rtl["invariant_violations"] == [], replay
    assert rtl["lost_writes"] == golden["lost_writes"] == 0, replay
    assert rtl["trace"] == golden["trace"], f"traps differ; {replay}"
    assert rtl["files"] == golden["files"], f"files differ; {replay}"
    assert rtl["faults"] == golden["faults"]
    assert rtl["accesses"] == golden["accesses"] == ACCESSES
    assert rtl["tlb_hits"] + rtl["tlb_misses"] > 0 and rtl["step_checks"] > 0
    # Counted from this run's start, not from the simulation's (runs share one): at most
    # one access per cycle, and nowhere near the other 35 runs' cycles.
    assert rtl["tlb_hits"] + rtl["tlb_misses"] <= rtl["cycles"] < 20 * ACCESSES


def mkclean(*args):
    return subprocess.run([sys.executable, "-m", "mkclean.sim.cli", *args],
                          capture_output=True, text=True, timeout=900)


def test_run_on_rtl_command(tmp_path):
    out, png = tmp_path / "run.json", tmp_path / "run.png"
    p = mkclean("run", "--backend", "rtl", "--workload", "db", "--accesses", "5000",
                "--seed", "3", "--no-progress", "--json", str(out), "--plot", str(png))
    assert p.returncode == 0, p.stderr
    r = json.loads(out.read_text())
    for key in ("accesses", "faults", "sfences", "mkclean_ptes", "writeback_pages",
                "lost_writes", "dirty_known", "dirty_real", "accesses_per_s", "seed",
                "workload", "policy", "ad", "backend", "cycles", "walks", "walk_cycles",
                "tlb_hits", "tlb_misses"):
        assert key in r, key
    assert r["backend"] == "rtl" and r["lost_writes"] == 0 and r["accesses"] == 5000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "RTL" in p.stdout and "invariant 2 checked" in p.stdout


@pytest.mark.parametrize("args,message", [
    (["--workload", "nope"], "unknown workload 'nope'"),
    (["--seed", "x1"], "seed 'x1' is not an integer"),
    (["--policy", "eager"], "unknown policy 'eager'"),
])
def test_run_on_rtl_bad_input(args, message):
    p = mkclean("run", "--backend", "rtl", "--no-progress", *args)
    assert p.returncode == 2
    assert message in p.stderr and "Traceback" not in p.stderr, p.stderr

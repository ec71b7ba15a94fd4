"""The kernel model on the RTL MMU (mkclean run --backend rtl).

The golden and RTL backends, given the same workload and seed, must reach the same
kernel-visible outcome: the same traps in the same order, the same files on disk. All RTL
runs go into one simulation (jobs.run_job with several jobs), each on a reset MMU.
"""

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mkclean.sim.cosim import build, jobs
from mkclean.sim.kernel import Kernel
from mkclean.sim.cosim.build import RTL_BATCH_DEPTH
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


@pytest.fixture(scope="module", autouse=True)
def check_the_mirror():
    """The RTL runs here check the page-table mirror against memory after every batch
    (BatchRtlMmu's check_mirror; off by default, it costs a third of the speed)."""
    before = os.environ.get("MKCLEAN_CHECK_MIRROR")
    os.environ["MKCLEAN_CHECK_MIRROR"] = "1"
    yield
    if before is None:
        del os.environ["MKCLEAN_CHECK_MIRROR"]
    else:
        os.environ["MKCLEAN_CHECK_MIRROR"] = before


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
    out = jobs.run_job("mkclean.sim.cosim.commands.run", {"jobs": [job(*c) for c in CONFIGS]},
                       {"phys_size": PHYS, "tlb_entries": 16, "batch_depth": RTL_BATCH_DEPTH})
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


def _children(pid):
    """(pid, argv) of the processes whose parent is ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append((int(entry.name), (entry / "cmdline").read_bytes().split(b"\0")))
        except (OSError, ValueError, IndexError):
            pass
    return found


def _reported(sim):
    """The progress count the simulator process ``sim`` last reported to its job file."""
    env = dict(v.split(b"=", 1) for v in Path(f"/proc/{sim}/environ").read_bytes()
               .split(b"\0") if b"=" in v)
    try:
        return int(Path(json.loads(env[b"MKCLEAN_JOB"])["progress"]).read_text())
    except (OSError, ValueError):
        return 0


def test_run_on_rtl_says_when_the_simulator_dies():
    """``kill -9`` of the simulator mid-run: one line with the signal, how far the run got,
    the log and the replay command; exit status 1."""
    accesses = 300_000
    p = subprocess.Popen([sys.executable, "-m", "mkclean.sim.cli", "run", "--backend", "rtl",
                          "--workload", "db", "--accesses", str(accesses), "--seed", "1",
                          "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        deadline = time.monotonic() + 900           # the first run may build the design
        sim = done = None
        while not done:
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, "the simulation never reported progress"
            time.sleep(0.1)
            if sim is None:     # the simulator: the Verilator executable, named after its top
                sim = next((pid for pid, argv in _children(p.pid)
                            if argv[0].endswith(build.WRAPPER_SUFFIX.encode())), None)
            else:
                done = _reported(sim)
        os.kill(sim, signal.SIGKILL)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 1, (out, err)
    # (a first line says the simulator is being built, when this test runs before any
    # other has built it)
    err = "".join(line for line in err.splitlines(keepends=True)
                  if not line.startswith("mkclean run: building the RTL simulator"))
    assert err.count("\n") == 1 and "Traceback" not in err, err
    m = re.fullmatch(r"mkclean run: the simulator died \(SIGKILL\) after (\d+) of "
                     rf"{accesses} accesses; log: (\S+); replay: (mkclean run .*)\n", err)
    assert m, err
    assert done <= int(m[1]) < accesses and Path(m[2]).exists(), err
    assert "--backend rtl --workload db --seed 1 --accesses 300000" in m[3], err


def test_is_built_knows_a_built_simulator(tmp_path):
    """`mkclean run --backend rtl` tells a newcomer it is building only when it is."""
    params = {"phys_size": PHYS, "tlb_entries": 16, "batch_depth": RTL_BATCH_DEPTH}
    assert not build.is_built(params, build_root=tmp_path)
    build.build(params)
    assert build.is_built(params)

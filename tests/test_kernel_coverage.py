"""The kernel's functional coverage model (mkclean.sim.coverage.kernel) as a contract: every
bin it has, each reachable on one hart, is hit by a fixed-seed run of the random workload
(every syscall flavour, files with and without page_mkwrite) on every policy and A/D mode,
and no sample falls on a combination it excludes as unreachable. Also its reports:
cocotb-coverage's YAML and XML, the summary, and `mkclean run --coverage`."""

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from mkclean.sim.cli import main as cli
from mkclean.sim.coverage.kernel import (FAULT_EXCLUDED, FAULT_PATHS, KINDS, NOT_BINS, PATHS,
                                         SYSCALL_EXCLUDED, SYSCALLS, KernelCoverage)
from mkclean.sim.kernel import AD_MODES, POLICIES, Kernel
from mkclean.sim.workloads import make_workload

#: The run that closes the model: seed, accesses per policy and A/D mode, options. It closes
#: it with margin (seeds 1 to 3 all do at 4000 accesses; this is ~4 s in all).
SEED = 1
ACCESSES = 4000
OPTIONS = dict(full_mix=1, file_pages=4, writeback_every=97, syscall_share=0.3)


@pytest.fixture(scope="module")
def closed():
    cov = KernelCoverage("kernel_closure")
    for policy in POLICIES:
        for ad in AD_MODES:
            k = Kernel(policy=policy, ad=ad, phys_size=8 << 20, coverage=cov)
            try:
                r = make_workload("random", k, SEED, ACCESSES, **OPTIONS).run()
            finally:
                k.close()
            assert r["lost_writes"] == 0 and r["mismatches"] == 0, (policy, ad, r)
    yield cov
    cov.forget()


def test_every_reachable_bin_is_hit(closed):
    r = closed.result()
    holes = {short: c["holes"] for short, c in r["crosses"].items()}
    assert r["covered"] == r["bins"], f"{r['bins'] - r['covered']} bins not hit: {holes}"
    assert r["percent"] == 100.0
    assert len(closed.configs_run()) == len(POLICIES) * len(AD_MODES)


def test_no_excluded_bin_is_hit(closed):
    """An exclusion is a claim that no run reaches the combination: a hit proves it (or the
    kernel) wrong."""
    assert closed.excluded_hits == {}


def test_every_fault_path_of_the_kernel_is_modelled():
    """Each key the kernel counts a fault under (count_vm_event) is a bin, or listed as
    none: a new fault path cannot go unmodelled."""
    kernel_dir = Path(__file__).resolve().parents[1] / "sim" / "kernel"
    keys = set()
    for path in kernel_dir.glob("*.py"):
        keys.update(re.findall(r'count_vm_event\([^,]+, "(\w+)"', path.read_text()))
    assert {"shared", "wp_shared", "read", "anon"} <= keys
    assert keys == set(FAULT_PATHS) | set(NOT_BINS)


def test_model_shape():
    """The crosses are the full products less exactly the excluded bins."""
    cov = KernelCoverage("kernel_shape")
    configs = len(POLICIES) * len(AD_MODES)
    fault = cov.fault_cross
    assert len(fault.bins) == configs * len(KINDS) * len(PATHS) - len(fault.excluded_bins)
    syscall = cov.syscall_cross
    assert len(syscall.bins) == configs * len(SYSCALLS) * len(KINDS) - len(syscall.excluded_bins)
    assert not set(fault.bins) & fault.excluded_bins
    for excluded in (FAULT_EXCLUDED, SYSCALL_EXCLUDED):
        for pattern, why in excluded:
            assert len(pattern) == 4 and why
    # Unreachable on one hart, and listed as such: the anonymous x file paths, and more.
    assert ("writenotify", "svadu", "anon_private", "do_shared_fault") in fault.excluded_bins
    assert ("legacy", "svade", "shared_plain", "wp_page_shared") in fault.excluded_bins
    assert ("writenotify", "svadu", "shared_plain", "wp_page_shared") in fault.bins
    cov.forget()


def test_reports(closed, tmp_path):
    yml = tmp_path / "cov.yml"
    closed.export(yml)
    db = yaml.safe_load(yml.read_text())
    cross = db["kernel_closure.fault.cross"]
    assert cross["cover_percentage"] == 100.0
    assert cross["size"] == len(closed.fault_cross.bins)
    assert db["kernel_closure.syscall.cross"]["cover_percentage"] == 100.0
    xml = tmp_path / "cov.xml"
    closed.export(xml)
    root = ET.parse(xml).getroot()
    assert root.find("kernel_closure/fault/cross") is not None
    text = closed.summary()
    assert text.splitlines()[0].split()[1] == "100.0%"
    assert "writenotify/svadu" in text and "holes" not in text


def test_hook_costs_nothing_when_off():
    """The kernel without a coverage hook samples nothing and keeps its counters."""
    k = Kernel(phys_size=4 << 20)
    try:
        assert k.coverage is None
        r = make_workload("random", k, 2, 500, file_pages=4).run()
        assert r["faults_total"] > 0
    finally:
        k.close()


def test_run_coverage_flag(tmp_path, capsys):
    out, js = tmp_path / "c" / "kernel.yml", tmp_path / "r.json"
    assert cli(["run", "--no-progress", "--workload", "random", "--accesses", "1500",
                "--phys-mb", "8", "--set", "file_pages=4", "--coverage", str(out),
                "--json", str(js)]) == 0
    printed = capsys.readouterr().out
    assert "coverage" in printed and "writenotify/svadu" in printed
    assert "kernel.fault.cross" in yaml.safe_load(out.read_text())
    r = json.loads(js.read_text())["coverage"]
    assert r["report"] == str(out)
    assert set(r["crosses"]) == {"fault", "syscall"}
    assert list(r["by_config"]) == ["writenotify/svadu"]
    assert 0 < r["by_config"]["writenotify/svadu"]["percent"] <= 100
    assert r["excluded"] and r["excluded_hits"] == {}
    KernelCoverage().forget()           # the command's model, out of the shared database


@pytest.mark.parametrize("argv,needle", [
    (["--backend", "rtl"], "--coverage needs the golden backend"),
    (["--coverage", "/proc/nope.yml"], "--coverage '/proc/nope.yml' cannot be written"),
])
def test_run_coverage_bad_input(argv, needle, capsys):
    args = ["run", "--no-progress", "--coverage", "/tmp/x.yml", *argv]
    if "--coverage" in argv:
        args = ["run", "--no-progress", *argv]
    assert cli(args) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err

"""The random differential campaign (RTL vs golden model), its functional coverage and the
`mkclean verify` command."""

import json
import os
import random
import subprocess
import sys

import pytest

from mkclean.sim.cosim import coverage
from mkclean.sim.cosim.campaign import Campaign
from mkclean.sim.cosim.verify import run_campaign
from mkclean.sim.model.pte import A, D, PPN_SHIFT, R, U, V, W, X

#: classes the campaign must reach for its verdict to mean something
MUST_COVER = ["ok:4k", "ok:2m", "ok:1g", "page_fault:v0", "page_fault:nonleaf_level0",
              "access_fault:bus_error", "page_fault:pte_change_in_walk", "ad_update",
              "answered_without_walk", "ok:sfence_in_walk"]
TRANSLATIONS = int(os.environ.get("MKCLEAN_VERIFY_WALKS", "2500"))


@pytest.mark.parametrize("seed", [1, 2, random.randrange(1 << 32)], ids=lambda s: f"seed={s}")
def test_rtl_agrees_with_golden_model(seed):
    result = run_campaign(seed, TRANSLATIONS)
    replay = f"replay: mkclean verify --seed {seed} --walks {TRANSLATIONS}"
    assert result["mismatches"] == 0, (
        f"{result['first_mismatch']}\n{replay} --waves waves-verify-seed{seed} "
        f"--waves-at {result['mismatch_cycle']}")
    assert result["translations"] == TRANSLATIONS
    missing = [c for c in MUST_COVER if not result["classes"].get(c)]
    assert not missing, f"seed {seed} never reached {missing}; {replay}"
    # Every reachable bin of the functional coverage, the random part's and the fill's.
    cov = result["coverage"]
    holes = [h for g in cov["groups"].values() for h in g["holes"]]
    assert cov["percent"] == 100.0, f"seed {seed}: {len(holes)} holes, {holes[:10]}; {replay}"
    assert cov["excluded_hits"] == {}, f"an excluded bin was hit: {cov['excluded_hits']}"
    assert result["fill_translations"] < 3500, result["fill_translations"]


def test_campaign_catches_a_walker_without_the_locked_ad_update():
    # The test-only variant writes A/D with a plain store, without the locked re-read:
    # the campaign must notice at the first A/D update.
    result = run_campaign(5, 500, params={"ad_lock": False})
    assert result["mismatches"] == 1
    assert "RL@" in result["first_mismatch"], result["first_mismatch"]


def mkclean(*args):
    return subprocess.run([sys.executable, "-m", "mkclean.sim.cli", *args],
                          capture_output=True, text=True, timeout=600)


def test_verify_command_json(tmp_path):
    out, report = tmp_path / "v.json", tmp_path / "coverage.yml"
    p = mkclean("verify", "--seed", "11", "--walks", "300", "--quiet", "--json", str(out),
                "--coverage-report", str(report), "--fail-under", "100")
    assert p.returncode == 0, p.stderr
    result = json.loads(out.read_text())
    assert {"translations", "mismatches", "seed", "classes", "coverage"} <= result.keys()
    assert result["translations"] == 300 and result["mismatches"] == 0 and result["seed"] == 11
    assert "translations 300  mismatches 0  seed 11" in p.stdout
    cov = result["coverage"]
    assert cov["percent"] == 100.0 and cov["report"] == str(report)
    assert set(cov["groups"]) == {"checks", "malformed", "sfence", "injection"}
    assert all(e["why"] for e in cov["excluded"])
    assert f"coverage 100.0% of {cov['bins']} reachable bins" in p.stdout
    import yaml
    db = yaml.safe_load(report.read_text())
    assert db["verify"]["cover_percentage"] == 100.0


def test_verify_coverage_report_and_fail_under(tmp_path):
    """A tiny random-only run covers little: --fail-under says so in one line and exits 1;
    the report (cocotb-coverage's own XML) and the summary are written all the same."""
    report = tmp_path / "coverage.xml"
    p = mkclean("verify", "--seed", "4", "--walks", "60", "--quiet", "--no-fill",
                "--coverage-report", str(report), "--fail-under", "99")
    assert p.returncode == 1, p.stderr
    lines = [line for line in p.stderr.splitlines() if "fail-under" in line]
    assert len(lines) == 1 and "is below --fail-under 99%" in lines[0], p.stderr
    assert "Traceback" not in p.stderr
    assert "coverage " in p.stdout and "not hit:" in p.stdout, p.stdout
    import xml.etree.ElementTree as ET
    top = ET.parse(report).getroot()
    assert top.tag == "top" and float(top.get("cover_percentage")) < 99
    assert top.find("verify/check/step6_misaligned/cross") is not None


def test_coverage_model_without_a_simulator():
    """The sole-cause rule of the malformed group and the exclusions' arithmetic."""
    ok = V | R | W | X | A | D
    assert coverage.passes(ok | 1 << PPN_SHIFT, 0, 1, 1, 0, 0, 1)      # a 4K page
    assert not coverage.passes(ok | 1 << (PPN_SHIFT + 9), 2, 1, 1, 0, 0, 1)
    assert not coverage.passes(V | R | A | D, 1, 1, 1, 0, 0, 1)         # no W: masks
    assert not coverage.passes(ok & ~A, 0, 0, 1, 0, 0, 0)               # Svade, A=0
    assert coverage.passes(ok & ~A, 0, 0, 1, 0, 0, 1)                   # Svadu updates
    assert not coverage.passes(ok | U, 0, 2, 1, 1, 0, 1)                # fetch of U from S
    assert [m[:2] for m in coverage.step4_malformations(ok & ~V | 1 << 55)] == \
        [("v0", "V"), ("reserved", "55")]
    c = coverage.CampaignCoverage(16 << 20, name="unit")
    try:
        r = c.result()
        assert r["percent"] == 0 and r["bins"] == 2699
        assert r["groups"]["checks"]["crosses"]["6.misaligned"]["bins"] == 128
        # a misaligned 1G page from S mode, for a store, otherwise fully permitted ...
        c.translation(1, 1, 0, 0, 1, ("6.misaligned", 2, ok | 1 << (PPN_SHIFT + 17)),
                      [(0, 0, 0, 0)], [2], [], [3], 1)
        # ... and one without W: it faults whatever the alignment check does
        c.translation(1, 1, 0, 0, 1, ("6.misaligned", 2, (ok & ~W) | 1 << (PPN_SHIFT + 9)),
                      [(0, 0, 0, 0)], [2], [], [0], 1)
        hit = {k: v for k, v in c.malformed["misaligned"].bins.items() if v}
        assert hit == {("1g", "17"): 1}, hit
        assert c.checks["6.misaligned"].bins[("1g", "store", "S", "sum0", "mxr0", "svadu")] == 2
        assert c.injections.bins[("wait3", "read_l2")] == 1
        assert c.excluded_hits == {}
        c.translation(0, 1, 1, 1, 1, ("6.permission", 0, ok), [], [], [], [], 1)
        assert c.excluded_hits == {"unit.check.step6_permission: 4k/load/S/sum1/mxr1/svadu": 1}
    finally:
        c.forget()


def test_campaign_misaligns_every_slice_of_every_superpage_level():
    campaign = Campaign.__new__(Campaign)
    campaign.rng, campaign.phys_size = random.Random(1), 16 << 20
    seen = set()
    for level in (1, 2):
        for _ in range(400):
            ppn = campaign.leaf_value(level, "misaligned") >> PPN_SHIFT & ((1 << 44) - 1)
            low = ppn & ((1 << 9 * level) - 1)
            assert low and not low & (low - 1), f"level {level}: {low:#x}"
            seen.add((level, (low.bit_length() - 1) // 9))
    assert seen == {(1, 0), (2, 0), (2, 1)}


@pytest.mark.parametrize("args,message", [
    (["--fail-under", "101"], "--fail-under must be a percentage"),
    (["--coverage-report", "/"], "--coverage-report: / is a directory"),
    (["--json", "/nonexistent/v.json"], "--json: /nonexistent is not a directory"),
    (["--seed", "abc"], "invalid int value"),
    (["--walks", "0"], "--walks must be at least 1"),
    (["--tlb-entries", "12"], "tlb_entries must be a power of two"),
    (["--walk-cache-entries", "100"], "walk_cache_entries must be"),
    (["--phys-size", "1000"], "phys_size must be"),
])
def test_verify_bad_input_is_a_clear_error(args, message):
    p = mkclean("verify", "--quiet", *args)
    assert p.returncode == 2
    assert message in p.stderr and "Traceback" not in p.stderr, p.stderr

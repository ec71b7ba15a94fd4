"""The random differential campaign (RTL vs golden model) and the `mkclean verify` command."""

import json
import os
import random
import subprocess
import sys

import pytest

from mkclean.sim.cosim.verify import run_campaign

#: classes the campaign must reach for its verdict to mean something
MUST_COVER = ["ok:4k", "ok:2m", "ok:1g", "page_fault:v0", "page_fault:nonleaf_level0",
              "access_fault:bus_error", "page_fault:pte_change_in_walk", "ad_update",
              "answered_without_walk", "ok:sfence_in_walk"]
TRANSLATIONS = int(os.environ.get("MKCLEAN_VERIFY_WALKS", "2500"))


@pytest.mark.parametrize("seed", [1, 2, random.randrange(1 << 32)], ids=lambda s: f"seed={s}")
def test_rtl_agrees_with_golden_model(seed):
    result = run_campaign(seed, TRANSLATIONS)
    replay = f"replay: mkclean verify --seed {seed} --walks {TRANSLATIONS}"
    assert result["mismatches"] == 0, f"{result['first_mismatch']}\n{replay}"
    assert result["translations"] == TRANSLATIONS
    missing = [c for c in MUST_COVER if not result["classes"].get(c)]
    assert not missing, f"seed {seed} never reached {missing}; {replay}"


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
    out = tmp_path / "v.json"
    p = mkclean("verify", "--seed", "11", "--walks", "300", "--quiet", "--json", str(out))
    assert p.returncode == 0, p.stderr
    result = json.loads(out.read_text())
    assert {"translations", "mismatches", "seed", "classes"} <= result.keys()
    assert result["translations"] == 300 and result["mismatches"] == 0 and result["seed"] == 11
    assert "translations 300  mismatches 0  seed 11" in p.stdout


@pytest.mark.parametrize("args,message", [
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

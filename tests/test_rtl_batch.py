"""The batch top (hdl/batch.py) under Verilator against the golden model.

The random batches take their seed from MKCLEAN_SEED, or a fresh one that a failure
prints with the command that replays it, with a window of waves around the failing
batch."""

import os
import random
import re

import pytest

from mkclean.sim.cosim import build

SEED = int(os.environ.get("MKCLEAN_SEED", random.randrange(1 << 31)))


def test_batches_match_golden_model():
    results = build.run("cosim_benches.batch_top", {"batch_depth": 64}, seed=SEED)
    assert [r.name for r in results] == ["batches_match_golden"]
    failed = re.search(r"cycle (\d+)", results[0].message)
    waves = f"WAVES=1 MKCLEAN_WAVES_AT={failed[1]} " if failed else ""
    assert results[0].passed, (f"{results[0].message}\nreplay: {waves}MKCLEAN_SEED={SEED} "
                               f"pytest {__file__}::test_batches_match_golden_model")


@pytest.fixture(scope="module")
def backend_results():
    return {r.name: r for r in build.run("cosim_benches.rtl_backend_vs_golden",
                                         {"batch_depth": 64})}


def test_rtl_backend_matches_golden_backend(backend_results):
    """... with the page-table mirror checked against memory after every batch."""
    r = backend_results["rtl_backend_matches_golden"]
    assert r.passed, r.message


def test_mirror_check_catches_a_touch_that_does_nothing(backend_results):
    r = backend_results["mirror_check_catches_a_touch_that_does_nothing"]
    assert r.passed, r.message

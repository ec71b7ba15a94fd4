"""The batch top (hdl/batch.py) under Verilator against the golden model.

The random batches take their seed from MKCLEAN_SEED, or a fresh one that a failure
prints with the command that replays it."""

import os
import random

from mkclean.sim.cosim import build

SEED = int(os.environ.get("MKCLEAN_SEED", random.randrange(1 << 31)))


def test_batches_match_golden_model():
    results = build.run("cosim_benches.batch_top", {"batch_depth": 64}, seed=SEED)
    assert [r.name for r in results] == ["batches_match_golden"]
    assert results[0].passed, (f"{results[0].message}\nreplay: MKCLEAN_SEED={SEED} "
                               f"pytest {__file__}::test_batches_match_golden_model")


def test_rtl_backend_matches_golden_backend():
    results = build.run("cosim_benches.rtl_backend_vs_golden", {"batch_depth": 64})
    assert [r.name for r in results] == ["rtl_backend_matches_golden"]
    assert results[0].passed, results[0].message

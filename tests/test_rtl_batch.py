"""The batch top (hdl/batch.py) under Verilator against the golden model."""

from mkclean.sim.cosim import runner


def test_batches_match_golden_model():
    results = runner.run("mkclean.sim.cosim.tb_batch", {"batch_depth": 64})
    assert [r.name for r in results] == ["batches_match_golden"]
    assert results[0].passed, results[0].message


def test_rtl_backend_matches_golden_backend():
    results = runner.run("mkclean.sim.cosim.tb_rtl_backend", {"batch_depth": 64})
    assert [r.name for r in results] == ["rtl_backend_matches_golden"]
    assert results[0].passed, results[0].message

"""The directed cocotb tests (sim/cosim/tb_directed.py), run once under Verilator and
reported here one pytest test each."""

import pytest

from mkclean.sim.cosim import runner, tb_directed


@pytest.fixture(scope="module")
def results():
    return {r.name: r for r in runner.run("mkclean.sim.cosim.tb_directed")}


@pytest.mark.parametrize("name", tb_directed.NAMES)
def test_directed(results, name):
    assert name in results, f"cocotb did not run {name}; see the build folder's test.log"
    assert results[name].passed, results[name].message

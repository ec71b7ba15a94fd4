"""The directed cocotb tests (tests/cosim_benches/directed.py), run once under Verilator
and reported here one pytest test each."""

import pytest

from cosim_benches import directed
from mkclean.sim.cosim import build


@pytest.fixture(scope="module")
def results():
    return {r.name: r for r in build.run("cosim_benches.directed")}


@pytest.mark.parametrize("name", directed.NAMES)
def test_directed(results, name):
    assert name in results, f"cocotb did not run {name}; see the build folder's test.log"
    assert results[name].passed, results[name].message

"""The layers of ARCHITECTURE.md hold: import-linter's contracts in pyproject.toml (`make
test` runs `lint-imports` too), and they are not blind: an upward import or a circle
planted in a copy of the tree breaks them."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint(tree: Path) -> subprocess.CompletedProcess:
    """lint-imports over ``tree``'s copy of the package (``tree/mkclean/{sim,hdl}``), with
    the project's contracts; the copy comes first on the path, before the installed one."""
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} is missing: install the test dependencies "
                    f"(pip install -e '.[test]'), which bring import-linter")
    return subprocess.run([str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"),
                           "--no-cache"], cwd=tree, capture_output=True, text=True,
                          env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"})


@pytest.fixture
def tree(tmp_path):
    for part in ("sim", "hdl"):
        shutil.copytree(ROOT / part, tmp_path / "mkclean" / part,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def plant(tree, module, line):
    path = tree / "mkclean" / module
    path.write_text(path.read_text() + f"\n{line}\n")


def test_contracts_kept(tree):
    r = lint(tree)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 broken" in r.stdout


@pytest.mark.parametrize("module,line,contract", [
    ("sim/kernel/mm.py", "from mkclean.sim.workloads import WORKLOADS",
     "The host side points down"),
    ("sim/kernel/rmap.py", "import cocotb", "see hardware only through the seam"),
    ("sim/workloads/db.py", "from mkclean.sim.model.memory import Memory",
     "see hardware only through the seam"),
    ("sim/hw/seam.py", "from mkclean.sim.model import GoldenMMU", "The seam is the bottom layer"),
    ("sim/cosim/rtl_backend.py", "from mkclean.sim.kernel import Kernel",
     "Backends stand on the seam"),
    ("sim/waves/catalogue.py", "from mkclean.sim.cosim.build import KERNEL_EVENT_PORT",
     "Waveforms read the gateware's enums"),
    ("sim/realcheck/check.py", "from mkclean.sim.model.memory import Memory",
     "The real-kernel check compares"),
    ("sim/kernel/pgtable.py", "from mkclean.sim.realcheck.program import ARENA",
     "The host side points down"),
    ("hdl/bridge_codes.py", "from .pte import TlbEntry", "The bridge's code table"),
    ("hdl/bridge_codes.py", "import amaranth", "The bridge's code table"),
    ("hdl/pte.py", "from mkclean.hdl.mmu import MMU", "No import circle"),
    ("sim/kernel/tlbflush.py", "from mkclean.sim.kernel.rmap import folio_mkclean",
     "No import circle"),
])
def test_planted_violation_is_caught(tree, module, line, contract):
    plant(tree, module, line)
    r = lint(tree)
    assert r.returncode != 0
    broken = r.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, r.stdout

import sys
from pathlib import Path

# tests/ holds helper modules (hdl_harness) and the test-only cocotb modules
# (cosim_benches) next to the tests; the simulator's Python gets this sys.path too.
sys.path.insert(0, str(Path(__file__).parent))

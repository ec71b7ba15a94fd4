import sys
from pathlib import Path

# tests/ holds helper modules (hdl_harness) and the test-only cocotb modules
# (cosim_benches) next to the tests; the simulator's Python gets this sys.path too.
sys.path.insert(0, str(Path(__file__).parent))

# No hypothesis deadlines: these machines are shared and a test's example can take ten
# times longer under load; speed is measured by `mkclean bench`, not asserted by a timer.
from hypothesis import settings  # noqa: E402

settings.register_profile("mkclean", deadline=None)
settings.load_profile("mkclean")

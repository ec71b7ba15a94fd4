import sys
from pathlib import Path

# tests/ holds helper modules (hdl_harness) next to the tests.
sys.path.insert(0, str(Path(__file__).parent))

"""`mkclean bench`: the MMU figures exist and are the cycle counts the design promises
(counted in simulation cycles, so exact; wall-clock figures are only reported)."""

import json
import subprocess
import sys


def test_bench_mmu_figures(tmp_path):
    out = tmp_path / "bench.json"
    p = subprocess.run([sys.executable, "-m", "mkclean.sim.cli", "bench", "--only", "mmu",
                        "--quick", "--json", str(out)], capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr
    d = json.loads(out.read_text())
    assert d["tlb_hit_latency_cycles"] == 1
    assert d["tlb_hits_per_cycle"] == 1.0
    for latency in ("1", "4"):
        assert d["miss_4k_cycles"][latency] <= 3 * (int(latency) + 1) + 2
        assert d["miss_4k_pwc_cycles"][latency] < d["miss_4k_cycles"][latency]
        assert d["miss_1g_cycles"][latency] < d["miss_2m_cycles"][latency] < \
            d["miss_4k_cycles"][latency]
        assert d["ad_update_extra_cycles"][latency] > 0
    assert d["miss_4k_pwc_reads"] == 1
    assert d["verilator_cycles_per_s"] > 0
    assert "TLB hit latency" in p.stdout


def test_bench_cosim_figures(tmp_path):
    out = tmp_path / "bench.json"
    p = subprocess.run([sys.executable, "-m", "mkclean.sim.cli", "bench", "--only", "cosim",
                        "--quick", "--json", str(out)], capture_output=True, text=True,
                       timeout=900)
    assert p.returncode == 0, p.stderr
    d = json.loads(out.read_text())
    assert d["rtl_db_accesses"] == 20_000 and d["rtl_db_lost_writes"] == 0
    assert d["rtl_db_accesses_per_s"] > 0 and d["python_per_clock_cycles_per_s"] > 0
    assert "db through the RTL" in p.stdout

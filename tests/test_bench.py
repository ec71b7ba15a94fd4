"""`mkclean bench`: the MMU figures exist and are the cycle counts the design promises
(counted in simulation cycles, so exact; wall-clock figures are only reported)."""

import json
import subprocess
import sys

from mkclean.hdl.mmu import miss_cycles


def bench(part, tmp_path):
    """`mkclean bench --only part --quick`: (its output, its JSON)."""
    out = tmp_path / "bench.json"
    p = subprocess.run([sys.executable, "-m", "mkclean.sim.cli", "bench", "--only", part,
                        "--quick", "--json", str(out)], capture_output=True, text=True,
                       timeout=900)
    assert p.returncode == 0, p.stderr
    return p, json.loads(out.read_text())


def test_bench_mmu_figures(tmp_path):
    p, d = bench("mmu", tmp_path)
    assert d["tlb_hit_latency_cycles"] == 1
    assert d["tlb_hits_per_cycle"] == 1.0
    for latency in ("1", "4"):
        assert d["miss_4k_cycles"][latency] == miss_cycles(3, int(latency))
        assert d["miss_4k_pwc_cycles"][latency] == miss_cycles(1, int(latency), cached=2)
        assert d["miss_1g_cycles"][latency] < d["miss_2m_cycles"][latency] < \
            d["miss_4k_cycles"][latency]
        assert d["ad_update_extra_cycles"][latency] > 0
    assert d["miss_4k_pwc_reads"] == 1
    assert d["verilator_cycles_per_s"] > 0
    assert "TLB hit latency" in p.stdout


def test_bench_cosim_figures(tmp_path):
    p, d = bench("cosim", tmp_path)
    assert d["rtl_db_accesses"] == 20_000 and d["rtl_db_lost_writes"] == 0
    assert d["rtl_db_accesses_per_s"] > 0 and d["python_per_clock_cycles_per_s"] > 0
    # --quick measures each once; the best of the runs is the figure
    assert d["rtl_db_accesses_per_s_runs"] == [d["rtl_db_accesses_per_s"]]
    assert d["python_per_clock_cycles_per_s_runs"] == [d["python_per_clock_cycles_per_s"]]
    assert "db through the RTL" in p.stdout
    # ... and with waves on, beside it: a replay's window, and the whole run traced
    assert d["waves_window_cycles"] == 4001 < d["rtl_db_cycles"] == d["waves_full_cycles"]
    assert 0 < d["waves_window_trace_bytes"] < d["waves_full_trace_bytes"]
    assert d["rtl_db_accesses_per_s_waves_window"] > 0
    assert d["rtl_db_accesses_per_s_waves_full"] > 0
    assert "waves on, the whole run" in p.stdout


def test_bench_qemu_figures(tmp_path):
    """QEMU's link and the kernel model on it beside golden (needs QEMU and the cross
    compiler, which `make test` installs)."""
    p, d = bench("qemu", tmp_path)
    q = d["qemu"]
    assert q["qemu_round_trip_ms"] > 0 and q["qemu_read_bytes_per_s"] > 0
    assert q["qemu_write_bytes_per_s"] > 0
    assert q["qemu_accesses_per_s"] > 0 and q["golden_accesses_per_s"] > 0
    assert q["same_faults"] and q["qemu_lost_writes"] == 0
    assert "round trip" in p.stdout

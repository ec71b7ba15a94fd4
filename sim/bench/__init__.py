"""``mkclean bench``: figures of the MMU in RTL simulation and of the kernel model, printed
side by side, and as JSON with --json.

A command: it may import anything below it (the co-simulation's jobs, the kernel model,
the workloads); :mod:`.kernel` holds the kernel model's figures.
"""

import json
import sys
import tempfile
from pathlib import Path

from ..cosim import jobs
from ..qemu.machine import QemuError


def add_arguments(parser):
    parser.add_argument("--json", metavar="PATH", help="write the figures here as JSON")
    parser.add_argument("--quick", action="store_true",
                        help="smaller runs (for tests): same figures, less precision")
    parser.add_argument("--only", choices=("mmu", "cosim", "kernel", "qemu"),
                        help="measure one part")


def mmu_bench(quick=False):
    return jobs.run_job("mkclean.sim.cosim.commands.bench_mmu",
                        {"stream": 1000 if quick else 4000,
                         "idle_cycles": 20_000 if quick else 200_000})


def cosim_bench(quick=False):
    """The co-simulation's figures with waves off, then with the traced simulator writing
    a window of waves around the run's middle (what a replay of a failure costs) and
    writing the whole run: the price of waves, side by side in one bench."""
    from ..cosim.build import RTL_BATCH_DEPTH
    from ..waves.options import Waves
    job = {"kernel": {"policy": "writenotify", "ad": "svadu", "store_dir": None,
                      "phys_size": 64 << 20, "tlb_entries": 16},
           "workload": "db", "seed": 1, "accesses": 20_000 if quick else 300_000,
           "options": {}}
    params = {"phys_size": 64 << 20, "tlb_entries": 16, "batch_depth": RTL_BATCH_DEPTH}
    config = {"job": job, "clock_cycles": 20_000 if quick else 200_000,
              "repeats": 1 if quick else 3}
    module = "mkclean.sim.cosim.commands.bench_cosim"
    figures = jobs.run_job(module, config, params)
    traced = {**config, "repeats": 1, "clock_cycles": 0}
    with tempfile.TemporaryDirectory(prefix="mkclean-bench-waves-") as tmp:
        middle = figures["rtl_db_cycles"] // 2
        for name, waves in (("window", Waves(Path(tmp) / "window", around=middle)),
                            ("full", Waves(Path(tmp) / "full"))):
            run = jobs.run_job(module, traced, params, waves=waves)
            figures[f"rtl_db_accesses_per_s_waves_{name}"] = run["rtl_db_accesses_per_s"]
            figures[f"waves_{name}_trace_bytes"] = waves.trace.stat().st_size
            figures[f"waves_{name}_cycles"] = (waves.window * 2 + 1 if name == "window"
                                               else run["rtl_db_cycles"])
    return figures


def format_cosim(d):
    def runs(key):
        values = d[key + "_runs"]
        return "" if len(values) < 2 else " (runs: " + ", ".join(f"{v:,}" for v in values) + ")"

    def traced(name, what):
        return (f"  {what:<34}{d[f'rtl_db_accesses_per_s_waves_{name}']:>10,} accesses/s "
                f"({d[f'waves_{name}_cycles']:,} cycles traced, "
                f"{d[f'waves_{name}_trace_bytes'] / 1e6:,.1f} MB of FST)")
    return "\n".join([
        "Co-simulation (kernel model on the RTL MMU, one Verilator run; best of the runs, "
        "taken in turns)",
        f"  {'db through the RTL, waves off':<34}{d['rtl_db_accesses_per_s']:>10,} accesses/s "
        f"({d['rtl_db_accesses']:,} accesses, {d['rtl_db_cycles']:,} cycles; target 100k)"
        + runs("rtl_db_accesses_per_s"),
        traced("window", "  waves on, a replay's window"),
        traced("full", "  waves on, the whole run"),
        f"  {'Python woken on every clock':<34}{d['python_per_clock_cycles_per_s']:>10,} "
        f"cycles/s" + runs("python_per_clock_cycles_per_s"),
    ])


#: The MMU's latencies in cycles that are also given in ns (cycles / Fmax).
NS_ROWS = ("miss_4k_cycles", "miss_4k_pwc_cycles", "miss_2m_cycles", "miss_2m_pwc_cycles",
           "miss_1g_cycles", "ad_update_extra_cycles")


def with_ns(d, root=None):
    """The MMU's figures with each latency of :data:`NS_ROWS` in ns as well (``*_ns``):
    cycles / Fmax, the Fmax of the last FPGA build (``fmax_mhz``, ``fmax_source`` says
    which report; ``None`` when nothing was built: `mkclean build`)."""
    from ..fpga.build import latest_fmax
    found = latest_fmax(root, tlb_entries=d["tlb_entries"])
    d = {**d, "fmax_mhz": found and found[0], "fmax_source": found and found[1]}
    if found:
        for key in NS_ROWS:
            d[key[:-len("cycles")] + "ns"] = {l: round(c * 1000 / found[0], 1)
                                              for l, c in d[key].items()}
    return d


def format_mmu(d):
    lat = d["memory_latency_cycles"]
    fmax = d.get("fmax_mhz")

    def row(name, key, target=None):
        values = "".join(f"{d[key][str(l)]:>10}" for l in lat)
        ns_key = key[:-len("cycles")] + "ns"
        ns = "".join(f"{d[ns_key][str(l)]:>10.0f}" for l in lat) if ns_key in d else ""
        bound = "".join(f"{d[target][str(l)]:>10}" for l in lat) if target else ""
        return f"  {name:<34}{values}{ns}{bound}"

    head = "".join(f"{'L=' + str(l):>10}" for l in lat)
    ns_head = "".join(f"{'ns L=' + str(l):>10}" for l in lat) if fmax else ""
    bounds = "".join(f"{'bound L=' + str(l):>10}" for l in lat)
    ns_line = (f"  ns = cycles / {fmax:g} MHz, the Fmax of {d['fmax_source']}" if fmax else
               "  ns: no FPGA build to take an Fmax from yet (`mkclean build`)")
    return "\n".join([
        f"MMU (RTL under Verilator; {d['tlb_entries']}-entry TLB, "
        f"{d['walk_cache_entries']}-entry walk cache; cycles at memory latency L)",
        ns_line,
        f"  {'':<34}{head}{ns_head}{bounds}",
        row("4K miss", "miss_4k_cycles", "miss_4k_bound_cycles"),
        row("4K miss, walk cache hits", "miss_4k_pwc_cycles"),
        row("2M miss", "miss_2m_cycles"),
        row("2M miss, walk cache hit", "miss_2m_pwc_cycles"),
        row("1G miss", "miss_1g_cycles"),
        row("extra for an A/D update", "ad_update_extra_cycles"),
        f"  {'TLB hit latency':<34}{d['tlb_hit_latency_cycles']:>10} cycle (target 1)",
        f"  {'TLB hits per cycle, sustained':<34}{d['tlb_hits_per_cycle']:>10} (target 1)",
        f"  {'memory reads, 4K miss / walk-cache':<34}{d['miss_4k_reads']:>10} / "
        f"{d['miss_4k_pwc_reads']} (target 1 with the walk cache)",
        f"  {'Verilator, Python on every clock':<34}{d['verilator_cycles_per_s']:>10,} cycles/s",
    ])


def main(args):
    figures = {}
    text = []
    try:
        if args.only in (None, "mmu"):
            figures["mmu"] = with_ns(mmu_bench(args.quick))
            text.append(format_mmu(figures["mmu"]))
        if args.only in (None, "cosim"):
            figures["cosim"] = cosim_bench(args.quick)
            text.append(format_cosim(figures["cosim"]))
        if args.only in (None, "kernel"):
            try:
                from .kernel import format_kernel_bench, kernel_bench
            except ImportError as e:
                print(f"mkclean bench: the kernel model's benchmark is not available ({e})",
                      file=sys.stderr)
                return 2
            figures["kernel"] = kernel_bench(args.quick)
            text.append(format_kernel_bench(figures["kernel"]))
        if args.only in (None, "qemu"):
            from .qemu import format_qemu_bench, qemu_bench
            figures["qemu"] = qemu_bench(args.quick)
            text.append(format_qemu_bench(figures["qemu"]))
    except (jobs.ToolError, QemuError) as e:
        print(f"mkclean bench: {e}", file=sys.stderr)
        return 2
    # The MMU's and the co-simulation's figures at the top level (the keys the issues name),
    # the kernel model's under "kernel".
    flat = {**figures.get("mmu", {}), **figures.get("cosim", {}),
            **{part: figures[part] for part in ("kernel", "qemu") if part in figures}}
    print("\n\n".join(text))
    if args.json:
        Path(args.json).write_text(json.dumps(flat, indent=2) + "\n")
    return 0

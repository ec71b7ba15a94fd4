"""`make verilog`'s output: a standalone module with readable ports, lint-clean under
`verilator --lint-only -Wall` with the waivers of hdl/mkclean_mmu.vlt."""

import subprocess

from mkclean.hdl import verilog as hdl_verilog
from mkclean.sim.cosim.build import VLT, verilator_bin


def test_standalone_verilog_lints_clean(tmp_path):
    out = tmp_path / "mkclean_mmu.v"
    with open(out, "w") as f:
        hdl_verilog.generate(f, phys_size=64 << 20)
    text = out.read_text()
    header = text[text.index("module mkclean_mmu(") + len("module mkclean_mmu("):
                  text.index(");")]
    ports = {name.strip() for name in header.split(",")}
    assert {"req_valid", "req_vaddr", "resp_paddr", "resp_cause", "satp_asid", "sum",
            "sfence_by_asid", "wb_adr", "wb_lock", "wb_err", "dbg_tlb_entries",
            "cnt_walk_cycles", "clk", "rst"} <= ports, ports
    lint(out, "mkclean_mmu")


def test_batch_top_lints_clean(tmp_path):
    """The co-simulation's (and the board's) top: queue, page-table mirror, snapshot."""
    out = tmp_path / "mkclean_batch.v"
    with open(out, "w") as f:
        hdl_verilog.generate(f, batch_depth=64, phys_size=16 << 20)
    lint(out, "mkclean_batch")


def lint(verilog, top_module):
    p = subprocess.run([str(verilator_bin() / "verilator"), "--lint-only", "-Wall", str(VLT),
                        str(verilog), "--top-module", top_module],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "%Warning" not in p.stderr and "%Error" not in p.stderr


def test_verilog_command_refuses_bad_configuration(tmp_path):
    import sys
    p = subprocess.run([sys.executable, "-m", "mkclean.hdl.verilog", "--tlb-entries", "0",
                        "-o", str(tmp_path / "x.v")], capture_output=True, text=True)
    assert p.returncode == 2 and "tlb_entries" in p.stderr and "Traceback" not in p.stderr

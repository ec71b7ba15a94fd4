"""`make verilog`'s output: a standalone module with readable ports, lint-clean under
`verilator --lint-only -Wall` with the waivers of hdl/mkclean_mmu.vlt."""

import io
import re
import subprocess

from mkclean.hdl import verilog as hdl_verilog
from mkclean.hdl.batch import SHARED_PORTS
from mkclean.sim.cosim.build import VLT, verilator_bin


def module_text(text, name):
    start = text.index(f"module {name}(")
    return text[start:text.index("endmodule", start)]


def ports(text, name):
    """``name``'s ports in ``text``: name -> (direction, width), in header order."""
    body = module_text(text, name)
    header = body[body.index("(") + 1:body.index(");")]
    decls = {m[3]: (m[1], int(m[2] or 0) + 1) for m in re.finditer(
        r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);", body, re.M)}
    return {port.strip(): decls[port.strip()] for port in header.split(",")}


def test_standalone_verilog_lints_clean(tmp_path):
    out = tmp_path / "mkclean_mmu.v"
    with open(out, "w") as f:
        hdl_verilog.generate(f, phys_size=64 << 20)
    text = out.read_text()
    found = ports(text, "mkclean_mmu")
    # The flat interface other designs and the co-simulation are written against.
    assert {"req_valid": ("input", 1), "req_kind": ("input", 2),
            "resp_cause": ("output", 4), "resp_paddr": ("output", 56),
            "satp_mode": ("input", 4), "satp_asid": ("input", 16), "priv": ("input", 2),
            "sfence_by_asid": ("input", 1), "wb_adr": ("output", 53),
            "wb_dat_r": ("input", 64), "wb_lock": ("output", 1), "wb_err": ("input", 1),
            "dbg_tlb_entries": ("output", 16 * 97), "cnt_walk_cycles": ("output", 48),
            "clk": ("input", 1), "rst": ("input", 1)}.items() <= found.items(), found
    lint(out, "mkclean_mmu")


def test_batch_top_lints_clean(tmp_path):
    """The co-simulation's (and the board's) top: queue, page-table mirror, snapshot."""
    out = tmp_path / "mkclean_batch.v"
    with open(out, "w") as f:
        hdl_verilog.generate(f, batch_depth=64, phys_size=16 << 20)
    text = out.read_text()
    found = ports(text, "mkclean_batch")
    standalone = io.StringIO()
    hdl_verilog.generate(standalone, phys_size=16 << 20)
    standalone = ports(standalone.getvalue(), "mkclean_mmu")
    assert {name: found[name] for name in SHARED_PORTS} == \
        {name: standalone[name] for name in SHARED_PORTS}
    assert {"batch_token", "batch_busy", "batch_next", "batch_tlb_snapshot",
            "mirror_enable", "mirror_line_wr_data"} <= set(found)
    assert not {"req_valid", "resp_valid", "dbg_tlb_entries"} & set(found)
    # What a host reaches by VPI (sim/cosim): the queue memories in the top module, the
    # mirror's in its instance pt_mirror.
    top = module_text(text, "mkclean_batch")
    assert re.search(r"reg \[2047:0\] batch_req \[3:0\];", top)
    assert re.search(r"reg \[1023:0\] batch_resp \[3:0\];", top)
    assert re.search(r"\\mkclean_batch\.pt_mirror\s+pt_mirror \(", top)
    mirror = module_text(text, "\\mkclean_batch.pt_mirror ")
    assert re.search(r"reg \[511:0\] lines \[", mirror)
    assert re.search(r"reg \[\d+:0\] frame_map \[", mirror)
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


def test_board_top_memory_is_written_once_not_word_by_word(tmp_path):
    """The board top's block RAM is one module without an initial value (hdl/boards/top.py
    BlockRam): its Verilog is the same size at 1 MiB as at 8 KiB, where Amaranth's own
    memory wrote a line a word (131,072 at 1 MiB, a minute of Amaranth and Yosys), and
    it lints clean."""
    from mkclean.hdl.boards.top import BLOCK_RAM_MODULE

    def board(phys_size):
        out = io.StringIO()
        hdl_verilog.generate(out, board=True, clk_freq=25e6, phys_size=phys_size)
        return out.getvalue()

    small, big = board(8 << 10), board(1 << 20)
    # Only widths differ (addresses, the TLB's PPN bits); a line a word would add 3 MB.
    assert abs(len(big) - len(small)) < 5000
    assert big.count(f"module {BLOCK_RAM_MODULE} ") == 1
    assert re.search(rf"{BLOCK_RAM_MODULE} #\(\s*\.ABITS\(32'd17\),\s*\.WORDS\(32'd131072\)",
                     big)
    ram = module_text(big, f"{BLOCK_RAM_MODULE} #")
    assert "initial" not in ram
    out = tmp_path / "mkclean_board.v"
    out.write_text(big)
    lint(out, "mkclean_board")

"""The board backend against the reference machine (sim/board/reference.py, the golden
model behind docs/bridge-protocol.md on a local socket).

The kernel model's workloads reach the golden backend's outcome through the link (the
same traps in the same order, the same files, the same memory to the byte, PTEs' A/D
bits included), with link faults in both directions too: garbage, lost bytes, cut and
corrupted frames, dropped frames cost retries, never a second execution or a bad write.
A silent machine ends in one line naming the port. And `mkclean run --backend board`
says all of that with its exit status.
"""

import hashlib
import dataclasses
import json
import re
import socket
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mkclean.sim.board import protocol as p
from mkclean.sim.board.backend import BoardHardware, make_board
from mkclean.sim.board.command import open_board, run_on_board
from mkclean.sim.board.link import KeptResponse, Link, LinkError, MachineError
from mkclean.sim.board.reference import Faults, ReferenceMachine
from mkclean.sim.cli import main as cli
from mkclean.sim.hw.seam import Kind, Trap
from mkclean.sim.kernel import Kernel
from mkclean.sim.model.backend import GoldenHardware
from mkclean.sim.workloads import WORKLOADS

PHYS = 16 << 20
ACCESSES = 1500
#: small files keep each run short; the same options go to both backends
OPTIONS = {"db": {"file_pages": 64, "msync_every": 500, "writeback_every": 300},
           "stream": {"file_pages": 32, "writeback_every": 200},
           "random": {}}
CONFIGS = [("db", "writenotify", "svadu"), ("db", "hwdirty", "svade"),
           ("stream", "legacy", "svadu"), ("random", "writenotify", "svade")]
#: a short wait for a response: the reference machine answers in well under 1 ms
TIMEOUT = 0.1


def kernel_opts(policy, ad, backend, base=0):
    return {"policy": policy, "ad": ad, "backend": backend, "store_dir": None,
            "phys_size": PHYS, "phys_base": base, "tlb_entries": 16, "plant": None,
            "trace": True}


def outcome(k, result):
    """What the kernel saw, and what memory holds at the end."""
    return {"trace": [list(t) for t in k.trace],
            "files": {f.name: hashlib.sha256(f.on_disk(0, f.size)).hexdigest()
                      for f in k.files.values()},
            "faults": result["faults"], "lost_writes": result["lost_writes"],
            "accesses": result["accesses"], "mismatches": result["mismatches"]}


_golden = {}


def on_golden(workload, policy, ad, seed=1, base=0):
    key = (workload, policy, ad, seed, base)
    if key not in _golden:
        opts = kernel_opts(policy, ad, "golden", base)
        k = Kernel(**opts)
        try:
            r = WORKLOADS[workload](k, seed, ACCESSES, **OPTIONS[workload]).run()
            _golden[key] = outcome(k, r), bytes(k.hw.mem.data)
        finally:
            k.close()
    return _golden[key]


def on_board(workload, policy, ad, seed=1, faults=None, base=0, **machine_opts):
    """The same run through a link to a reference machine (at ``base``, with
    ``machine_opts``); (outcome, the machine's memory, the run's result, the machine)."""
    opts = kernel_opts(policy, ad, "board", base)
    with ReferenceMachine(faults=faults, phys_size=PHYS, phys_base=base,
                          **machine_opts) as machine:
        hw = open_board(opts, machine.serve(), 115200, timeout=TIMEOUT)
        kept = {}

        class Keep(WORKLOADS[workload]):            # the outcome before the kernel closes
            def run(self, progress=None):
                r = super().run(progress)
                kept["outcome"] = outcome(self.k, r)
                return r
        Keep.name = workload
        try:
            r = run_on_board(hw, opts, Keep, seed, ACCESSES, OPTIONS[workload])
        finally:
            hw.close()
        return kept["outcome"], bytes(machine.core.hw.mem.data), r, machine


@pytest.mark.parametrize("config", CONFIGS, ids="-".join)
def test_board_reaches_the_golden_outcome(config):
    golden, golden_mem = on_golden(*config)
    board, board_mem, r, machine = on_board(*config)
    assert board == golden
    assert board_mem == golden_mem, "the machine's memory differs from the golden run's"
    assert r["invariant_violations"] == [] and r["step_checks"] > 0
    assert r["tlb_hits"] + r["tlb_misses"] > 0 and r["batches"] > 0
    assert r["link"]["retries"] == r["link"]["dropped_frames"] == 0
    # every request ran once: SEQ numbers follow each other, none twice in a row
    seqs = [seq for seq, _ in machine.core.executed]
    assert all((b - a) % 256 == 1 for a, b in zip(seqs, seqs[1:]))


def test_a_stale_writable_entry_stops_the_run():
    """A kernel that forgets page_mkclean's TLB flush: invariant 2, checked on the
    machine's TLB after a kernel step, ends the run with the result so far and the
    stale entries named."""
    opts = {**kernel_opts("writenotify", "svadu", "board"), "plant": "missing-flush"}
    with ReferenceMachine(phys_size=PHYS) as machine:
        hw = open_board(opts, machine.serve(), 115200, timeout=TIMEOUT)
        try:
            r = run_on_board(hw, opts, WORKLOADS["random"], 3, 4000, {})
        finally:
            hw.close()
    [violation] = r["invariant_violations"]
    assert "is clean but TLB entry" in violation and "lets a store through" in violation
    assert r["accesses"] < 4000 and r["step_checks"] > 0 and r["link"]["requests"] > 0


@pytest.mark.parametrize("direction", ["in", "out", "both"])
def test_link_faults_cost_retries_not_writes(direction):
    """One frame in twelve meets a fault (dropped, a byte lost, a byte flipped, garbage
    before it, cut in half) on its way to the machine, from it, or both: the run still
    reaches the golden outcome and memory, every request executed once."""
    config = ("db", "writenotify", "svadu")
    golden, golden_mem = on_golden(*config)
    faults = FaultsIn(direction, rate=1 / 12, seed=5)
    board, board_mem, r, machine = on_board(*config, faults=faults)
    kinds = {action for _, _, action in faults.done}
    assert kinds == set(Faults.ACTIONS), kinds
    assert board == golden
    assert board_mem == golden_mem
    assert r["link"]["retries"] > 0
    if direction != "in":
        assert r["link"]["dropped_frames"] > 0 and r["link"]["garbage_bytes"] > 0
    if direction != "out":
        assert machine.parser.dropped > 0
    seqs = [seq for seq, _ in machine.core.executed]
    assert all((b - a) % 256 == 1 for a, b in zip(seqs, seqs[1:])), "a request ran twice"


class FaultsIn(Faults):
    """:class:`Faults` on one direction only (or both)."""

    def __init__(self, direction, **kw):
        super().__init__(**kw)
        self.direction = direction

    def __call__(self, direction, data):
        if self.direction not in ("both", direction):
            return data
        return super().__call__(direction, data)


# -- one request at a time ---------------------------------------------------------------------

@pytest.fixture
def machine():
    m = ReferenceMachine(phys_size=1 << 20)
    yield m
    m.close()


def connect(m, timeout=TIMEOUT):
    return BoardHardware(Link(m.serve(), timeout=timeout), phys_size=1 << 20)


@pytest.mark.parametrize("action", Faults.ACTIONS)
@pytest.mark.parametrize("direction", ["in", "out"])
def test_a_cas_whose_frame_meets_a_fault_happens_once(action, direction):
    """CAS is the request a second execution would show: the retry's answer is the kept
    one (``found`` == ``expected``, the swap done), not a second compare that fails."""
    faults = Faults()
    with ReferenceMachine(faults=faults, phys_size=1 << 20) as m:
        hw = connect(m)
        hw.write_pte(0x1000, 0x11)
        hit = faults.count[direction]      # the next request's frame, or its response
        faults.plan[direction][hit] = action
        assert hw.cas_pte(0x1000, 0x11, 0x22) == 0x11
        assert hw.read_pte(0x1000) == 0x22
        assert faults.done == [(direction, hit, action)]
        # garbage before a frame costs nothing; anything else, one send again
        assert hw.link.retried == (action != "garbage")
        cas = [cmd for _, cmd in m.core.executed if cmd == p.Cmd.CAS]
        assert cas == [p.Cmd.CAS]
        hw.close()


def test_an_amo_whose_response_is_lost_swaps_once():
    faults = Faults()
    with ReferenceMachine(faults=faults, phys_size=1 << 20) as m:
        hw = connect(m)
        hw.write(0x2000, (5).to_bytes(8, "little"))
        faults.plan["out"][faults.count["out"]] = "drop"
        assert hw.access(0x2000, Kind.AMO, (6).to_bytes(8, "little")) == \
            (5).to_bytes(8, "little")
        assert hw.read(0x2000, 8) == (6).to_bytes(8, "little")
        assert hw.link.retried == 1
        hw.close()


@pytest.mark.parametrize("action", ["corrupt", "cut", "lose_byte"])
def test_a_bad_write_writes_nothing(action):
    """A WRITE whose every send is damaged on the way does nothing, and the host stops
    naming it; one damaged send, and its retry writes once."""
    faults = Faults()
    with ReferenceMachine(faults=faults, phys_size=1 << 20) as m:
        hw = connect(m)
        executed = len(m.core.executed)
        for i in range(4):
            faults.plan["in"][faults.count["in"] + i] = action
        with pytest.raises(LinkError, match=r"WRITE \(SEQ \d+\) failed after 4 sends"):
            hw.write(0x3000, b"\x77" * 64)
        assert m.core.executed[executed:] == []
        assert m.core.hw.mem.data[0x3000:0x3040] == bytes(64)
        assert m.parser.dropped >= 4 or action == "corrupt"
        faults.plan["in"][faults.count["in"]] = action
        hw.write(0x3000, b"\x77" * 64)
        assert m.core.executed[executed:] == [(hw.link.seq, p.Cmd.WRITE)]
        assert m.core.hw.mem.data[0x3000:0x3040] == b"\x77" * 64
        hw.close()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, (1 << 20) - 20000), st.binary(max_size=20000),
                          st.integers(0, 20000)), min_size=1, max_size=6))
def test_memory_at_any_offset_and_length(ops):
    """Reads and writes of any length at any offset (split over MAX_BODY, partial words
    merged) do what the golden backend's do."""
    golden = GoldenHardware(1 << 20)
    with ReferenceMachine(phys_size=1 << 20) as m:
        hw = connect(m)
        for addr, data, n in ops:
            hw.write(addr, data)
            golden.write(addr, data)
            assert hw.read(addr, n) == golden.read(addr, n)
        assert m.core.hw.mem.data == golden.mem.data
        hw.close()


def test_a_long_batch_is_split_and_a_trap_ends_it(machine):
    """A batch over the machine's max_batch and over MAX_BODY both ways: the results of
    the golden backend, up to the same trap (bare mode: memory ends at 1 MiB)."""
    golden = GoldenHardware(1 << 20)
    hw = connect(machine)
    page = bytes(range(256)) * 16
    accesses = [(0x1000 * i, Kind.STORE, page, 0) for i in range(1, 9)]
    accesses += [(0x1000 * i + 8 * j, Kind.LOAD, None, 8) for i in range(1, 9)
                 for j in range(100)]
    accesses += [(0x1000 * i, Kind.FETCH, None, 4096) for i in range(1, 9)]
    accesses += [((1 << 20) + 8, Kind.LOAD, None, 8), (0x1000, Kind.LOAD, None, 8)]
    for h in (hw, golden):
        h.set_csr(priv=1)
    got, trap = hw.access_batch(accesses)
    want, want_trap = golden.access_batch(accesses)
    assert got == want and len(got) == len(accesses) - 2
    assert trap == want_trap and isinstance(trap, Trap)
    assert hw.batches > (len(accesses) - 2) // machine.core.version.max_batch
    hw.close()


def test_tlb_and_counters_through_the_link(machine):
    """The TLB snapshot decodes to the golden model's entries; the counters are its."""
    opts = kernel_opts("writenotify", "svadu", "board")
    opts["phys_size"] = 1 << 20
    hw = open_board(opts, machine.serve(), 115200, timeout=TIMEOUT)
    k = Kernel(hw=hw, **{key: v for key, v in opts.items() if key != "backend"})
    seen = []
    # before each kernel step's first access, between requests: the machine is idle
    hw.step_check = lambda entries: seen.append((entries, list(machine.core.hw.tlb_entries())))
    WORKLOADS["db"](k, 1, 200, file_pages=16).run()
    assert len(seen) > 5 and all(got == want for got, want in seen)
    assert any(e.valid and e.w and e.d for entries, _ in seen for e in entries)
    c = hw.counters()
    for name in ("tlb_hits", "tlb_misses", "walks", "page_faults"):
        assert c[name] == machine.core.hw.mmu.counters[name], name
    assert c["link_requests"] > 0
    k.close()
    hw.close()


def test_bad_arguments_are_an_error_naming_the_command(machine):
    hw = connect(machine)
    with pytest.raises(MachineError, match=r"socket://127\.0\.0\.1:\d+: the machine answered "
                                           r"READ with BAD_ARG"):
        hw.link.request(p.Cmd.READ, p.READ.pack(1 << 30, 1))
    with pytest.raises(MachineError, match="answered command 0x42 with BAD_CMD"):
        hw.link.request(0x42)
    hw.close()


def test_a_fresh_host_meets_a_kept_response():
    """A host whose first SEQ is the last one an earlier host used gets that host's kept
    response to its RESET, and sends RESET again under the next SEQ."""
    with ReferenceMachine(phys_size=1 << 20) as m:
        url = m.serve()
        link = Link(url, timeout=TIMEOUT, seq=41)
        link.request(p.Cmd.VERSION)                 # SEQ 42 kept by the machine
        with pytest.raises(KeptResponse, match="answered by a kept VERSION response"):
            link.request(p.Cmd.READ, p.READ.pack(0, 1), next_seq=False)  # not run
        assert m.core.executed == [(42, p.Cmd.VERSION)]
        link.seq = 41           # the next host: its RESET goes out as SEQ 42
        hw = BoardHardware(link, phys_size=1 << 20)
        assert [cmd for _, cmd in m.core.executed[1:3]] == [p.Cmd.RESET, p.Cmd.VERSION]
        assert m.core.executed[1][0] == 43
        hw.close()


BASE = 0x8000_0000


def test_the_machine_s_physical_addresses_are_the_host_s():
    """At a phys_base, addresses go on the wire as they are: the host's memory is
    [phys_base, phys_base + phys_size), as the machine's."""
    with ReferenceMachine(phys_size=1 << 20, phys_base=BASE) as m:
        hw = connect(m)
        assert hw.phys_base == BASE and hw.phys_size == 1 << 20
        hw.write(BASE + 0x1234, b"hello")
        assert m.core.hw.mem.data[0x1234:0x1239] == b"hello"
        assert hw.read(BASE + 0x1230, 9)[4:] == b"hello"
        assert hw.cas_pte(BASE + 0x2000, 0, 7) == 0 and hw.read_pte(BASE + 0x2000) == 7
        assert m.core.hw.mem.read64(BASE + 0x2000) == 7
        with pytest.raises(MachineError, match="READ with BAD_ARG"):
            hw.link.request(p.Cmd.READ, p.READ.pack(0x2000, 1))     # below the base
        for call in (lambda: hw.read(0x1234, 1), lambda: hw.read(BASE - 8, 8),
                     lambda: hw.read(BASE + (1 << 20) - 4, 8),
                     lambda: hw.write_pte(BASE + (1 << 20), 0), lambda: hw.cas_pte(0, 0, 1)):
            with pytest.raises(ValueError, match=r"outside memory \[0x80000000, 0x80100000\)"):
                call()
        hw.close()
    with ReferenceMachine(phys_size=1 << 20, phys_base=BASE) as m:
        with pytest.raises(LinkError, match="the machine's memory starts at 0x80000000, the "
                                            "run asks for 0x0 \\(--phys-base\\)"):
            make_board(url=m.serve(), timeout=TIMEOUT, phys_base=0)
    with ReferenceMachine(phys_size=1 << 20, phys_base=BASE) as m:
        assert make_board(url=m.serve(), timeout=TIMEOUT, phys_base=BASE).phys_base == BASE


def test_a_machine_whose_memory_is_not_one_aligned_block():
    """A machine that says its 16 MiB start at 0x8080_0000: not one naturally aligned
    block, the host says so before any run (the reference machine would not be one)."""
    with pytest.raises(ValueError, match="phys_base 0x80800000 is not aligned to 16 MiB"):
        ReferenceMachine(phys_size=16 << 20, phys_base=BASE + (8 << 20))
    with ReferenceMachine(phys_size=16 << 20, phys_base=BASE) as m:
        m.core.version = dataclasses.replace(m.core.version, phys_base=BASE + (8 << 20))
        with pytest.raises(LinkError, match="the machine's memory cannot hold the kernel "
                                            "model's: phys_base 0x80800000 is not aligned "
                                            "to 16 MiB"):
            make_board(url=m.serve(), timeout=TIMEOUT)


@pytest.mark.parametrize("config", [("db", "writenotify", "svadu"),
                                    ("random", "hwdirty", "svade")], ids="-".join)
def test_board_at_a_base_reaches_the_golden_outcome_at_that_base(config):
    """The kernel on a reference machine at 0x8000_0000: the golden backend's outcome at
    that base, and its memory to the byte (the PPNs in the page tables and satp are the
    machine's addresses)."""
    golden, golden_mem = on_golden(*config, base=BASE)
    assert golden == on_golden(*config)[0]        # and the outcome at 0
    board, board_mem, r, machine = on_board(*config, base=BASE)
    assert board == golden
    assert board_mem == golden_mem
    assert r["invariant_violations"] == [] and r["step_checks"] > 0 and r["tlb_misses"] > 0


def test_a_stale_writable_entry_at_a_base_stops_the_run():
    """Invariant 2 on the machine's TLB at a base: its entries' PPNs are real pfns."""
    opts = {**kernel_opts("writenotify", "svadu", "board", BASE), "plant": "missing-flush"}
    with ReferenceMachine(phys_size=PHYS, phys_base=BASE) as machine:
        hw = open_board(opts, machine.serve(), 115200, timeout=TIMEOUT)
        try:
            r = run_on_board(hw, opts, WORKLOADS["random"], 3, 4000, {})
        finally:
            hw.close()
    [violation] = r["invariant_violations"]
    assert "is clean but TLB entry" in violation
    pfn = int(re.match(r"<Page pfn=(\d+) ", violation)[1])
    assert BASE >> 12 < pfn < (BASE + PHYS) >> 12 and f"ppn={pfn}," in violation


def test_a_machine_without_tlb_or_counters():
    """A machine with features 0 (QEMU's firmware bridge): the run reaches the golden
    outcome with no step check made and no TLB or COUNTERS request sent; the counters are
    the host's; its TLB size (0) is not compared with the run's."""
    config = ("db", "writenotify", "svadu")
    golden, golden_mem = on_golden(*config, base=BASE)
    board, board_mem, r, machine = on_board(*config, base=BASE, features=0)
    assert machine.core.version.tlb_entries == 0 and machine.core.version.features == 0
    assert board == golden and board_mem == golden_mem
    assert r["step_checks"] == 0 and r["batches"] > 0 and "cycles" not in r
    sent = {cmd for _, cmd in machine.core.executed}
    assert p.Cmd.TLB not in sent and p.Cmd.COUNTERS not in sent
    with ReferenceMachine(phys_size=1 << 20, features=p.Version.COUNTERS) as m:
        hw = make_board(url=m.serve(), timeout=TIMEOUT, tlb_entries=16)
        assert hw.tlb_entries() == [] and hw.counters()["walks"] == 0
        with pytest.raises(MachineError, match="answered TLB with BAD_CMD"):
            hw.link.request(p.Cmd.TLB)
        hw.close()
    with ReferenceMachine(phys_size=1 << 20, features=p.Version.TLB_SNAPSHOT) as m:
        hw = make_board(url=m.serve(), timeout=TIMEOUT, tlb_entries=16)
        assert len(hw.tlb_entries()) == 16
        c = hw.counters()
        assert {"batches", "step_checks", "steps_unchecked", "link_requests"} <= set(c)
        assert all(k in ("batches", "step_checks", "steps_unchecked") or k.startswith("link_")
                   for k in c)
        with pytest.raises(MachineError, match="answered COUNTERS with BAD_CMD"):
            hw.link.request(p.Cmd.COUNTERS)
        hw.close()


def test_a_loop_is_not_a_machine():
    """``loop://`` hands the host its own requests back: never an answer."""
    with pytest.raises(LinkError, match=r"^loop://: RESET \(SEQ 1\) failed after 4 sends: "
                                        r"only frames that were not its answer \(4: "):
        make_board(url="loop://", timeout=TIMEOUT)


# -- a machine that does not answer ----------------------------------------------------------

def silent_link_error(faults, timeout=TIMEOUT):
    with ReferenceMachine(faults=faults, phys_size=1 << 20) as m:
        url = m.serve()
        start = time.monotonic()
        with pytest.raises(LinkError) as e:
            make_board(phys_size=1 << 20, url=url, timeout=timeout)
        return str(e.value), url, time.monotonic() - start


def test_a_silent_machine_is_one_clear_error():
    message, url, took = silent_link_error(Faults(outgoing={0: "silent"}))
    assert message == f"{url}: RESET (SEQ 1) failed after 4 sends: no answer within 0.1 s"
    assert 4 * TIMEOUT <= took < 4 * TIMEOUT + 2


def test_garbage_only_is_said():
    message, url, _ = silent_link_error(lambda d, data: b"\x00noise" if d == "out" else data)
    assert message == f"{url}: RESET (SEQ 1) failed after 4 sends: garbage only (24 bytes)"


def test_corrupt_frames_only_are_said():
    def corrupt(d, data):
        return data[:-1] + bytes([data[-1] ^ 1]) if d == "out" else data
    message, url, _ = silent_link_error(corrupt)
    assert message.startswith(f"{url}: RESET (SEQ 1) failed after 4 sends: only frames "
                              f"with a bad CRC or length")


# -- mkclean run --backend board ----------------------------------------------------------------

def run_cli(*argv):
    return cli(["run", "--no-progress", "--backend", "board", "--phys-mb", "16", *argv])


def one_line(capsys):
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def test_run_command_matches_golden(tmp_path, capsys):
    args = ["--workload", "db", "--accesses", "2000", "--seed", "4"]
    for name, value in OPTIONS["db"].items():
        args += ["--set", f"{name}={value}"]
    assert cli(["run", "--no-progress", "--phys-mb", "16", *args, "--json",
                str(tmp_path / "golden.json")]) == 0
    faults = Faults(incoming={80: "cut"}, outgoing={50: "drop", 120: "corrupt"})
    with ReferenceMachine(faults=faults, phys_size=PHYS) as m:
        assert run_cli("--port", m.serve(), *args, "--json", str(tmp_path / "board.json")) == 0
    out = capsys.readouterr().out
    golden = json.loads((tmp_path / "golden.json").read_text())
    board = json.loads((tmp_path / "board.json").read_text())
    for key in ("accesses", "faults", "sfences", "mkclean_ptes", "writeback_pages",
                "lost_writes", "dirty_known", "dirty_real", "mismatches"):
        assert board[key] == golden[key], key
    assert board["backend"] == "board" and board["step_checks"] > 0
    assert board["link"]["retries"] == 3 and len(faults.done) == 3
    assert board["port"].startswith("socket://") and "board " in out and "requests to" in out


@pytest.mark.parametrize("argv,message", [
    ([], "--backend board needs --port URL"),
    (["--port", "socket://127.0.0.1:1"], "cannot open socket://127.0.0.1:1"),
    (["--port", "/dev/ttyNOPE"], "cannot open /dev/ttyNOPE"),
    (["--port", "nope://x"], "cannot open nope://x"),
    (["--port", "socket://127.0.0.1"], "a socket's URL is socket://HOST:PORT"),
    (["--port", "socket://127.0.0.1:1", "--baud", "fast"], "--baud 'fast' is not an integer"),
])
def test_run_command_bad_input(argv, message, capsys):
    assert run_cli(*argv) == 2
    assert message in one_line(capsys)


def test_run_command_port_without_board(capsys):
    assert cli(["run", "--no-progress", "--port", "socket://127.0.0.1:1"]) == 2
    assert "--port is for --backend board" in one_line(capsys)


def test_run_command_machine_too_small_or_silent(capsys):
    with ReferenceMachine(phys_size=1 << 20) as m:
        assert run_cli("--port", m.serve()) == 2
    assert "has 1 MiB of memory" in one_line(capsys)
    with ReferenceMachine(phys_size=PHYS, tlb_entries=8) as m:
        assert run_cli("--port", m.serve()) == 2
    assert "the machine's TLB has 8 entries, the run asks for 16 (--tlb-entries)" in \
        one_line(capsys)
    with ReferenceMachine(faults=Faults(outgoing={0: "silent"}), phys_size=PHYS) as m:
        url = m.serve()
        assert run_cli("--port", url) == 2
    assert one_line(capsys) == (f"mkclean run: {url}: RESET (SEQ 1) failed after 4 sends: "
                                f"no answer within 1 s")


def test_run_command_on_a_machine_at_a_base(tmp_path, capsys):
    """A machine at 0x8000_0000 without TLB snapshot or counters (QEMU's firmware bridge
    says so): the run takes the machine's base, reaches the golden backend's figures at
    that base, and says what it could not check; a --phys-base that differs is refused."""
    args = ["--workload", "db", "--accesses", "2000", "--seed", "4"]
    for name, value in OPTIONS["db"].items():
        args += ["--set", f"{name}={value}"]
    assert cli(["run", "--no-progress", "--phys-mb", "16", "--phys-base", "0x80000000", *args,
                "--json", str(tmp_path / "golden.json")]) == 0
    with ReferenceMachine(phys_size=PHYS, phys_base=BASE, features=0) as m:
        assert run_cli("--port", m.serve(), *args, "--json", str(tmp_path / "board.json")) == 0
    out = capsys.readouterr().out
    golden = json.loads((tmp_path / "golden.json").read_text())
    board = json.loads((tmp_path / "board.json").read_text())
    for key in ("phys_base", "accesses", "faults", "traps", "sfences", "mkclean_ptes",
                "writeback_pages", "lost_writes", "dirty_known", "dirty_real"):
        assert board[key] == golden[key], key
    assert board["phys_base"] == BASE and board["step_checks"] == 0 and "cycles" not in board
    assert board["steps_unchecked"] > 0         # each kernel step, with no TLB to check
    assert "db on board (writenotify, svadu), seed 4, memory at 0x80000000" in out
    assert (f"machine         no counters, invariant 2 not checked in "
            f"{board['steps_unchecked']:,} kernel steps") in out
    with ReferenceMachine(phys_size=PHYS, phys_base=BASE) as m:
        url = m.serve()
        assert run_cli("--port", url, "--phys-base", "0") == 2
    assert one_line(capsys) == (f"mkclean run: {url}: the machine's memory starts at "
                                f"0x80000000, the run asks for 0x0 (--phys-base)")


def test_run_command_machine_goes_silent_mid_run(capsys):
    """The link dies during the run: one line with how far it got, the port, the command
    and the replay command; exit status 1."""
    with ReferenceMachine(faults=Faults(outgoing={300: "silent"}), phys_size=PHYS) as m:
        url = m.serve()
        assert run_cli("--port", url, "--accesses", "5000") == 1
    err = one_line(capsys)
    assert err.startswith("mkclean run: the link failed after ")
    assert f"{url}: " in err and "failed after 4 sends: no answer within 1 s" in err
    assert "replay: mkclean run --backend board" in err and f"--port {url}" in err


def test_run_command_names_the_board_in_a_failed_check(capsys):
    """A stale writable TLB entry on the machine: one line naming the board backend's TLB
    (no RTL, no cycle: a board has no waves), and the replay command; exit status 1."""
    with ReferenceMachine(phys_size=PHYS) as m:
        url = m.serve()
        assert run_cli("--port", url, "--workload", "random", "--accesses", "4000", "--seed",
                       "3", "--plant", "missing-flush") == 1
    err = one_line(capsys)
    assert err.startswith("mkclean run: FAILED: invariant 2 on the board backend's TLB: <Page ")
    assert "RTL" not in err and "cycle" not in err and "waves" not in err
    assert err.endswith(f"; replay: mkclean run --backend board --workload random --seed 3 "
                        f"--accesses 4000 --policy writenotify --ad svadu --phys-mb 16 "
                        f"--tlb-entries 16 --plant missing-flush --port {url} --baud 115200")


def test_two_runs_on_one_reference_machine_process(capsys):
    """``python -m mkclean.sim.board.reference`` serves runs one after another, its
    memory kept between them as a board's is: each host starts with RESET."""
    machine = subprocess.Popen([sys.executable, "-m", "mkclean.sim.board.reference",
                                "--phys-mb", "16", "--connections", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = machine.stdout.readline().strip()
        assert url.startswith("socket://127.0.0.1:"), machine.stderr.read()
        for seed in ("1", "2"):
            assert run_cli("--port", url, "--accesses", "800", "--seed", seed) == 0
            assert "lost writes                0" in capsys.readouterr().out
        assert machine.wait(timeout=30) == 0
    finally:
        if machine.poll() is None:
            machine.kill()
            machine.wait()


def test_a_response_still_arriving_is_waited_for():
    """A slow line: the response's bytes come 70 ms apart, the whole over five times the
    timeout; no byte is 100 ms late, so the host waits and does not send again."""
    listener = socket.create_server(("127.0.0.1", 0))
    sent = []

    def slow_machine():
        conn, _ = listener.accept()
        with conn:
            parser = p.Parser()
            while not (frames := parser.feed(conn.recv(100))):
                pass
            f = frames[0]
            response = p.encode_frame(f.seq, f.cmd | p.RESPONSE, bytes([p.Status.OK]))
            for i in range(len(response)):
                conn.sendall(response[i:i + 1])
                sent.append(time.monotonic())
                time.sleep(0.07)
            conn.settimeout(0.3)
            try:
                sent.append(conn.recv(100))     # a second send of the request, if any
            except TimeoutError:
                pass
    thread = threading.Thread(target=slow_machine, daemon=True)
    thread.start()
    link = Link(f"socket://127.0.0.1:{listener.getsockname()[1]}", timeout=0.1)
    try:
        assert link.request(p.Cmd.RESET) == b""
        thread.join(5)
        assert link.retried == 0 and all(isinstance(t, float) for t in sent)
        assert sent[-1] - sent[0] > 5 * 0.1
    finally:
        link.close()
        listener.close()


def test_the_registry_without_a_port_says_so():
    with pytest.raises(ValueError, match="the board backend needs a port"):
        Kernel(backend="board")


# -- the other end: the gateware bridge ----------------------------------------------------------

class SimulatedLine:
    """A pyserial port whose other end is the gateware's bridge (hdl/boards/top.py's
    BoardCore: bridge, MMU, block RAM) in Amaranth's simulator, run as bytes are
    awaited."""

    CHUNK = 200     # cycles simulated at a time
    LIMIT = 200     # chunks a read runs before it returns what there is

    def __init__(self, phys_size):
        from amaranth.sim import Simulator
        from mkclean.hdl.boards.top import BoardCore
        dut = BoardCore(phys_size=phys_size, tlb_entries=16, frame_timeout=1_000_000)
        self.inq, self.outq = [], []
        self.sim = Simulator(dut)
        self.sim.add_clock(1e-6)
        self.now = 0.0
        inq, outq = self.inq, self.outq

        async def pump(ctx):
            ctx.set(dut.tx.ready, 1)
            presented = False
            async for _, _, rx_ready, tx_valid, tx_byte in ctx.tick().sample(
                    dut.rx.ready, dut.tx.valid, dut.tx.payload):
                if presented and rx_ready:
                    inq.pop(0)
                if tx_valid:
                    outq.append(tx_byte)
                presented = bool(inq)
                ctx.set(dut.rx.valid, presented)
                if presented:
                    ctx.set(dut.rx.payload, inq[0])
        self.sim.add_process(pump)

    def __call__(self, url, **options):         # serial.serial_for_url's place
        return self

    def write(self, data):
        self.inq.extend(data)

    def flush(self):
        pass

    def close(self):
        pass

    @property
    def in_waiting(self):
        return len(self.outq)

    def read(self, n):
        for _ in range(self.LIMIT):
            if len(self.outq) >= n:
                break
            self.now += self.CHUNK * 1e-6
            self.sim.run_until(self.now)
        out = bytes(self.outq[:n])
        del self.outq[:n]
        return out


def test_the_host_speaks_to_the_gateware_bridge(monkeypatch):
    """The two ends written from the one document agree: memory at any offset, CAS, an
    ACCESS batch up to its trap, the TLB and counters, as the golden backend has them."""
    phys = 64 << 10
    monkeypatch.setattr("mkclean.sim.board.link.serial.serial_for_url", SimulatedLine(phys))
    hw = make_board(phys_size=phys, tlb_entries=16, url="gateware://", timeout=60)
    golden = GoldenHardware(phys, 16)
    assert hw.machine == p.Version(1, 0, phys, 16, hw.machine.max_batch, 3)
    for h in (hw, golden):
        h.write(0x1003, b"hello, gateware")
        h.write_pte(0x2000, 0x11)
        h.set_csr(priv=1)
    assert hw.read(0x1000, 24) == golden.read(0x1000, 24)
    assert hw.cas_pte(0x2000, 0x11, 0x22) == 0x11 and hw.cas_pte(0x2000, 0x11, 0x33) == 0x22
    assert hw.read_pte(0x2000) == 0x22
    golden.cas_pte(0x2000, 0x11, 0x22)
    batch = [(0x1000, Kind.LOAD, None, 16), (0x3000, Kind.STORE, b"x" * 100, 0),
             (0x3000, Kind.AMO, (7).to_bytes(8, "little"), 0), (0x3000, Kind.FETCH, None, 8),
             (phys + 8, Kind.LOAD, None, 8), (0, Kind.LOAD, None, 8)]
    assert hw.access_batch(batch) == golden.access_batch(batch)
    assert hw.read(0x3000, 128) == golden.read(0x3000, 128)
    assert hw.tlb_entries() == golden.tlb_entries()
    c = hw.counters()
    assert c["access_faults"] == 1 and c["cycles"] > 0 and c["link_retries"] == 0
    hw.close()

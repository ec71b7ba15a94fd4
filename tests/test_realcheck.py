"""mkclean realcheck: the kernel model against the host's Linux kernel.

The differential check itself runs on a few seeds here (the host's Linux decides); a
planted model bug must be found, shrunk and replayed; the generator, the comparison, the
named differences and the shrinker are checked on their own.
"""

import platform

import pytest

from mkclean.sim.cli import main as cli
from mkclean.sim.realcheck.check import DIFFERENCES, Verdict, balanced, compare, shrink
from mkclean.sim.realcheck.model import ModelRun, run_on_model
from mkclean.sim.realcheck.program import ARENA, Program, generate, parse

PAGE = 4096


def test_programs_are_the_same_for_a_seed_and_survive_their_text():
    a, b = generate(7), generate(7)
    assert a == b and a != generate(8)
    assert parse(a.text()) == a
    assert balanced(a.ops)
    assert {op[0] for op in generate(3, 400).ops} >= {
        "mmap", "munmap", "mprotect", "msync", "load", "store", "pwrite", "ftruncate", "fork",
        "exit"}


@pytest.mark.parametrize("text, why", [
    ("load 0x10 0x20\n", "line 1: load takes addr"),
    ("file 0 10\nfrobnicate 1\n", "line 2: unknown op 'frobnicate'"),
    ("file 0 10\nexit\n", "line 2: exit without a fork"),
    ("file 0 10\nfork\n", "1 fork(s) without their exit"),
    ("file 0 10\npwrite 3 0 1 1\n", "line 2: no file 3"),
    ("load x\n", "line 1: 'load x': fields must be integers"),
    ("load 1\nfile 0 1\n", "line 2: files come first"),
])
def test_a_bad_program_is_refused_naming_its_line(text, why):
    with pytest.raises(ValueError, match=why.replace("(", r"\(").replace(")", r"\)")):
        parse(text)


def test_shrink_keeps_what_the_failure_needs_and_forks_with_their_exits():
    ops = [("load", ARENA + i * PAGE) for i in range(30)]
    ops[11:11] = [("fork",), ("store", ARENA, 5), ("load", ARENA + 99), ("exit",)]
    program = Program((PAGE,), tuple(ops))

    def fails(p):     # needs the store (inside the fork) and the load of page 20
        assert balanced(p.ops), p.ops        # never asked of what the executor refuses
        return ("store", ARENA, 5) in p.ops and ("load", ARENA + 20 * PAGE) in p.ops

    small, runs = shrink(program, fails)
    assert set(small.ops) == {("store", ARENA, 5), ("load", ARENA + 20 * PAGE)}
    assert balanced(small.ops) and 0 < runs < 600


class _Host:
    def __init__(self, results, machine="x86_64", files=None):
        self.results, self.machine, self.files = results, machine, files or {}


def test_a_named_difference_applies_only_on_its_machines_and_ends_the_comparison():
    program = Program((), (("mmap", ARENA, PAGE, 4, 0x22, -1, 0), ("load", ARENA),
                           ("load", ARENA)))
    model = run_on_model(program)
    assert model.notes == {1: "exec-only-load", 2: "exec-only-load"}
    assert model.results[1] == ("sig", 11, 0)
    host = [("ok", ARENA, None), ("ok", 0, 1), ("ok", 0, 0)]
    assert compare(program, _Host(host), model) == Verdict(None, "exec-only-load", 1)
    risc = compare(program, _Host(host, machine="riscv64"), model)
    assert risc.difference["index"] == 1 and risc.named is None
    assert "exec-only-load" in DIFFERENCES


def test_exec_readahead_is_named_from_the_first_fault_in_an_exec_file_mapping_on():
    # Linux 6.18 reads ahead around a fault in a VM_EXEC file mapping despite MADV_RANDOM;
    # the pages it read stay cached for every later fault-around, so the rest of the
    # program is not comparable.
    program = Program((16 * PAGE,), (("mmap", ARENA, 8 * PAGE, 5, 0x11, 0, 0),
                                     ("load", ARENA), ("load", ARENA + PAGE)))
    model = run_on_model(program)
    assert model.notes == {1: "exec-readahead", 2: "exec-readahead"}
    host = [("ok", ARENA, None), ("ok", 0, 1), ("ok", 0, 0)]
    assert model.results[2] == ("ok", 0, 1)
    assert compare(program, _Host(host), model) == Verdict(None, "exec-readahead", 2)
    plain = Program((16 * PAGE,), (("mmap", ARENA, 8 * PAGE, 1, 0x11, 0, 0),
                                   ("load", ARENA), ("load", ARENA + PAGE)))
    assert run_on_model(plain).notes == {}


def test_files_are_compared_byte_for_byte():
    program = Program((10,), ())
    model = ModelRun([], {0: b"\0" * 10})
    assert compare(program, _Host([], files={0: b"\0" * 10}), model).difference is None
    d = compare(program, _Host([], files={0: b"\0" * 4 + b"x" + b"\0" * 5}), model).difference
    assert (d["where"], d["offset"], d["host_byte"], d["model_byte"]) == ("file", 4, 120, 0)


def test_the_model_agrees_with_the_host_kernel(capsys, tmp_path):
    """The differential check on a few seeds: every result, fault count and file."""
    status = cli(["realcheck", "--seeds", "1-30", "--ops", "60", "--no-progress", "--out", str(tmp_path),
                  "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "PASSED: 0 of 30 programs differ from Linux" in out
    assert "realcheck: Linux " in out


@pytest.mark.parametrize("plant, found", [
    # The store fault forgets set_page_dirty: msync's writeback skips the page and leaves
    # its PTE writable, so the next store takes no fault where Linux's takes one.
    ("missing-dirty", "fault"),
    # Writeback cleans the page but its data never reaches the file.
    ("missing-writeback", "file f"),
])
def test_a_planted_model_bug_is_found_shrunk_and_replayed(plant, found, capsys, tmp_path):
    status = cli(["realcheck", "--seeds", "1-10", "--ops", "60", "--no-progress", "--out",
                  str(tmp_path), "--plant", plant])
    out = capsys.readouterr().out
    assert status == 1, out
    assert "FAILED" in out and "minimal program" in out and "replay: mkclean realcheck" in out
    saved = sorted(tmp_path.glob("seed-*.prog"))
    assert saved, out
    small = parse(saved[0].read_text())
    assert len(small.ops) <= 6, small.text()          # a mapping, a store: little more
    assert cli(["realcheck", "--replay", str(saved[0]), "--plant", plant]) == 1
    replay = capsys.readouterr().out
    assert "DIFFERS: " in replay and found in replay.split("DIFFERS: ")[1]
    assert cli(["realcheck", "--replay", str(saved[0])]) == 0      # the model without it
    assert "SAME" in capsys.readouterr().out


def test_a_host_that_is_not_linux_is_told_so(monkeypatch, capsys):
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    assert cli(["realcheck", "--seeds", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "needs Linux" in err and "Darwin" in err


@pytest.mark.parametrize("args, why", [
    (["--seeds", "5-1"], "--seeds range '5-1' is empty"),
    (["--ops", "0"], "--ops must be at least 1"),
    (["--replay", "/nonexistent/p.prog"], "--replay /nonexistent/p.prog: No such file"),
    (["--plant", "nope"], "--plant 'nope' is not one of"),
    (["--fault-around-bytes", "x"], "--fault-around-bytes 'x' is not an integer"),
])
def test_bad_input_is_named(args, why, capsys):
    assert cli(["realcheck", *args, "--no-progress"]) == 2
    assert why in capsys.readouterr().err

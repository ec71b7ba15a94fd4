"""`mkclean run`'s input: every workload option with bad values, outputs that cannot be
written, and a run that stops (out of memory) end in one line naming the problem, before
any work for bad input (exit 2), with the replay command for a failed run (exit 1)."""

import pytest

from mkclean.sim.cli import main as cli
from mkclean.sim.workloads import WORKLOADS


def run_cli(*argv):
    return cli(["run", "--no-progress", "--accesses", "500", *argv])


def one_line(capsys):
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def bad_values():
    """(workload, option, value): below the range, above it, and not a number, for every
    option every workload declares."""
    for name, cls in WORKLOADS.items():
        for key, option in cls.options.items():
            if option.minimum is not None:
                low = option.minimum - (1 if isinstance(option.default, int) else 0.5)
                yield name, key, str(low)
            if option.maximum is not None:
                high = option.maximum + (1 if isinstance(option.default, int) else 0.5)
                yield name, key, str(high)
            yield name, key, "many"


@pytest.mark.parametrize("workload,key,value", list(bad_values()))
def test_bad_option_value(workload, key, value, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli("--workload", workload, "--set", f"{key}={value}",
                   "--json", "r.json") == 2
    assert key in one_line(capsys)
    assert not (tmp_path / "r.json").exists()        # refused before any work


def test_every_option_has_a_range_and_help():
    for cls in WORKLOADS.values():
        for key, option in cls.options.items():
            assert option.minimum is not None and option.help, (cls.name, key)
            assert option.check(key, option.default) == option.default


@pytest.mark.parametrize("workload,pairs,needle", [
    ("random", ["procs=6"], "max_procs (5) must be at least procs (6)"),
    ("random", ["procs=0"], "procs must be at least 1"),
    ("db", ["hot_pages=-3"], "hot_pages must be at least 1"),
    ("stream", ["record=300"], "record must divide 4096"),
    ("db", ["hot_pages"], "the db workload's options are"),
    ("db", ["hot_fraction=nan"], "hot_fraction"),
])
def test_bad_option_combination(workload, pairs, needle, capsys):
    assert run_cli("--workload", workload, *(f"--set={p}" for p in pairs)) == 2
    assert needle in one_line(capsys)


def test_option_in_range_is_taken(capsys):
    assert run_cli("--workload", "db", "--set", "hot_pages=3", "--set", "file_pages=0x40",
                   "--set", "hot_fraction=0.5") == 0


@pytest.mark.parametrize("flag", ["--json", "--plot"])
def test_output_file_not_writable(flag, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert run_cli(flag, str(blocker / "sub" / "out")) == 2     # a file where a folder must be
    assert flag in one_line(capsys)
    assert run_cli(flag, str(tmp_path)) == 2                     # a folder where a file must be
    assert "is a folder" in one_line(capsys)


def test_store_dir_not_writable(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert run_cli("--store-dir", str(blocker)) == 2
    assert "is a file, not a folder" in one_line(capsys)
    assert run_cli("--store-dir", str(blocker / "sub")) == 2
    assert "--store-dir" in one_line(capsys)


def test_output_refused_by_the_file_system(capsys):
    # /proc refuses new files even to root, whom permission bits do not stop: the check
    # must try the write.
    assert run_cli("--json", "/proc/mkclean.json") == 2
    assert "/proc/mkclean.json" in one_line(capsys)


@pytest.mark.parametrize("argv,message", [
    (["--phys-base", "high"], "--phys-base 'high' is not an integer"),
    (["--phys-base", "-4096"], "--phys-base must be at least 0, got -4096"),
    (["--phys-mb", "32", "--phys-base", "0x81000000"],
     "--phys-base: phys_base 0x81000000 is not aligned to 32 MiB, the power of two at or "
     "above phys_size 0x2000000 (--phys-mb 32)"),
    (["--phys-base", "0x4000"], "--phys-base: phys_base 0x4000 is not aligned to 64 MiB"),
    (["--phys-mb", "1", "--phys-base", str(1 << 56)],
     "ends beyond the 56-bit physical address space"),
    # QEMU's RAM holds the firmware at 0x8000_0000: the window must lie above it
    (["--backend", "qemu", "--phys-base", "0x8000_0000"],
     "is not in QEMU's RAM above the firmware"),
])
def test_bad_phys_base(argv, message, capsys):
    assert run_cli(*argv) == 2
    assert message in one_line(capsys)


def test_run_that_runs_out_of_memory(capsys):
    """A workload bigger than the machine stops with one line and the replay command."""
    assert run_cli("--workload", "random", "--phys-mb", "1", "--set", "files=64",
                   "--set", "file_pages=4096", "--seed", "4") == 1
    err = one_line(capsys)
    assert "stopped" in err and "replay: mkclean run --backend golden --workload random " \
        "--seed 4 --accesses 500" in err and "--set files=64" in err


def test_rtl_run_says_it_builds_first(monkeypatch, capsys, tmp_path):
    """The first `mkclean run --backend rtl` says that it is building the simulator before
    anything else (not a progress bar stuck at a few accesses a second)."""
    from mkclean.sim.cosim import build, jobs
    assert not build.is_built(build_root=tmp_path)           # nothing there yet
    events = []
    monkeypatch.setattr(build, "is_built", lambda params, trace_format=None: False)
    monkeypatch.setattr(build, "build",
                        lambda params, trace_format=None: events.append("build"))

    def run_job(*args, **kwargs):
        events.append("run")
        raise jobs.ToolError("stop here")
    monkeypatch.setattr(jobs, "run_job", run_job)
    assert run_cli("--backend", "rtl") == 2
    err = capsys.readouterr().err
    assert err.index("building the RTL simulator") < err.index("stop here")
    assert events == ["build", "run"]


@pytest.mark.parametrize("argv,needle", [
    (["--waves", "w"], "--waves records the RTL's signals: it needs --backend rtl"),
    (["--backend", "rtl", "--waves", "w", "--waves-format", "lxt"],
     "--waves-format 'lxt': choose one of fst, vcd"),
    (["--backend", "rtl", "--waves", "w", "--waves-at", "soon"],
     "--waves-at 'soon' is not an integer"),
    (["--backend", "rtl", "--waves", "w", "--waves-at", "-5"], "--waves-at must be at least 0"),
    (["--backend", "rtl", "--waves", "w", "--waves-window", "x"],
     "--waves-window 'x' is not an integer"),
    (["--backend", "rtl", "--waves-at", "100"], "--waves-at needs --waves DIR"),
    (["--backend", "rtl", "--waves", "afile"], "--waves 'afile' is a file, not a folder"),
])
def test_bad_waves_options(argv, needle, capsys, tmp_path, monkeypatch):
    """Refused before any build or run."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("")
    assert run_cli(*argv) == 2
    assert needle in one_line(capsys)
    assert not (tmp_path / "w").exists()

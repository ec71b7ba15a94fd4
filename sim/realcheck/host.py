"""The host half of realcheck: a program (the text format of executor.c's header comment)
run on the host's own Linux kernel by the C executor, its output read back strictly.

:func:`executor` builds the executor (``make build/realcheck-executor``);
:func:`run_on_host` runs a program in a fresh directory on a disk file system and returns
a :class:`HostRun`: the kernel's identity, one ``(status, value, faults)`` per op, and each
declared file's final contents. :class:`HostError` says the host cannot run the check;
bad input (the executor's exit status 2) is a ``ValueError``.
"""

import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXECUTOR = REPO / "build" / "realcheck-executor"
#: Where each run's directory is made unless told otherwise: the repository's build/, a
#: disk file system (/tmp may be tmpfs, and the reference is a disk file system's).
TMP_ROOT = REPO / "build" / "realcheck-tmp"

#: statfs's f_type of the file systems a run is likely to meet, for printing.
FS_NAMES = {0xEF53: "ext4", 0x01021994: "tmpfs", 0x58465342: "xfs", 0x9123683E: "btrfs",
            0x794C7630: "overlayfs"}


class HostError(Exception):
    """The host cannot run the check (not Linux, no C compiler, the executor does not
    build, fails its setup or says something that does not parse); the message names the
    problem in one line."""


@dataclass(frozen=True)
class HostRun:
    """What the host's kernel did with a program.

    ``results`` has one ``(status, value, faults)`` per op, in program order: status "ok",
    "err" or "sig"; value mmap's address, the loaded byte, pwrite's count, 0 for the other
    ops' success, the errno of "err", the signal of "sig", or None for a store's "-";
    faults the access's page faults (getrusage's minor + major) for load and store, None
    for the other ops. ``files`` holds each declared file's final contents by number."""
    kernel: str
    machine: str
    page_size: int
    block_size: int
    fs_type: int
    results: list[tuple]
    files: dict[int, bytes]


def _require_linux() -> None:
    system = platform.system()
    if system != "Linux":
        raise HostError(f"realcheck needs Linux: this host is {system}; the host kernel is "
                        f"the reference")


def executor() -> Path:
    """The executor's binary, built (``make -C REPO build/realcheck-executor``) if its
    source changed; make decides, so an up-to-date build costs one make run."""
    _require_linux()
    if not (REPO / "sim" / "realcheck" / "executor.c").exists():
        raise HostError(f"the executor's source is not at {REPO / 'sim/realcheck/executor.c'} "
                        f"(a source checkout of mkclean is needed)")
    if shutil.which("make") is None:
        raise HostError("make is not installed (Debian: apt-get install build-essential)")
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        raise HostError("no C compiler (cc) is installed (Debian: apt-get install "
                        "build-essential)")
    done = subprocess.run(["make", "-s", "-C", str(REPO), "build/realcheck-executor"],
                          capture_output=True, text=True)
    if done.returncode:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise HostError(f"make -C {REPO} build/realcheck-executor failed: " + " | ".join(tail))
    if not EXECUTOR.exists():
        raise HostError(f"make -C {REPO} build/realcheck-executor made no {EXECUTOR}")
    return EXECUTOR


def _program(text: str) -> tuple[list[str], list[int]]:
    """The program's op names in order and its declared file numbers (the executor has
    checked the program; this reads only what parsing its output needs)."""
    ops, files = [], []
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if fields[0] == "file":
            files.append(int(fields[1], 0))
        else:
            ops.append(fields[0])
    return ops, files


def _integer(text: str, where: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise HostError(f"the executor's {where}: {text!r} is not a number") from None


def _result(op: str, fields: list[str], where: str) -> tuple:
    """One op's result line, after its index, as (status, value, faults)."""
    access = op in ("load", "store")
    if len(fields) != (3 if access else 2):
        raise HostError(f"the executor's {where} ({op}) has {len(fields)} fields after "
                        f"the index, not {3 if access else 2}: {' '.join(fields)!r}")
    status, value = fields[0], fields[1]
    allowed = ("ok", "sig") if access else ("ok", "err")
    if status not in allowed:
        raise HostError(f"the executor's {where} ({op}): status {status!r}, not "
                        f"{' or '.join(allowed)}")
    if op == "store" and status == "ok":
        if value != "-":
            raise HostError(f"the executor's {where} (store): value {value!r}, not '-'")
        parsed = None
    elif op == "mmap" and status == "ok":
        if not value.startswith("0x"):
            raise HostError(f"the executor's {where} (mmap): address {value!r} is not 0x-hex")
        parsed = _integer(value, where)
    else:
        parsed = _integer(value, where)
    faults = _integer(fields[2], where) if access else None
    return status, parsed, faults


def _parse(stdout: str, ops: list[str]) -> tuple[dict, list[tuple]]:
    lines = stdout.splitlines()
    if not lines:
        raise HostError("the executor printed nothing")
    head = lines[0].split()
    if (len(head) != 9 or head[0] != "linux" or head[3] != "pagesize"
            or head[5] != "blocksize" or head[7] != "fstype"):
        raise HostError(f"the executor's header line does not parse: {lines[0]!r}")
    info = dict(kernel=head[1], machine=head[2], page_size=_integer(head[4], "header"),
                block_size=_integer(head[6], "header"), fs_type=_integer(head[8], "header"))
    if lines[-1] != "end":
        raise HostError(f"the executor's output has no 'end' line (it printed "
                        f"{len(lines) - 1} lines after its header)")
    body = lines[1:-1]
    if len(body) != len(ops):
        raise HostError(f"the executor printed {len(body)} result lines for a program of "
                        f"{len(ops)} ops")
    results = []
    for i, (line, op) in enumerate(zip(body, ops)):
        fields = line.split()
        if not fields or fields[0] != str(i):
            raise HostError(f"the executor's result line {i} does not start with its index: "
                            f"{line!r}")
        results.append(_result(op, fields[1:], f"line for op {i}"))
    return info, results


def run_on_host(program_text: str, *, workdir: str | None = None,
                timeout: float = 60) -> HostRun:
    """Run ``program_text`` on the host's kernel, in a fresh directory made under
    ``workdir`` (default build/realcheck-tmp of the repository, a disk file system) and
    removed afterwards. Bad input is a ``ValueError`` with the executor's message; anything
    that stops the host from answering is a :class:`HostError`."""
    binary = executor()
    root = Path(workdir) if workdir is not None else TMP_ROOT
    root.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="run-", dir=root))
    try:
        try:
            done = subprocess.run([str(binary)], input=program_text.encode(), cwd=directory,
                                  capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise HostError(f"the executor did not finish within {timeout:g} s") from None
        said = done.stderr.decode(errors="replace").strip()
        last = said.splitlines()[-1] if said else ""
        if done.returncode == 2:
            raise ValueError(last.removeprefix("realcheck-executor: ") or
                             "the executor rejected the program (exit status 2)")
        if done.returncode:
            how = (f"died of signal {-done.returncode}" if done.returncode < 0
                   else f"exited with status {done.returncode}")
            raise HostError(f"the executor {how}: {last or 'it said nothing'}")
        ops, numbers = _program(program_text)
        info, results = _parse(done.stdout.decode(errors="replace"), ops)
        files = {}
        for n in numbers:
            try:
                files[n] = (directory / f"f{n}").read_bytes()
            except OSError as e:
                raise HostError(f"reading file {n} after the run: {e}") from None
        return HostRun(results=results, files=files, **info)
    finally:
        shutil.rmtree(directory, ignore_errors=True)

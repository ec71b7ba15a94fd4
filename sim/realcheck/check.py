"""Comparing a program's run on the host's Linux with its run on the kernel model, the
named differences that may separate them, and shrinking a difference to a minimal program.

Everything is compared: each op's status (ok, err, sig), its value (errno, signal, the
loaded byte, mmap's address, pwrite's count), each access's fault count, and the files'
final contents. Where they differ, either the model is wrong (Linux decides), or the op
falls under a named difference of :data:`DIFFERENCES`: something of the host (its
architecture, its file system) that the model, a RISC-V kernel, rightly does otherwise.
A named difference ends the comparison of that program at the op (what follows may depend
on it), and is counted.
"""

import errno
import signal
from dataclasses import dataclass

from .program import Program, describe


@dataclass(frozen=True)
class Difference:
    """A documented way the host may differ from the model."""
    name: str
    why: str
    #: The host's ``uname -m`` values where it applies.
    machines: tuple


DIFFERENCES = {d.name: d for d in (
    Difference(
        "exec-only-load",
        "a load from a PROT_EXEC-only mapping: x86-64 reads it (without protection keys a "
        "present user PTE is readable), RISC-V gives SIGSEGV (arch/riscv/mm/fault.c "
        "access_error: a load needs VM_READ or VM_WRITE), as the model does",
        ("x86_64", "i686")),
    Difference(
        "exec-readahead",
        "a page faulted in a VM_EXEC file mapping: Linux (6.16 on) reads ahead around it, "
        "up to 32 pages within the VMA, even under MADV_RANDOM (do_sync_mmap_readahead's "
        "VM_EXEC branch), and fault-around then maps what it read; the model has no "
        "readahead (the executor turns the rest of it off)",
        ("x86_64", "i686", "aarch64", "riscv64")),
)}


@dataclass(frozen=True)
class Verdict:
    """The outcome of one comparison.

    ``difference`` is None when the runs agree (up to ``named``, the named difference that
    ended the comparison, if any); else a dict: ``where`` ("op" or "file"), and for an
    op its ``index``, ``host`` and ``model`` results, for a file its number, the first
    differing ``offset`` and both sizes. ``compared``: the ops compared.
    """
    difference: dict | None
    named: str | None
    compared: int

    @property
    def signature(self):
        """What kind of difference this is, for shrinking: the same op and statuses."""
        d = self.difference
        if d is None:
            return None
        if d["where"] == "file":
            return ("file",)
        h, m = d["host"], d["model"]
        return (d["op"][0], h[0], m[0], h[1] == m[1], h[2] == m[2])


def compare(program: Program, host, model) -> Verdict:
    """Compare a :class:`~.host.HostRun` with a :class:`~.model.ModelRun`."""
    if len(host.results) != len(model.results) or len(host.results) != len(program.ops):
        raise ValueError(f"{len(program.ops)} ops, but the host gave {len(host.results)} "
                         f"results and the model {len(model.results)}")
    for i, (h, m) in enumerate(zip(host.results, model.results)):
        if tuple(h) == tuple(m):
            continue
        note = model.notes.get(i)
        if note is not None and host.machine in DIFFERENCES[note].machines:
            return Verdict(None, note, i)
        return Verdict({"where": "op", "index": i, "op": program.ops[i], "host": tuple(h),
                        "model": tuple(m)}, None, i + 1)
    for n in range(len(program.files)):
        a, b = host.files.get(n, b""), model.files.get(n, b"")
        if a != b:
            offset = next((j for j, (x, y) in enumerate(zip(a, b)) if x != y),
                          min(len(a), len(b)))
            return Verdict({"where": "file", "file": n, "offset": offset,
                            "host_size": len(a), "model_size": len(b),
                            "host_byte": a[offset] if offset < len(a) else None,
                            "model_byte": b[offset] if offset < len(b) else None},
                           None, len(program.ops))
    return Verdict(None, None, len(program.ops))


def describe_result(r) -> str:
    """A result as a person reads it: ``ok 0x2000001000``, ``err ENOMEM``, ``sig SIGBUS``,
    with an access's faults."""
    status, value, faults = r
    if status == "err":
        text = f"err {errno.errorcode.get(value, value)}"
    elif status == "sig":
        text = f"sig {signal.Signals(value).name}"
    elif value is None:
        text = "ok"
    else:
        text = f"ok {value:#x}" if value >= 0x10000 else f"ok {value}"
    if faults is not None:
        text += f", {faults} fault{'s' if faults != 1 else ''}"
    return text


def describe_difference(program: Program, verdict: Verdict) -> str:
    d = verdict.difference
    if d["where"] == "op":
        return (f"op {d['index']} ({describe(d['op'])}): host {describe_result(d['host'])}, "
                f"model {describe_result(d['model'])}")
    return (f"file f{d['file']}: first differs at byte {d['offset']:#x} (host "
            f"{d['host_byte']}, model {d['model_byte']}; sizes {d['host_size']} and "
            f"{d['model_size']})")


# -- shrinking --------------------------------------------------------------------------------------

def balanced(ops) -> bool:
    depth = 0
    for op in ops:
        depth += {"fork": 1, "exit": -1}.get(op[0], 0)
        if depth < 0:
            return False
    return depth == 0


def shrink(program: Program, check, budget: int = 600) -> tuple[Program, int]:
    """The smallest program (fewest ops) that ``check`` still finds failing: chunks of ops
    removed first (delta debugging, keeping each fork with its exit), then single ops and
    whole fork blocks. ``check(program) -> bool``. Returns it and the runs it took."""
    ops = list(program.ops)
    runs = 0

    def fails(candidate) -> bool:
        nonlocal runs
        if not balanced(candidate) or runs >= budget:
            return False
        runs += 1
        return check(Program(program.files, tuple(candidate)))

    n = 2
    while len(ops) >= 2 and runs < budget:
        size = -(-len(ops) // n)
        for start in range(0, len(ops), size):
            candidate = ops[:start] + ops[start + size:]
            if fails(candidate):
                ops = candidate
                n = max(n - 1, 2)
                break
        else:
            if n >= len(ops):
                break
            n = min(len(ops), n * 2)
    changed = True
    while changed and runs < budget:
        changed = False
        for i in range(len(ops) - 1, -1, -1):
            if i >= len(ops) or ops[i][0] == "exit":
                continue
            end = i + 1
            if ops[i][0] == "fork":             # the fork with its block
                depth = 0
                for end in range(i, len(ops)):
                    depth += {"fork": 1, "exit": -1}.get(ops[end][0], 0)
                    if depth == 0:
                        break
                end += 1
                unwrapped = ops[:i] + ops[i + 1:end - 1] + ops[end:]
                if fails(unwrapped):           # or the block run by the parent itself
                    ops = unwrapped
                    changed = True
                    continue
            candidate = ops[:i] + ops[end:]
            if fails(candidate):
                ops = candidate
                changed = True
    return Program(program.files, tuple(ops)), runs

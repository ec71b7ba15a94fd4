"""A realcheck program on the kernel model: the same ops, the same outcomes as the executor
reports them (see host.py), so that the two can be compared item by item.

Faults of an access are the traps the kernel model took for it, less the one that ended in
a signal: Linux counts a fault in min_flt/maj_flt only once it is handled
(mm_account_fault leaves out VM_FAULT_ERROR and bad-area faults).
"""

import errno
from dataclasses import dataclass, field

from mkclean.sim.kernel import Kernel
from mkclean.sim.kernel.constants import (MAP_ANONYMOUS, MAP_POPULATE, PROT_EXEC, VM_EXEC,
                                          VM_READ, VM_WRITE)
from mkclean.sim.kernel.errors import KernelError, Signal

from .program import Program


@dataclass
class ModelRun:
    """What the model gave: one ``(status, value, faults)`` a op, as the host's; the files'
    final contents (after a sync: what reaches the disk); and ``notes``, op index -> name
    of the named difference (:mod:`.differences`) that the op's situation falls under."""
    results: list
    files: dict
    notes: dict = field(default_factory=dict)


def run_on_model(program: Program, *, block_size: int = 4096, kernel_options=None) -> ModelRun:
    """Run ``program`` on a fresh kernel model (golden MMU, Svadu, writenotify)."""
    options = {"phys_size": 16 << 20, **(kernel_options or {})}
    with Kernel(**options) as k:
        files = [k.create_file(f"f{n}", size, block_size=block_size)
                 for n, size in enumerate(program.files)]
        traps = k.counters["traps"]
        results, notes = [], {}
        stack = [k.spawn()]
        readahead = None            # the op from which exec-readahead may have cached pages
        for i, op in enumerate(program.ops):
            name, *a = op
            p = stack[-1]
            if readahead is None and _may_read_ahead(p, op):
                readahead = i
            if name == "fork":
                stack.append(p.fork())
                results.append(("ok", 0, None))
                continue
            if name == "exit":
                p.exit()
                stack.pop()
                results.append(("ok", 0, None))
                continue
            if name in ("load", "store"):
                note = _access_note(p, a[0], name)
                if note:
                    notes[i] = note
                before = sum(traps.values())
                try:
                    if name == "load":
                        value = p.load(a[0], 1)[0]
                    else:
                        p.store(a[0], bytes([a[1]]))
                        value = None
                    results.append(("ok", value, sum(traps.values()) - before))
                except Signal as e:
                    results.append(("sig", int(e.signo), sum(traps.values()) - before - 1))
                continue
            try:
                results.append(("ok", _syscall(p, files, name, a), None))
            except KernelError as e:
                results.append(("err", e.errno, None))
        for p in reversed(stack):
            p.exit()
        if readahead is not None:
            for i in range(readahead, len(program.ops)):
                notes.setdefault(i, "exec-readahead")
        k.sync()
        contents = {n: f.on_disk(0, f.i_size) for n, f in enumerate(files)}
        return ModelRun(results, contents, notes)


def _syscall(p, files, name: str, a) -> int:
    if name == "mmap":
        addr, length, prot, flags, f, offset = a
        if not flags & MAP_ANONYMOUS and not 0 <= f < len(files):
            raise KernelError(errno.EBADF, "no such file")
        return p.mmap(length, prot, flags, file=None if flags & MAP_ANONYMOUS else files[f],
                      offset=offset, addr=addr)
    if name == "munmap":
        p.munmap(*a)
    elif name == "mprotect":
        p.mprotect(*a)
    elif name == "msync":
        p.msync(*a)
    elif name == "mlock":
        p.mlock(*a)
    elif name == "munlock":
        p.munlock(*a)
    elif name == "pwrite":
        f, offset, n, byte = a
        return p.write(files[f], offset, bytes([byte]) * n)
    elif name == "ftruncate":
        p.ftruncate(files[a[0]], a[1])
    else:
        raise ValueError(f"unknown op {name!r}")
    return 0


def _may_read_ahead(p, op) -> bool:
    """Whether ``op`` may fault a page of a VM_EXEC file mapping in: on Linux 6.18 that
    reads ahead around it whatever MADV_RANDOM says (the named difference
    exec-readahead), and what it reads stays cached for every later fault-around."""
    name, *a = op
    if name in ("load", "store"):
        lo, hi = a[0], a[0] + 1
    elif name == "mlock":
        lo, hi = a[0], a[0] + a[1]
    elif name == "mmap" and a[3] & MAP_POPULATE:
        lo, hi = a[0], a[0] + a[1]
        return bool(a[2] & PROT_EXEC) and not a[3] & MAP_ANONYMOUS
    else:
        return False
    return any(start < hi and lo < end and flags & VM_EXEC and f is not None
               and not f.startswith("dev/zero")
               for start, end, flags, f, _ in p.vmas())


def _access_note(p, va: int, kind: str) -> str | None:
    """The named difference an access at ``va`` falls under, from the model's VMAs."""
    for start, end, flags, _, _ in p.vmas():
        if start <= va < end:
            if kind == "load" and flags & VM_EXEC and not flags & (VM_READ | VM_WRITE):
                return "exec-only-load"
            return None
    return None

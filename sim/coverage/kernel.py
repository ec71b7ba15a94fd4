"""The kernel model's functional coverage: which fault path and which syscall ran on which
kind of mapping, under which policy and A/D mode.

Two crosses, in cocotb-coverage's database under ``<name>.fault`` and ``<name>.syscall``:

- fault: policy x A/D mode x kind of mapping x fault path, sampled where each fault path
  of sim/kernel/memory.py and trap.py ends (``count_vm_event``);
- syscall: policy x A/D mode x kind of mapping x syscall (with its flavour: msync's flags,
  mprotect with or without W, ...), sampled by each syscall of Process once its arguments
  are checked, once per kind of the VMAs it works on (for write, read and ftruncate: the
  VMAs mapping the file).

Combinations that cannot happen on one hart are excluded from the crosses, each with the
reason (:data:`FAULT_EXCLUDED`, :data:`SYSCALL_EXCLUDED`); a sample that lands on one
anyway is counted in :attr:`KernelCoverage.excluded_hits`, and the tests require none, so
a wrong exclusion (or a kernel bug that takes an impossible path) shows.

Use::

    cov = KernelCoverage()
    k = Kernel(policy="writenotify", coverage=cov)   # or k.coverage = cov
    ...                                              # run anything on k
    print(cov.summary()); cov.export("coverage.yml") # or .xml

cocotb-coverage keeps one global database: a KernelCoverage owns the subtree of its
``name`` (made anew, emptied, when one is created with the same name).
"""


from mkclean.sim.kernel import (AD_MODES, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_LOCKED,
                                MAP_POPULATE, MS_INVALIDATE, MS_SYNC, POLICIES, PROT_WRITE)
from mkclean.sim.kernel.constants import VM_MAYSHARE

from .cross import Cross, export, forget

POLICY_BINS = tuple(POLICIES)
AD_BINS = tuple(AD_MODES)

#: The kinds of mapping: a shared mapping of a file whose file system has page_mkwrite, of
#: one without it (the file systems the 2.6.19 patch was written for), a private file
#: mapping, anonymous private memory, and shared anonymous memory (shmem).
KINDS = ("shared_mkwrite", "shared_plain", "private_file", "anon_private", "anon_shared")
FILE_KINDS = ("shared_mkwrite", "shared_plain", "private_file", "anon_shared")
SHARED_KINDS = ("shared_mkwrite", "shared_plain", "anon_shared")
PRIVATE_KINDS = ("private_file", "anon_private")

#: The kernel's fault counter keys (kernel.stats["faults"]) and the bin of each: the
#: function of sim/kernel/memory.py (trap.py) whose path it is.
FAULT_PATHS = {
    "read": "do_read_fault",
    "cow": "do_cow_fault",
    "shared": "do_shared_fault",
    "anon": "do_anonymous_page",
    "anon_zero": "do_anonymous_page.zero_page",       # a load: the zero page, read-only
    "wp_shared": "wp_page_shared",                     # do_wp_page, shared VMA
    "wp_reuse": "wp_page_reuse",                       # do_wp_page, private, exclusive anon
    "wp_copy": "wp_page_copy",                         # do_wp_page, private: copy on write
    "svade_access": "handle_pte_fault.young",          # Svade: the kernel sets A
    "svade_dirty": "handle_pte_fault.dirty",           # Svade: the kernel sets D
    "spurious": "handle_pte_fault.spurious",           # nothing to change: flush the page
    "sigbus": "VM_FAULT_SIGBUS",                       # beyond EOF
    "sigsegv": "bad_area",                             # the VMA refuses the access
}
#: Counter keys that are not bins: wp_pfn_shared needs a VM_PFNMAP mapping, which no
#: syscall of the model creates (every file is page-cache backed); VM_FAULT_OOM is the
#: machine running out of frames, not a path of the mechanism. A bad_area with no VMA (no
#: mapping at the address, or outside user space) has no kind. Such samples are counted
#: in KernelCoverage.unmodelled.
NOT_BINS = ("wp_pfn", "oom")
PATHS = tuple(dict.fromkeys(FAULT_PATHS.values()))

#: The syscalls of Process, with their flavours.
SYSCALLS = ("mmap", "mmap_fixed", "mmap_populate", "munmap", "mprotect_ro", "mprotect_rw",
            "msync_async", "msync_sync", "msync_invalidate", "msync_async_invalidate",
            "msync_sync_invalidate", "mlock", "munlock", "fork", "exit", "write", "read",
            "ftruncate_shrink", "ftruncate_grow")
FILE_SYSCALLS = ("write", "read", "ftruncate_shrink", "ftruncate_grow")

_ANY = None          # a wildcard in an exclusion pattern (cocotb-coverage's ign_bins)

#: (policy, A/D mode, kind, path) patterns the fault cross leaves out (None: any), with
#: why no run on one hart reaches them.
FAULT_EXCLUDED = [
    ((_ANY, _ANY, k, p), "a VMA with a file (shmem's too) goes to do_fault, never "
                         "do_anonymous_page")
    for k in FILE_KINDS for p in ("do_anonymous_page", "do_anonymous_page.zero_page")
] + [
    ((_ANY, _ANY, "anon_private", p), "anonymous private memory has no file: no ->fault, "
                                      "no EOF")
    for p in ("do_read_fault", "do_cow_fault", "VM_FAULT_SIGBUS")
] + [
    ((_ANY, _ANY, k, p), "do_fault and do_wp_page take the shared branch on VM_SHARED: no "
                         "copy on write in a shared mapping")
    for k in SHARED_KINDS for p in ("do_cow_fault", "wp_page_reuse", "wp_page_copy")
] + [
    ((_ANY, _ANY, k, p), "a private mapping never takes the shared branch of do_fault or "
                         "do_wp_page")
    for k in PRIVATE_KINDS for p in ("do_shared_fault", "wp_page_shared")
] + [
    ((_ANY, _ANY, "anon_shared", "VM_FAULT_SIGBUS"),
     "a shmem object is exactly as long as its mapping, and nothing resizes it (ftruncate "
     "takes files only)"),
    ((_ANY, _ANY, "anon_shared", "wp_page_shared"),
     "shmem cannot write back, so vma_wants_writenotify says no: a writable shared "
     "mapping gets writable PTEs, and a store to a read-only one is bad_area"),
] + [
    ((policy, _ANY, _ANY, "wp_page_shared"),
     "without writenotify a writable shared VMA's PTEs get W from vm_page_prot at every "
     "fault and at mprotect (pte_modify), fork copies no shared PTE, and a store to a "
     "VMA without VM_WRITE is bad_area: no present read-only PTE to upgrade")
    for policy in ("legacy", "hwdirty")
] + [
    ((_ANY, "svadu", _ANY, p), "Svadu: the hardware sets A and D, the kernel never has to")
    for p in ("handle_pte_fault.young", "handle_pte_fault.dirty")
] + [
    (("writenotify", _ANY, k, "handle_pte_fault.dirty"),
     "writenotify: a writable PTE of a file that writes back is always dirty (set_pte_range "
     "and wp_page_reuse make it W and D together, mprotect gives W back only to dirty "
     "PTEs, page_mkclean takes W with D)")
    for k in ("shared_mkwrite", "shared_plain")
] + [
    ((_ANY, _ANY, k, "handle_pte_fault.dirty"),
     "a private mapping's PTE is writable only once it maps the process's own copy, and "
     "that PTE is born dirty (do_anonymous_page, do_cow_fault, wp_page_copy, "
     "wp_page_reuse); aging clears only A")
    for k in PRIVATE_KINDS
] + [
    ((_ANY, _ANY, _ANY, "handle_pte_fault.spurious"),
     "every PTE upgrade in the model ends with a flush of the page (update_mmu_cache, "
     "mprotect's mmu_gather), so on one hart no less permissive TLB entry outlives it; "
     "a spurious fault needs another hart's stale entry")
]

#: (policy, A/D mode, syscall, kind) patterns the syscall cross leaves out.
SYSCALL_EXCLUDED = [
    ((_ANY, _ANY, s, k), "write, read and ftruncate take files; the VMAs they report are "
                         "the file's mappings, never anonymous memory")
    for s in FILE_SYSCALLS for k in ("anon_private", "anon_shared")
]


def vma_kind(vma) -> str:
    """The kind of mapping ``vma`` is (one of :data:`KINDS`)."""
    f = vma.vm_file
    if f is None:
        return "anon_private"
    if f.shmem:
        return "anon_shared"
    if not vma.vm_flags & VM_MAYSHARE:
        return "private_file"
    return "shared_mkwrite" if f.vm_ops.page_mkwrite is not None else "shared_plain"


def syscall_bin(name: str, arg) -> str:
    """The bin of syscall ``name`` called with its deciding argument ``arg``."""
    if name == "mmap":
        if arg & (MAP_POPULATE | MAP_LOCKED):
            return "mmap_populate"
        return "mmap_fixed" if arg & (MAP_FIXED | MAP_FIXED_NOREPLACE) else "mmap"
    if name == "mprotect":
        return "mprotect_rw" if arg & PROT_WRITE else "mprotect_ro"
    if name == "msync":
        base = "msync_sync" if arg & MS_SYNC else "msync_async"
        if arg & MS_INVALIDATE:
            return "msync_invalidate" if not arg & ~MS_INVALIDATE else base + "_invalidate"
        return base
    if name == "ftruncate":
        old, new = arg
        return "ftruncate_shrink" if new < old else "ftruncate_grow"
    return name


class KernelCoverage:
    """The coverage model of the kernel, and the kernel's coverage hook.

    Attributes
    ----------
    name : str
        Its subtree of cocotb-coverage's ``coverage_db``.
    fault_cross, syscall_cross : Cross
    excluded_hits : dict
        Samples that fell on an excluded combination, and how many (should stay empty).
    unmodelled : dict
        Samples that are no bin (see :data:`NOT_BINS`), and how many.
    """

    def __init__(self, name: str = "kernel"):
        self.name = name
        self.forget()
        self.fault_cross = Cross(f"{name}.fault", {
            "policy": POLICY_BINS, "ad": AD_BINS, "kind": KINDS, "path": PATHS},
            FAULT_EXCLUDED)
        self.syscall_cross = Cross(f"{name}.syscall", {
            "policy": POLICY_BINS, "ad": AD_BINS, "syscall": SYSCALLS, "kind": KINDS},
            SYSCALL_EXCLUDED)
        self.excluded_hits = {}
        self.unmodelled = {}

    @property
    def crosses(self) -> dict:
        return {"fault": self.fault_cross, "syscall": self.syscall_cross}

    def forget(self) -> None:
        """Drop this model's subtree from cocotb-coverage's database (what its reports
        export: all of the database)."""
        forget(self.name)

    # -- the kernel's hook (Kernel.coverage) -----------------------------------------------------

    def fault(self, kernel, vma, what: str) -> None:
        path = FAULT_PATHS.get(what)
        if path is None or vma is None:
            key = what if vma is not None else f"{what} (no VMA)"
            self.unmodelled[key] = self.unmodelled.get(key, 0) + 1
            return
        self._sample(self.fault_cross, (kernel.policy.name, kernel.ad, vma_kind(vma), path))

    def syscall(self, kernel, name: str, vmas, arg) -> None:
        call = syscall_bin(name, arg)
        for kind in dict.fromkeys(vma_kind(v) for v in vmas):
            self._sample(self.syscall_cross, (kernel.policy.name, kernel.ad, call, kind))

    def _sample(self, cross: Cross, key: tuple) -> None:
        if key in cross.excluded_bins:
            label = f"{cross.name.rsplit('.', 1)[1]}: {'/'.join(key)}"
            self.excluded_hits[label] = self.excluded_hits.get(label, 0) + 1
        pending = cross.pending
        pending[key] = pending.get(key, 0) + 1

    # -- results ---------------------------------------------------------------------------------

    def figures(self, bins: dict) -> dict:
        covered = sum(1 for hits in bins.values() if hits)
        return {"bins": len(bins), "covered": covered,
                "percent": round(100 * covered / len(bins), 2) if bins else 100.0}

    def configs_run(self) -> list:
        """The (policy, A/D mode) pairs that sampled anything."""
        seen = set()
        for cross in self.crosses.values():
            seen.update(b[:2] for b, hits in cross.bins.items() if hits)
        return [(p, a) for p in POLICY_BINS for a in AD_BINS if (p, a) in seen]

    def result(self) -> dict:
        """The figures as JSON: per cross and in all, per policy and A/D mode run, the holes
        of the configurations run, the exclusions and why, and the surprises."""
        run = self.configs_run()
        out = {"model": "policy x ad x kind x fault path; policy x ad x syscall x kind",
               **self.figures({(short, b): h for short, cross in self.crosses.items()
                               for b, h in cross.bins.items()}),
               "crosses": {}, "by_config": {}, "excluded": [],
               "excluded_hits": dict(self.excluded_hits), "unmodelled": dict(self.unmodelled)}
        for short, cross in self.crosses.items():
            out["crosses"][short] = {
                "axes": list(cross.axes), **self.figures(cross.bins),
                "holes": [list(b) for b in cross.holes() if b[:2] in run]}
            for pattern, why in cross.excluded:
                out["excluded"].append({"cross": short, "bin": ["*" if v is None else v
                                                                for v in pattern],
                                        "why": why})
        for p, a in run:
            out["by_config"][f"{p}/{a}"] = self.figures(
                {(short, b): h for short, cross in self.crosses.items()
                 for b, h in cross.bins.items() if b[:2] == (p, a)})
        return out

    def summary(self, holes: int = 8) -> str:
        """A few lines for a person: coverage in all and per policy and A/D mode run, the
        first holes of those, and any excluded bin that was hit."""
        r = self.result()
        excluded = sum(len(c.excluded_bins) for c in self.crosses.values())
        lines = [f"  coverage        {r['percent']:>11}%   {r['covered']} of the {r['bins']} bins "
                 f"of every policy and A/D mode ("
                 + ", ".join(f"{short} {c['covered']}/{c['bins']}"
                             for short, c in r["crosses"].items())
                 + f"; {excluded} unreachable excluded)"]
        for config, fig in r["by_config"].items():
            lines.append(f"    {config:<18} {fig['percent']:>8}%   {fig['covered']} of its "
                         f"{fig['bins']} bins")
        missing = [f"{short} {'/'.join(b)}" for short, c in r["crosses"].items()
                   for b in c["holes"]]
        if missing:
            lines.append(f"    holes          {len(missing):>9}    first: "
                         + ", ".join(missing[:holes]))
        if r["excluded_hits"]:
            lines.append(f"    EXCLUDED BINS HIT: {r['excluded_hits']}")
        return "\n".join(lines)

    def export(self, path: str) -> None:
        """cocotb-coverage's own report of the database: XML if ``path`` ends in .xml,
        else YAML."""
        export(path, self.crosses.values())


__all__ = ["KernelCoverage", "KINDS", "PATHS", "SYSCALLS", "FAULT_EXCLUDED",
           "SYSCALL_EXCLUDED", "vma_kind", "syscall_bin"]

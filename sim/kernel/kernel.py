"""The Kernel: boots on a hardware backend, owns memory, files, processes and statistics."""

import errno
import os
import shutil
import tempfile

from mkclean.sim.hw.backends import make_hardware
from mkclean.sim.hw.seam import SATP_MODE_SV39, Priv
from .constants import MAX_FILE_SIZE, PAGE_SHIFT, PAGE_SIZE, PTRS_PER_PTE
from .errors import KernelError
from .locking import Sched
from .mm import MmStruct
from .mmap import exit_mmap
from .page_alloc import PhysMem
from .pagecache import File, shrink_page_cache
from .pgtable import pgd_alloc
from .policies import make_policy
from .process import Process
from .rmap import folio_referenced, folio_test_pte_dirty
from .tlbflush import flush_tlb_mm, sfence_vma
from .writeback import end_page_writeback, vfs_fsync_range, wb_writeback

AD_MODES = ("svadu", "svade")
#: Bugs a kernel may carry on purpose (``Kernel(plant=NAME)``, ``mkclean run --plant
#: NAME``): to see the checks catch them, and a replay's waves show them.
PLANTS = {
    "missing-flush": "page_mkclean write-protects and cleans a PTE but forgets the TLB "
                     "flush: a stale writable TLB entry survives (invariant 2)",
    "missing-dirty": "the store fault makes a shared page's PTE writable but forgets "
                     "set_page_dirty: writeback skips the page (lost writes)",
    "missing-writeback": "writeback cleans a page (page_mkclean, dirty bit cleared) but "
                         "its data never reaches the file (lost writes)",
}
ASID_LIMIT = 1 << 16

COUNTER_NAMES = ("sfences", "mkclean_ptes", "mkclean_calls", "mkclean_cleaned", "rmap_ptes",
                 "pte_scans", "writeback_pages", "writeback_passes", "fsyncs",
                 "pagecache_reads", "page_mkwrite", "balance_dirty_pages", "mprotect_ptes",
                 "fault_around_ptes")
#: Linux's default fault-around window (mm/memory.c: fault_around_pages = 65536 >> PAGE_SHIFT).
FAULT_AROUND_BYTES = 65536
#: Block sizes a file may have: what sb_set_blocksize accepts (512 to BLK_MAX_BLOCK_SIZE).
MIN_BLOCK_SIZE, MAX_BLOCK_SIZE = 512, 65536


class Kernel:
    """The kernel model on one hart of a hardware backend.

    Parameters
    ----------
    policy : str
        "writenotify" (the patch), "legacy" (before it) or "hwdirty".
    ad : str
        "svadu" (the hardware sets A/D; menvcfg.ADUE=1) or "svade" (A/D faults; the kernel
        sets them).
    backend : str
        A registered hardware backend ("golden").
    store_dir : str or None
        Where the files' backing files live; a temporary directory (removed by
        :meth:`close`) by default.
    phys_size, tlb_entries, walk_cache_entries : int
        The machine.
    phys_base : int
        The physical address where memory starts (QEMU's: 0x8000_0000); the backend
        checks it. Given to the backend's factory only when it is not 0, so that a
        backend whose memory is always at 0 needs to know nothing of it.
    hw : Hardware, optional
        Use this hardware instead of building one from ``backend``; its ``phys_base``
        (0 if it has none) is the kernel's, and a ``phys_base`` other than 0 must be the
        same.
    dirty_ratio : float
        Dirty pages, as a fraction of memory, above which a dirtier writes back itself.
    sched : Sched, optional
        The scheduler hook at lock points (see locking.py).
    trace : bool
        Record every trap the kernel takes in :attr:`trace`, as (ASID, cause, address):
        what two backends must agree on for the same workload and seed.
    plant : str or None
        A bug of :data:`PLANTS` to carry on purpose.
    fault_around_bytes : int
        The read fault-around window (/sys/kernel/debug/fault_around_bytes): a read fault
        in a file or shmem mapping first maps, read-only and clean, the pages of the
        window around it that are already cached (do_fault_around, filemap_map_pages);
        they count in the ``fault_around_ptes`` counter. As fault_around_bytes_set: at
        most a PTE table (2 MiB, else ValueError), rounded down to a power of two, below
        PAGE_SIZE taken as PAGE_SIZE; PAGE_SIZE (4096) turns fault-around off (one fault
        per page). 65536 (16 pages) by default, as Linux. :attr:`fault_around_bytes`
        holds the value in effect, :attr:`fault_around_pages` the window in pages.
    coverage : object or None
        The coverage hook (:attr:`coverage`): an object with ``fault(kernel, vma, what)``,
        called where each fault path ends (``what`` is its key in the ``faults``
        counter; ``vma`` None where there is none), and ``syscall(kernel, name, vmas,
        arg)``, called by each syscall of Process once its arguments are checked, with the
        VMAs it works on and its deciding argument (flags, prot, new size). None (the
        default) costs one test of an attribute per fault and per syscall, nothing per
        access. The coverage model lives above the kernel (mkclean.sim.coverage).
    """

    def __init__(self, policy: str = "writenotify", ad: str = "svadu", backend: str = "golden",
                 store_dir: str | None = None, *, phys_size: int = 64 << 20,
                 tlb_entries: int = 16, walk_cache_entries: int = 8, phys_base: int = 0,
                 hw=None, dirty_ratio: float = 0.2, soft_dirty: bool = False,
                 sched: Sched | None = None, trace: bool = False, coverage=None,
                 plant: str | None = None, fault_around_bytes: int = FAULT_AROUND_BYTES):
        self.policy = make_policy(policy)
        if isinstance(fault_around_bytes, bool) or not isinstance(fault_around_bytes, int) \
                or fault_around_bytes < 0:
            raise ValueError(f"fault_around_bytes must be an int >= 0, got "
                             f"{fault_around_bytes!r}")
        if fault_around_bytes // PAGE_SIZE > PTRS_PER_PTE:
            raise ValueError(f"fault_around_bytes {fault_around_bytes} beyond one PTE table "
                             f"({PTRS_PER_PTE * PAGE_SIZE})")
        fault_around_bytes = max(fault_around_bytes, PAGE_SIZE)
        #: The fault-around window in pages (fault_around_pages): a power of two; 1 is off.
        self.fault_around_pages = (1 << (fault_around_bytes.bit_length() - 1)) >> PAGE_SHIFT
        #: The window in bytes, as fault_around_bytes_get reads it back.
        self.fault_around_bytes = self.fault_around_pages << PAGE_SHIFT
        if plant is not None and plant not in PLANTS:
            raise ValueError(f"unknown plant {plant!r}: choose one of {', '.join(PLANTS)}")
        self.plant = plant
        #: Whether the store fault marks the page dirty: the policy's choice, unless the
        #: kernel carries the missing-dirty plant.
        self.fault_dirty = self.policy.fault_dirty and plant != "missing-dirty"
        if ad not in AD_MODES:
            raise ValueError(f"unknown ad mode {ad!r}: choose one of {', '.join(AD_MODES)}")
        self.ad = ad
        self.backend = backend if hw is None else getattr(hw, "name", type(hw).__name__)
        if hw is None:
            based = {"phys_base": phys_base} if phys_base else {}
            hw = make_hardware(backend, phys_size=phys_size, tlb_entries=tlb_entries,
                               walk_cache_entries=walk_cache_entries, **based)
        hw_base = getattr(hw, "phys_base", 0)
        if phys_base and phys_base != hw_base:
            raise ValueError(f"phys_base {phys_base:#x} asked for, but the {self.backend} "
                             f"backend's memory starts at {hw_base:#x}")
        if hw_base % PAGE_SIZE:
            raise ValueError(f"the {self.backend} backend's memory starts at {hw_base:#x}, "
                             f"not at a page boundary")
        self.hw = hw
        #: Where physical memory starts: every physical address the kernel uses (frames,
        #: PTEs' PPNs, satp, the direct map) is in [phys_base, phys_base + phys_size).
        self.phys_base = hw_base
        #: The hardware's access port, bound once: the TLB-hit path calls nothing else.
        self.access = hw.access
        #: ``event(KernelEvent, addr=0)``: tell the hardware what the kernel does, for a
        #: trace (seam ``Hardware.kernel_event``). The backend's method bound once, so an
        #: untraced run pays one call that returns per kernel action.
        self.event = hw.kernel_event
        self.sched = sched if sched is not None else Sched()
        self.soft_dirty = soft_dirty
        self.trace = [] if trace else None
        self.coverage = coverage
        if store_dir is None:
            self.store_dir = tempfile.mkdtemp(prefix="mkclean-kernel-")
            self._own_store_dir = True
        else:
            os.makedirs(store_dir, exist_ok=True)
            self.store_dir = store_dir
            self._own_store_dir = False
        self.counters = {name: 0 for name in COUNTER_NAMES}
        self.counters["faults"] = {}
        self.counters["traps"] = {}
        self.mem = PhysMem(self, hw.phys_size // PAGE_SIZE, hw_base >> PAGE_SHIFT)
        self.dirty_thresh = max(16, int(self.mem.nr_frames * dirty_ratio))
        self.nr_dirty = 0
        self.files: dict[str, File] = {}
        self.shmem: list[File] = []
        self.processes: list[Process] = []
        self.inflight = {}
        self.current = None
        self._next_pid = 1
        self._next_asid = 1
        self._free_asids = []
        # Boot: user mode, no SUM/MXR, A/D per the ad mode. satp is set per process.
        hw.set_csr(priv=Priv.U, sum=False, mxr=False, adue=(ad == "svadu"))
        sfence_vma(self, None, None)

    # -- lifetime -------------------------------------------------------------------------------

    def close(self) -> None:
        for f in list(self.files.values()):
            f.close()
        if self._own_store_dir:
            shutil.rmtree(self.store_dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return (f"<Kernel {self.policy.name} {self.ad} on {self.backend}: "
                f"{len(self.processes)} processes, {len(self.files)} files>")

    # -- files ----------------------------------------------------------------------------------

    def create_file(self, name: str, size: int, *, page_mkwrite: bool = True,
                    can_writeback: bool = True, stable_writes: bool = True,
                    driver_prot: int | None = None, block_size: int = 4096) -> File:
        """A zero-filled file of ``size`` bytes, backed by ``store_dir/name``.

        ``block_size`` is its filesystem's block size (File.block_size, File.i_blkbits):
        a power of two from 512 to 65536, as sb_set_blocksize takes; 4096 by default (ext4
        on this host). It decides what growing the file from an unaligned size does:
        blocks smaller than a page make pagecache_isize_extended write-protect the page
        straddling the old EOF; blocks of a page or more do not.
        """
        if not isinstance(name, str) or not name or "/" in name or name in (".", "..") \
                or "\0" in name:
            raise KernelError(errno.EINVAL, f"bad file name {name!r}")
        if name in self.files:
            raise KernelError(errno.EEXIST, f"file {name!r} exists")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise KernelError(errno.EINVAL, f"bad size {size!r}")
        if size > MAX_FILE_SIZE:
            raise KernelError(errno.EFBIG, f"size {size} beyond the largest file")
        if isinstance(block_size, bool) or not isinstance(block_size, int) \
                or not MIN_BLOCK_SIZE <= block_size <= MAX_BLOCK_SIZE \
                or block_size & (block_size - 1):
            raise KernelError(errno.EINVAL, f"bad block size {block_size!r}: a power of two "
                                            f"from {MIN_BLOCK_SIZE} to {MAX_BLOCK_SIZE}")
        f = File(self, name, os.path.join(self.store_dir, name), size,
                 page_mkwrite=page_mkwrite, can_writeback=can_writeback,
                 stable_writes=stable_writes, driver_prot=driver_prot,
                 block_size=block_size)
        self.files[name] = f
        return f

    def shmem_file(self, size: int) -> File:
        """The object behind a MAP_SHARED|MAP_ANONYMOUS mapping (shmem_zero_setup)."""
        f = File(self, f"dev/zero (deleted) #{len(self.shmem)}", None, size, shmem=True)
        self.shmem.append(f)
        return f

    def page(self, f: File, index: int):
        """The page cache page of ``f`` at ``index``, or None."""
        return f.pages.get(index)

    def page_dirty(self, f: File, index: int) -> bool:
        page = f.pages.get(index)
        return page is not None and page.dirty

    # -- processes ------------------------------------------------------------------------------

    def asid_alloc(self) -> int:
        if self._free_asids:
            return self._free_asids.pop()
        if self._next_asid >= ASID_LIMIT:
            raise KernelError(errno.EAGAIN, "out of ASIDs")
        asid = self._next_asid
        self._next_asid += 1
        return asid

    def mm_alloc(self) -> MmStruct:
        return MmStruct(self, pgd_alloc(self), self.asid_alloc())

    def _new_process(self, mm) -> Process:
        p = Process(self, self._next_pid, mm)
        self._next_pid += 1
        self.processes.append(p)
        return p

    def spawn(self) -> Process:
        """A new process with an empty address space."""
        return self._new_process(self.mm_alloc())

    def switch_to(self, p: Process) -> None:
        """Context switch: satp to the process's root table and ASID (no flush: ASIDs)."""
        if p.mm is None:
            raise KernelError(errno.ESRCH, f"process {p.pid} has exited")
        self.hw.set_csr(mode=SATP_MODE_SV39, asid=p.mm.asid, ppn=p.mm.pgd >> PAGE_SHIFT)
        self.current = p

    def _exit(self, p: Process, mm) -> None:
        exit_mmap(self, mm)
        # The ASID goes back to the pool clean: no entry of it may survive its reuse.
        flush_tlb_mm(self, mm)
        self.mem.free_pgtable(mm.pgd >> PAGE_SHIFT)
        self._free_asids.append(mm.asid)
        mm.dead = True
        p.mm = None
        if self.current is p:
            self.current = None
        self.processes.remove(p)

    # -- writeback and I/O ----------------------------------------------------------------------

    def writeback(self, wait: bool = True) -> int:
        """One pass of the flusher over every file; returns the pages written.

        ``wait=False`` leaves the pages under writeback (I/O in flight) until
        :meth:`complete_io`, or until someone waits on one of them.
        """
        return wb_writeback(self, wait=wait)

    def complete_io(self) -> int:
        """Complete every bio in flight; returns how many."""
        pages = list(self.inflight.values())
        for page in pages:
            end_page_writeback(self, page)
        return len(pages)

    def io_wait(self, page) -> None:
        """A path sleeps on the page's writeback: its bio completes (the interrupt arrives)."""
        if page.pfn in self.inflight:
            end_page_writeback(self, page)

    def sync(self) -> int:
        """sync(2): write and wait for every dirty page of every file, fsync them."""
        written = 0
        for f in list(self.files.values()):
            written += vfs_fsync_range(self, f, 0, None)
        return written

    def reclaim(self) -> int:
        """Free clean, idle, unmapped page-cache pages when frames run out."""
        return shrink_page_cache(self, 64)

    def age(self) -> int:
        """Clear the A bit of every mapped page's PTEs through the reverse map (kswapd's
        folio_referenced); under Svade the next access to each takes an A fault."""
        referenced = 0
        for page in self.mem.mem_map:
            if page.mapcount and page.kind in ("pagecache", "anon"):
                referenced += folio_referenced(self, page)
        return referenced

    # -- statistics -----------------------------------------------------------------------------

    def dirty_counts(self) -> tuple[int, int]:
        """(dirty pages the kernel knows of, pages really dirty) over files with a backing store.

        Known: PG_dirty. Really dirty: PG_dirty, or mapped by a PTE with D set.
        """
        known = real = 0
        for f in self.files.values():
            if not f.can_writeback:
                continue
            for page in f.pages.values():
                if page.dirty:
                    known += 1
                    real += 1
                elif page.mapcount and folio_test_pte_dirty(self, page):
                    real += 1
        return known, real

    @property
    def stats(self) -> dict:
        out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.counters.items()}
        known, real = self.dirty_counts()
        out["dirty_known"] = known
        out["dirty_real"] = real
        out["nr_dirty"] = self.nr_dirty
        out["faults_total"] = sum(out["faults"].values())
        out["policy"] = self.policy.name
        out["ad"] = self.ad
        out["backend"] = self.backend
        return out


__all__ = ["Kernel", "AD_MODES"]

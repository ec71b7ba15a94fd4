"""A user process: its address space, its syscalls, and its loads and stores.

Each syscall checks its arguments first, in the order Linux's checks them (so that where two
errors apply, it gives Linux's), and an argument error changes nothing. The syscalls that
walk a range of VMAs stop where Linux's walk stops, keeping what they did before: mprotect
(do_mprotect_pkey) and mlock/munlock (apply_vma_lock_flags) change the VMAs before a hole
(ENOMEM) or, for mprotect, before a VMA that may not take the protection (EACCES); msync
(sys_msync) syncs the parts before a VM_LOCKED VMA under MS_INVALIDATE (EBUSY) and, except
for exactly MS_ASYNC, every mapped part around a hole before it answers ENOMEM; mlock
keeps the range locked when it cannot fault it in (ENOMEM, do_mlock). munmap
(do_vmi_munmap) unmaps what is there: a hole is no error. Loads and stores go through the
hardware's MMU; a trap enters the kernel's page-fault handler and the access is retried, or
the process gets a Signal.
"""

import errno
import numbers
import signal

from mkclean.sim.hw.seam import KernelEvent, Kind, Trap

from . import mmap as mmap_mod
from .constants import (LEGACY_MAP_MASK, MAP_ANONYMOUS, MAP_FIXED,
                        MAP_FIXED_NOREPLACE, MAP_GROWSDOWN, MAP_HUGETLB, MAP_NONBLOCK,
                        MAP_POPULATE, MAP_PRIVATE, MAP_SHARED, MAP_SHARED_VALIDATE, MAP_TYPE,
                        MAX_FILE_SIZE, MMAP_MIN_ADDR, MS_ASYNC, MS_INVALIDATE, MS_SYNC,
                        PAGE_ALIGN, PAGE_MASK, PAGE_SHIFT, PAGE_SIZE, PROT_GROWSDOWN,
                        PROT_GROWSUP, PROT_MASK, PROT_SEM, TASK_SIZE, ULONG_MAX,
                        VM_ACCESS_FLAGS, VM_LOCKED)
from .errors import KernelBug, KernelError, Signal
from .fork import dup_mm
from .memory import populate_vma_page_range
from .mm import find_vma, get_unmapped_area, vma_lookup, vma_modify_flags, vmas_in_range
from .mprotect import mprotect_fixup
from .msync import msync_vma
from .pagecache import File, filemap_read, generic_perform_write, truncate_setsize
from .pgtable import PteView, pte_offset_map
from .trap import do_page_fault

#: The seam's access kinds as plain ints, what the TLB-hit path hands the hardware.
_LOAD, _STORE, _FETCH = int(Kind.LOAD), int(Kind.STORE), int(Kind.FETCH)
_VA_LIMIT = 1 << 64
#: A fault that does not let the access through after this many tries is a kernel bug.
MAX_FAULT_RETRIES = 8


def _int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise KernelError(errno.EINVAL, f"{name} must be an integer, got {value!r}")
    return int(value)


def _ulong(value, name: str) -> int:
    """An integer argument as the syscall's unsigned long (size_t, off_t) has it: mod 2**64."""
    return _int(value, name) & ULONG_MAX


class Process:
    """A task with its own mm (address space, ASID, page tables).

    Attributes
    ----------
    kernel : Kernel
    pid : int
    mm : MmStruct or None
        None once the process has exited.
    """

    def __init__(self, kernel, pid: int, mm):
        self.kernel = kernel
        self.pid = pid
        self.mm = mm

    def __repr__(self) -> str:
        state = "exited" if self.mm is None else f"asid={self.mm.asid}"
        return f"<Process {self.pid} {state}>"

    def _alive(self):
        if self.mm is None:
            raise KernelError(errno.ESRCH, f"process {self.pid} has exited")
        return self.mm

    def _file(self, f) -> File:
        if not isinstance(f, File) or f.kernel is not self.kernel or f.shmem \
                or f.name not in self.kernel.files or self.kernel.files[f.name] is not f:
            raise KernelError(errno.EBADF, f"{f!r} is not an open file of this kernel")
        return f

    # -- loads and stores ---------------------------------------------------------------------

    def _access(self, va: int, kind: int, data, size: int):
        """One access within a page: try, handle the trap, retry."""
        kernel = self.kernel
        if kernel.current is not self:
            kernel.switch_to(self)
        access = kernel.hw.access
        for _ in range(MAX_FAULT_RETRIES):
            r = access(va, kind, data, size)
            if not isinstance(r, Trap):
                return r
            do_page_fault(kernel, self.mm, int(r.cause), r.tval)
            if kernel.current is not self:
                kernel.switch_to(self)
        raise KernelBug(f"access at {va:#x} still faults after {MAX_FAULT_RETRIES} faults "
                        f"(last trap {r})")

    def store(self, va: int, data: bytes) -> None:
        """Store ``data`` at ``va`` through the MMU (SIGSEGV/SIGBUS raise Signal)."""
        kernel = self.kernel
        if kernel.current is not self:
            kernel.switch_to(self)
        if 0 <= va < _VA_LIMIT and (va & ~PAGE_MASK) + len(data) <= PAGE_SIZE:
            # The TLB-hit path: one access and nothing else.
            r = kernel.access(va, _STORE, data)
            if r.__class__ is not Trap:
                return
            do_page_fault(kernel, self.mm, int(r.cause), r.tval)
            self._access(va, _STORE, data, 0)
            return
        self._split(va, _STORE, bytes(data), len(data))

    def load(self, va: int, n: int) -> bytes:
        """Load ``n`` bytes from ``va`` through the MMU."""
        kernel = self.kernel
        if kernel.current is not self:
            kernel.switch_to(self)
        if 0 <= va < _VA_LIMIT and 0 <= n and (va & ~PAGE_MASK) + n <= PAGE_SIZE:
            r = kernel.access(va, _LOAD, None, n)
            if r.__class__ is not Trap:
                return r
            do_page_fault(kernel, self.mm, int(r.cause), r.tval)
            return self._access(va, _LOAD, None, n)
        return self._split(va, _LOAD, None, n)

    def access_many(self, ops) -> list[bytes]:
        """Loads and stores in program order, as the hart runs them.

        ``ops`` is a list of ``(va, data)`` for a store or ``(va, n)`` for a load of ``n``
        bytes (split at page boundaries here). The hardware gets them as one batch
        (``hw.access_batch``); at a trap the kernel handles the fault and the batch goes on
        from the access that trapped. Returns the loads' bytes, in order. A Signal raised
        for an access carries ``done``: how many page-sized pieces of ``ops`` completed
        before it.
        """
        kernel = self.kernel
        accesses = []
        pieces = []                 # per load: how many accesses its bytes come from
        append = accesses.append
        offset_mask = ~PAGE_MASK    # offset_in_page(va) is va & ~PAGE_MASK
        for va, what in ops:
            load = isinstance(what, int)
            n = what if load else len(what)
            if (va & offset_mask) + n <= PAGE_SIZE:    # the common case: within a page
                if load:
                    append((va, _LOAD, None, n))
                    pieces.append(1)
                else:
                    append((va, _STORE, what, 0))
                continue
            first = len(accesses)
            while True:             # split at page boundaries
                chunk = min(n, PAGE_SIZE - (va & offset_mask))
                if load:
                    accesses.append((va, _LOAD, None, chunk))
                else:
                    accesses.append((va, _STORE, what[:chunk], 0))
                    what = what[chunk:]
                va += chunk
                n -= chunk
                if n <= 0:
                    break
            if load:
                pieces.append(len(accesses) - first)
        if kernel.current is not self:
            kernel.switch_to(self)
        mm = self.mm
        last = [-1, 0]          # where the last trap was, and how many in a row there

        def on_trap(trap, done):
            """The trap handler, between two accesses of the batch (on a far backend,
            where the hardware is)."""
            if done != last[0]:
                last[0], last[1] = done, 0
            last[1] += 1
            if last[1] > MAX_FAULT_RETRIES:
                raise KernelBug(f"access at {trap.tval:#x} still faults after "
                                f"{MAX_FAULT_RETRIES} faults (last trap {trap})")
            try:
                do_page_fault(kernel, mm, int(trap.cause), trap.tval)
            except Signal as e:
                e.done = done
                raise
            if kernel.current is not self:
                kernel.switch_to(self)

        results, _ = kernel.hw.access_batch(accesses, on_trap)
        loads = [r for a, r in zip(accesses, results) if a[1] == _LOAD]
        if len(pieces) != len(loads):           # some loads were split: join their parts
            parts = iter(loads)
            loads = [b"".join(next(parts) for _ in range(k)) for k in pieces]
        return loads

    def fetch(self, va: int, n: int = 4) -> bytes:
        """An instruction fetch of ``n`` bytes at ``va`` (needs PROT_EXEC)."""
        return self._split(va, _FETCH, None, n)

    def _split(self, va: int, kind: int, data, n: int):
        self._alive()
        if n < 0:
            raise ValueError(f"negative access size {n}")
        if not 0 <= va < _VA_LIMIT or va + n > _VA_LIMIT:
            raise Signal(signal.SIGSEGV, va % _VA_LIMIT, "address outside the 64-bit space")
        out = []
        done = 0
        while done < n or not out:
            chunk = min(PAGE_SIZE - ((va + done) & ~PAGE_MASK), n - done)
            part = data[done:done + chunk] if data is not None else None
            out.append(self._access(va + done, kind, part, chunk if part is None else 0))
            done += chunk
        if kind == _STORE:
            return None
        return b"".join(out)

    def pte(self, va: int):
        """The leaf PTE mapping ``va`` (None if there is none), read from memory."""
        mm = self._alive()
        ptep = pte_offset_map(mm, va & PAGE_MASK)
        if ptep is None:
            return None
        value = self.kernel.hw.read_pte(ptep)
        return PteView.decode(value) if value else None

    def vmas(self):
        """(start, end, vm_flags, file name or None, pgoff) of each VMA, in order."""
        mm = self._alive()
        return [(v.vm_start, v.vm_end, v.vm_flags,
                 v.vm_file.name if v.vm_file is not None else None, v.vm_pgoff)
                for v in mm.vmas]

    # -- mmap / munmap / mprotect / msync / mlock ------------------------------------------------

    def mmap(self, length: int, prot: int, flags: int, file=None, offset: int = 0,
             addr: int | None = None) -> int:
        """mmap(2), its checks in Linux's order: the syscall entry's offset check, then
        ksys_mmap_pgoff's file lookup, then do_mmap's (length, the address from
        __get_unmapped_area, MAP_FIXED_NOREPLACE, the file's size, the map type and
        flags). The unknown bits of ``prot`` are ignored, as calc_vm_prot_bits does."""
        mm = self._alive()
        kernel = self.kernel
        length = _ulong(length, "length")
        prot = _int(prot, "prot")
        flags = _int(flags, "flags")
        offset = _ulong(offset, "offset")
        if addr is not None:
            addr = _ulong(addr, "addr")
        kernel.event(KernelEvent.SYS_MMAP, addr or 0)
        # riscv's sys_mmap (x86's too): the offset must be page aligned.
        if offset % PAGE_SIZE:
            raise KernelError(errno.EINVAL, f"offset {offset:#x} is not a page multiple")
        pgoff = offset >> PAGE_SHIFT
        anonymous = bool(flags & MAP_ANONYMOUS)
        # ksys_mmap_pgoff: the file, before do_mmap.
        if not anonymous:
            file = self._file(file) if file is not None else None
            if file is None:
                raise KernelError(errno.EBADF, "no file for a mapping without MAP_ANONYMOUS")
            if flags & MAP_HUGETLB:
                raise KernelError(errno.EINVAL, "MAP_HUGETLB of a file not on hugetlbfs")
        # do_mmap.
        if length == 0:
            raise KernelError(errno.EINVAL, "length is 0")
        if flags & MAP_FIXED_NOREPLACE:
            flags |= MAP_FIXED
        fixed = bool(flags & MAP_FIXED)
        length = PAGE_ALIGN(length) & ULONG_MAX
        if length == 0:
            raise KernelError(errno.ENOMEM, "length wraps around")
        # __get_unmapped_area.
        if length > TASK_SIZE:
            raise KernelError(errno.ENOMEM, f"length {length:#x} does not fit the address space")
        if fixed:
            start = addr or 0
            if start > TASK_SIZE - length:
                raise KernelError(errno.ENOMEM, "MAP_FIXED range beyond user space")
            if start % PAGE_SIZE:
                raise KernelError(errno.EINVAL, f"MAP_FIXED address {start:#x} not page-aligned")
            if start < MMAP_MIN_ADDR:      # security_mmap_addr, for a task without CAP_SYS_RAWIO
                raise KernelError(errno.EPERM, f"MAP_FIXED below mmap_min_addr: {start:#x}")
        else:
            start = get_unmapped_area(mm, addr, length)
            if start is None:
                raise KernelError(errno.ENOMEM, "no free range large enough")
        if flags & MAP_FIXED_NOREPLACE and vmas_in_range(mm, start, start + length):
            raise KernelError(errno.EEXIST, "MAP_FIXED_NOREPLACE range is mapped")
        mtype = flags & MAP_TYPE
        if not anonymous:
            if offset + length > MAX_FILE_SIZE:       # file_mmap_ok
                raise KernelError(errno.EOVERFLOW, "offset + length beyond the largest file")
            if mtype == MAP_SHARED:
                flags &= LEGACY_MAP_MASK    # unknown flags are dropped silently
            if mtype in (MAP_SHARED, MAP_SHARED_VALIDATE):
                if flags & ~LEGACY_MAP_MASK:
                    raise KernelError(errno.EOPNOTSUPP,
                                      f"unknown mmap flags {flags & ~LEGACY_MAP_MASK:#x}")
            elif mtype != MAP_PRIVATE:
                raise KernelError(errno.EINVAL, f"map type {mtype:#x} is none of MAP_SHARED, "
                                  "MAP_SHARED_VALIDATE, MAP_PRIVATE")
            if flags & MAP_GROWSDOWN:
                raise KernelError(errno.EINVAL, "MAP_GROWSDOWN of a file")
        else:
            # No MAP_SHARED_VALIDATE here: do_mmap's anonymous switch has no case for it.
            if mtype == MAP_SHARED:
                if flags & MAP_GROWSDOWN:
                    raise KernelError(errno.EINVAL, "MAP_GROWSDOWN of shared memory")
            elif mtype != MAP_PRIVATE:
                raise KernelError(errno.EINVAL, f"anonymous map type {mtype:#x} is neither "
                                  "MAP_SHARED nor MAP_PRIVATE")
        shared = mtype != MAP_PRIVATE
        vm_flags = mmap_mod.calc_vm_flags(prot & PROT_MASK, flags)
        # -- all checked: from here on, no error but out of memory.
        if fixed:
            mmap_mod.do_munmap(kernel, mm, start, start + length)
        if anonymous:
            if shared:
                file = kernel.shmem_file(length)
                pgoff = 0
            else:
                file = None
                pgoff = start >> PAGE_SHIFT
        mmap_mod.mmap_region(kernel, mm, file, start, length, vm_flags, pgoff)
        if kernel.coverage is not None:
            kernel.coverage.syscall(kernel, "mmap", [vma_lookup(mm, start)], flags)
        if vm_flags & VM_LOCKED or (flags & (MAP_POPULATE | MAP_NONBLOCK)) == MAP_POPULATE:
            self._mm_populate(start, start + length)
        return start

    def _mm_populate(self, start: int, end: int, ignore_errors: bool = True) -> int:
        """__mm_populate: populate_vma_page_range on each VMA of the range in turn.

        A page that cannot be faulted in is an error (see populate_vma_page_range): with
        ``ignore_errors`` (MAP_POPULATE, MAP_LOCKED) the rest of that VMA is skipped;
        without (mlock) population stops there, and the errno is returned (EFAULT, or
        ENOMEM out of memory), 0 if none."""
        for vma in vmas_in_range(self.mm, start, end):
            err = populate_vma_page_range(self.kernel, vma, max(start, vma.vm_start),
                                          min(end, vma.vm_end))
            if err and not ignore_errors:
                return err
        return 0

    def munmap(self, addr: int, length: int) -> None:
        """munmap(2): do_vmi_munmap unmaps what there is in the range; a hole is no error."""
        mm = self._alive()
        addr = _ulong(addr, "addr")
        self.kernel.event(KernelEvent.SYS_MUNMAP, addr)
        length = _ulong(length, "length")
        if addr % PAGE_SIZE or addr > TASK_SIZE or length > TASK_SIZE - addr:
            raise KernelError(errno.EINVAL, f"[{addr:#x}, +{length:#x}) is not a page-aligned "
                              "range of user space")
        end = addr + PAGE_ALIGN(length)
        if end == addr:
            raise KernelError(errno.EINVAL, "length is 0")
        self._cover("munmap", mm, addr, end)
        mmap_mod.do_munmap(self.kernel, mm, addr, end)

    def _walk(self, start: int, end: int, fixup) -> None:
        """The loop of do_mprotect_pkey and apply_vma_lock_flags: ``fixup(vma, lo, hi)`` on
        each VMA's part of ``[start, end)`` in address order, until a hole, which is ENOMEM
        (what was done before it stays done). An error that ``fixup`` raises stops it the
        same way. ``start`` must be in a VMA."""
        mm = self.mm
        addr = start
        while addr < end:
            vma = find_vma(mm, addr)
            if vma is None or vma.vm_start > addr:
                raise KernelError(errno.ENOMEM, f"[{start:#x}, {end:#x}) has a hole at "
                                  f"{addr:#x}")
            hi = min(end, vma.vm_end)
            fixup(vma, addr, hi)
            addr = hi

    def mprotect(self, addr: int, length: int, prot: int) -> None:
        """mprotect(2) as do_mprotect_pkey: the arguments, then the VMA at ``addr`` (ENOMEM
        if ``addr`` is in a hole: nothing changes), then VMA by VMA; a hole (ENOMEM) or a
        VMA that may not have ``prot`` (EACCES: a VM_MAY% bit missing) stops the walk, the
        VMAs before it keeping their new protection."""
        mm = self._alive()
        addr = _ulong(addr, "addr")
        self.kernel.event(KernelEvent.SYS_MPROTECT, addr)
        length = _ulong(length, "length")
        prot = _int(prot, "prot")
        grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP)
        prot &= ~(PROT_GROWSDOWN | PROT_GROWSUP)
        if grows == PROT_GROWSDOWN | PROT_GROWSUP:
            raise KernelError(errno.EINVAL, "PROT_GROWSDOWN and PROT_GROWSUP together")
        if addr % PAGE_SIZE:
            raise KernelError(errno.EINVAL, f"address {addr:#x} not page-aligned")
        if length == 0:
            return
        end = addr + PAGE_ALIGN(length)
        if end > ULONG_MAX:
            raise KernelError(errno.ENOMEM, f"[{addr:#x}, +{length:#x}) wraps around")
        if prot & ~(PROT_MASK | PROT_SEM):             # arch_validate_prot
            raise KernelError(errno.EINVAL, f"unknown prot bits {prot & ~PROT_MASK:#x}")
        first = find_vma(mm, addr)
        if first is None or first.vm_start >= end:
            raise KernelError(errno.ENOMEM, f"[{addr:#x}, {end:#x}) has no mapping")
        if grows & PROT_GROWSDOWN:
            # The model has no VM_GROWSDOWN VMA.
            raise KernelError(errno.EINVAL, f"{first!r} does not grow down")
        if first.vm_start > addr:
            raise KernelError(errno.ENOMEM, f"{addr:#x} is not mapped")
        if grows & PROT_GROWSUP:
            raise KernelError(errno.EINVAL, f"{first!r} does not grow up")
        self._cover("mprotect", mm, addr, end, prot)
        vm_prot = mmap_mod.calc_vm_prot_bits(prot)
        kernel = self.kernel

        def fixup(vma, lo, hi):
            newflags = vm_prot | (vma.vm_flags & ~VM_ACCESS_FLAGS)
            # newflags >> 4 shifts VM_MAY% in place of VM_%
            if (newflags & ~(newflags >> 4)) & VM_ACCESS_FLAGS:
                raise KernelError(errno.EACCES, f"{vma!r} may not get prot {prot:#x}")
            mprotect_fixup(kernel, mm, vma, lo, hi, newflags)

        self._walk(addr, end, fixup)

    def msync(self, addr: int, length: int, flags: int) -> None:
        """msync(2) as sys_msync (mm/msync.c) walks: VMA by VMA from ``addr``. A hole
        answers ENOMEM at once for exactly MS_ASYNC, and otherwise at the end, after the
        mapped parts on both sides of it were synced; no VMA left before ``end`` is ENOMEM
        there; MS_INVALIDATE on a VM_LOCKED VMA is EBUSY when the walk reaches it, the parts
        before it synced."""
        mm = self._alive()
        addr = _ulong(addr, "addr")
        self.kernel.event(KernelEvent.SYS_MSYNC, addr)
        length = _ulong(length, "length")
        flags = _int(flags, "flags")
        if flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC):
            raise KernelError(errno.EINVAL, f"unknown msync flags {flags:#x}")
        if addr % PAGE_SIZE:
            raise KernelError(errno.EINVAL, f"address {addr:#x} not page-aligned")
        if flags & MS_ASYNC and flags & MS_SYNC:
            raise KernelError(errno.EINVAL, "MS_ASYNC and MS_SYNC together")
        end = addr + (PAGE_ALIGN(length) & ULONG_MAX)
        if end > ULONG_MAX:
            raise KernelError(errno.ENOMEM, f"[{addr:#x}, +{length:#x}) wraps around")
        if end == addr:
            return
        self._cover("msync", mm, addr, end, flags)
        start = addr
        unmapped = False
        vma = find_vma(mm, start)
        while True:
            if vma is None:
                raise KernelError(errno.ENOMEM, f"nothing mapped in [{start:#x}, {end:#x})")
            if start < vma.vm_start:
                if flags == MS_ASYNC:
                    raise KernelError(errno.ENOMEM, f"{start:#x} is not mapped")
                start = vma.vm_start
                if start >= end:
                    raise KernelError(errno.ENOMEM, f"nothing mapped in [{addr:#x}, {end:#x})")
                unmapped = True
            if flags & MS_INVALIDATE and vma.vm_flags & VM_LOCKED:
                raise KernelError(errno.EBUSY, f"MS_INVALIDATE on the locked {vma!r}")
            msync_vma(self.kernel, vma, start, min(end, vma.vm_end), flags)
            start = vma.vm_end
            if start >= end:
                break
            vma = find_vma(mm, start)
        if unmapped:
            raise KernelError(errno.ENOMEM, f"[{addr:#x}, {end:#x}) is not all mapped")

    def mlock(self, addr: int, length: int) -> None:
        self._apply_vma_lock_flags(addr, length, True)

    def munlock(self, addr: int, length: int) -> None:
        self._apply_vma_lock_flags(addr, length, False)

    def _apply_vma_lock_flags(self, addr: int, length: int, on: bool) -> None:
        """mlock/munlock as do_mlock and apply_vma_lock_flags: set or clear VM_LOCKED VMA by
        VMA from the page of ``addr``; ENOMEM if it is in a hole (nothing changes) or at the
        first hole after it (the VMAs before keep the change). mlock faults the range in
        (__mm_populate) only when all of it was locked."""
        mm = self._alive()
        addr = _ulong(addr, "addr")
        self.kernel.event(KernelEvent.SYS_MLOCK if on else KernelEvent.SYS_MUNLOCK, addr)
        length = _ulong(length, "length")
        length = PAGE_ALIGN(length + (addr & ~PAGE_MASK)) & ULONG_MAX
        start = addr & PAGE_MASK
        end = start + length
        if end > ULONG_MAX:
            raise KernelError(errno.EINVAL, f"[{start:#x}, +{length:#x}) wraps around")
        if end == start:
            return
        if vma_lookup(mm, start) is None:
            raise KernelError(errno.ENOMEM, f"{start:#x} is not mapped")
        self._cover("mlock" if on else "munlock", mm, start, end)

        def fixup(vma, lo, hi):
            newflags = vma.vm_flags | VM_LOCKED if on else vma.vm_flags & ~VM_LOCKED
            if newflags != vma.vm_flags:
                vma_modify_flags(mm, vma, lo, hi, newflags)

        self._walk(start, end, fixup)
        if on:
            err = self._mm_populate(start, end, ignore_errors=False)
            if err:
                # __mlock_posix_error_return: EFAULT is ENOMEM to mlock's caller, and
                # ENOMEM is EAGAIN. The range stays locked.
                raise KernelError(errno.ENOMEM if err == errno.EFAULT else errno.EAGAIN,
                                  f"mlock could not fault [{start:#x}, {end:#x}) in")

    # -- file I/O --------------------------------------------------------------------------------

    def write(self, f, offset: int, data: bytes) -> int:
        """pwrite(2): ``data`` into ``f`` at ``offset`` through the page cache."""
        self._alive()
        f = self._file(f)
        offset = _int(offset, "offset")
        self.kernel.event(KernelEvent.SYS_WRITE, offset)
        if offset < 0:
            raise KernelError(errno.EINVAL, f"negative offset {offset}")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise KernelError(errno.EFAULT, f"data must be bytes, got {type(data).__name__}")
        data = bytes(data)
        if offset + len(data) > MAX_FILE_SIZE:
            raise KernelError(errno.EFBIG, "write beyond the largest file size")
        if not data:
            return 0
        self._cover_file("write", f)
        return generic_perform_write(self.kernel, f, offset, data)

    def read(self, f, offset: int, n: int) -> bytes:
        """pread(2): up to ``n`` bytes of ``f`` at ``offset`` (short at EOF)."""
        self._alive()
        f = self._file(f)
        offset = _int(offset, "offset")
        self.kernel.event(KernelEvent.SYS_READ, offset)
        n = _int(n, "n")
        if offset < 0 or n < 0:
            raise KernelError(errno.EINVAL, "negative offset or count")
        self._cover_file("read", f)
        return filemap_read(self.kernel, f, offset, n)

    def ftruncate(self, f, size: int) -> None:
        self._alive()
        f = self._file(f)
        size = _int(size, "size")
        self.kernel.event(KernelEvent.SYS_FTRUNCATE, size)
        if size < 0:
            raise KernelError(errno.EINVAL, f"negative size {size}")
        if size > MAX_FILE_SIZE:
            raise KernelError(errno.EFBIG, f"size {size} beyond the largest file")
        self._cover_file("ftruncate", f, (f.i_size, size))
        truncate_setsize(self.kernel, f, size)

    # -- fork and exit ---------------------------------------------------------------------------

    def fork(self) -> "Process":
        mm = self._alive()
        self.kernel.event(KernelEvent.SYS_FORK)
        self._cover("fork", mm, 0, TASK_SIZE)
        return self.kernel._new_process(dup_mm(self.kernel, mm))

    def exit(self) -> None:
        mm = self._alive()
        self.kernel.event(KernelEvent.SYS_EXIT)
        self._cover("exit", mm, 0, TASK_SIZE)
        self.kernel._exit(self, mm)

    # -- the coverage hook (Kernel's ``coverage``) --------------------------------------------------

    def _cover(self, name: str, mm, start: int, end: int, arg=None) -> None:
        """Tell the coverage hook, if there is one, that syscall ``name`` works on the
        VMAs of ``[start, end)``."""
        kernel = self.kernel
        if kernel.coverage is not None:
            kernel.coverage.syscall(kernel, name, vmas_in_range(mm, start, end), arg)

    def _cover_file(self, name: str, f: File, arg=None) -> None:
        """The same for a syscall on a file: the VMAs are those mapping it (its i_mmap)."""
        kernel = self.kernel
        if kernel.coverage is not None:
            kernel.coverage.syscall(kernel, name, list(f.i_mmap), arg)

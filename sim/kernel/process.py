"""A user process: its address space, its syscalls, and its loads and stores.

Every syscall checks all its arguments before it changes anything, so a KernelError leaves
every state as it was. Loads and stores go through the hardware's MMU; a trap enters the
kernel's page-fault handler and the access is retried, or the process gets a Signal.
"""

import errno
import numbers
import signal

from mkclean.sim.hw.seam import KernelEvent, Kind, Trap

from . import mmap as mmap_mod
from .constants import (FAULT_FLAG_WRITE, MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE,
                        MAP_KNOWN, MAP_POPULATE, MAP_PRIVATE, MAP_SHARED, MAP_SHARED_VALIDATE,
                        MAP_TYPE, MAX_FILE_SIZE, MMAP_MIN_ADDR, MS_ASYNC, MS_INVALIDATE, MS_SYNC,
                        PAGE_ALIGN, PAGE_MASK, PAGE_SHIFT, PAGE_SIZE, PROT_MASK, TASK_SIZE,
                        VM_ACCESS_FLAGS, VM_LOCKED, VM_SHARED, VM_WRITE)
from .errors import KernelBug, KernelError, Signal
from .fork import dup_mm
from .memory import handle_mm_fault
from .mm import (get_unmapped_area, range_fully_mapped, vma_lookup, vma_modify_flags,
                 vmas_in_range)
from .mprotect import mprotect_fixup
from .msync import msync_range
from .pagecache import File, filemap_read, generic_perform_write, truncate_setsize
from .pgtable import PteView, pte_offset_map, pte_write
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
        mm = self._alive()
        kernel = self.kernel
        length = _int(length, "length")
        prot = _int(prot, "prot")
        flags = _int(flags, "flags")
        offset = _int(offset, "offset")
        if addr is not None:
            addr = _int(addr, "addr")
        kernel.event(KernelEvent.SYS_MMAP, addr or 0)
        mtype = flags & MAP_TYPE
        if mtype not in (MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE):
            raise KernelError(errno.EINVAL, "flags need exactly one of MAP_SHARED, MAP_PRIVATE")
        if mtype == MAP_SHARED_VALIDATE and flags & ~MAP_KNOWN:
            raise KernelError(errno.EOPNOTSUPP, f"unknown mmap flags {flags & ~MAP_KNOWN:#x}")
        shared = mtype != MAP_PRIVATE
        if prot & ~PROT_MASK:
            raise KernelError(errno.EINVAL, f"unknown prot bits {prot & ~PROT_MASK:#x}")
        if length == 0:
            raise KernelError(errno.EINVAL, "length is 0")
        if length < 0 or PAGE_ALIGN(length) > TASK_SIZE:
            raise KernelError(errno.ENOMEM, f"length {length} does not fit the address space")
        length = PAGE_ALIGN(length)
        if offset < 0 or offset % PAGE_SIZE:
            raise KernelError(errno.EINVAL, f"offset {offset} is not a page multiple")
        if offset + length > MAX_FILE_SIZE:
            raise KernelError(errno.EOVERFLOW, "offset + length beyond the largest file")
        anonymous = bool(flags & MAP_ANONYMOUS)
        if not anonymous:
            file = self._file(file) if file is not None else None
            if file is None:
                raise KernelError(errno.EBADF, "no file for a mapping without MAP_ANONYMOUS")
        fixed = bool(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE))
        if fixed:
            if addr is None or addr % PAGE_SIZE:
                raise KernelError(errno.EINVAL, f"MAP_FIXED address {addr!r} not page-aligned")
            if addr < MMAP_MIN_ADDR:
                raise KernelError(errno.EPERM, f"MAP_FIXED below mmap_min_addr: {addr:#x}")
            if addr + length > TASK_SIZE:
                raise KernelError(errno.ENOMEM, "MAP_FIXED range beyond user space")
            if flags & MAP_FIXED_NOREPLACE and vmas_in_range(mm, addr, addr + length):
                raise KernelError(errno.EEXIST, "MAP_FIXED_NOREPLACE range is mapped")
            start = addr
        else:
            start = get_unmapped_area(mm, addr, length)
            if start is None:
                raise KernelError(errno.ENOMEM, "no free range large enough")
        vm_flags = mmap_mod.calc_vm_flags(prot, flags)
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
        else:
            pgoff = offset >> PAGE_SHIFT
        mmap_mod.mmap_region(kernel, mm, file, start, length, vm_flags, pgoff)
        if kernel.coverage is not None:
            kernel.coverage.syscall(kernel, "mmap", [vma_lookup(mm, start)], flags)
        if flags & MAP_POPULATE or vm_flags & VM_LOCKED:
            self._mm_populate(start, start + length)
        return start

    def _mm_populate(self, start: int, end: int) -> None:
        """__mm_populate: fault the range in, as populate_vma_page_range's get_user_pages:
        a private writable mapping with a write fault (FOLL_WRITE, to break COW: also
        where a read-only PTE is already present, a file page or a page shared since
        fork), anything else with a read fault where no PTE is present."""
        mm = self.mm
        hw = self.kernel.hw
        for addr in range(start, end, PAGE_SIZE):
            vma = vma_lookup(mm, addr)
            if vma is None or not vma.vm_flags & VM_ACCESS_FLAGS:
                continue
            write = (vma.vm_flags & (VM_WRITE | VM_SHARED)) == VM_WRITE
            ptep = pte_offset_map(mm, addr)
            if ptep is not None:
                pte = hw.read_pte(ptep)
                if pte and (not write or pte_write(pte)):
                    continue
            handle_mm_fault(self.kernel, vma, addr, FAULT_FLAG_WRITE if write else 0)

    def munmap(self, addr: int, length: int) -> None:
        mm = self._alive()
        addr = _int(addr, "addr")
        self.kernel.event(KernelEvent.SYS_MUNMAP, addr)
        length = _int(length, "length")
        if addr % PAGE_SIZE or addr < 0:
            raise KernelError(errno.EINVAL, f"address {addr:#x} not page-aligned")
        if length <= 0:
            raise KernelError(errno.EINVAL, f"length {length} is not positive")
        length = PAGE_ALIGN(length)
        if addr + length > TASK_SIZE:
            raise KernelError(errno.EINVAL, "range beyond user space")
        self._cover("munmap", mm, addr, addr + length)
        mmap_mod.do_munmap(self.kernel, mm, addr, addr + length)

    def mprotect(self, addr: int, length: int, prot: int) -> None:
        mm = self._alive()
        addr = _int(addr, "addr")
        self.kernel.event(KernelEvent.SYS_MPROTECT, addr)
        length = _int(length, "length")
        prot = _int(prot, "prot")
        if addr % PAGE_SIZE or addr < 0:
            raise KernelError(errno.EINVAL, f"address {addr:#x} not page-aligned")
        if prot & ~PROT_MASK:
            raise KernelError(errno.EINVAL, f"unknown prot bits {prot & ~PROT_MASK:#x}")
        if length < 0:
            raise KernelError(errno.ENOMEM, f"length {length} wraps around")
        length = PAGE_ALIGN(length)
        if length == 0:
            return
        end = addr + length
        if end > TASK_SIZE or not range_fully_mapped(mm, addr, end):
            raise KernelError(errno.ENOMEM, f"[{addr:#x}, {end:#x}) is not all mapped")
        vm_prot = mmap_mod.calc_vm_prot_bits(prot)
        for vma in vmas_in_range(mm, addr, end):
            newflags = vm_prot | (vma.vm_flags & ~VM_ACCESS_FLAGS)
            # newflags >> 4 shifts VM_MAY% in place of VM_%
            if (newflags & ~(newflags >> 4)) & VM_ACCESS_FLAGS:
                raise KernelError(errno.EACCES, f"{vma!r} may not get prot {prot:#x}")
        self._cover("mprotect", mm, addr, end, prot)
        for vma in vmas_in_range(mm, addr, end):
            newflags = vm_prot | (vma.vm_flags & ~VM_ACCESS_FLAGS)
            mprotect_fixup(self.kernel, mm, vma, max(addr, vma.vm_start),
                           min(end, vma.vm_end), newflags)

    def msync(self, addr: int, length: int, flags: int) -> None:
        mm = self._alive()
        addr = _int(addr, "addr")
        self.kernel.event(KernelEvent.SYS_MSYNC, addr)
        length = _int(length, "length")
        flags = _int(flags, "flags")
        if flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC):
            raise KernelError(errno.EINVAL, f"unknown msync flags {flags:#x}")
        if addr % PAGE_SIZE or addr < 0:
            raise KernelError(errno.EINVAL, f"address {addr:#x} not page-aligned")
        if flags & MS_ASYNC and flags & MS_SYNC:
            raise KernelError(errno.EINVAL, "MS_ASYNC and MS_SYNC together")
        if length < 0:
            raise KernelError(errno.ENOMEM, f"length {length} wraps around")
        length = PAGE_ALIGN(length)
        end = addr + length
        if end == addr:
            return
        vmas = vmas_in_range(mm, addr, end) if end <= TASK_SIZE else []
        if flags & MS_INVALIDATE and any(v.vm_flags & VM_LOCKED for v in vmas):
            raise KernelError(errno.EBUSY, "MS_INVALIDATE on a locked mapping")
        if end > TASK_SIZE or not range_fully_mapped(mm, addr, end):
            raise KernelError(errno.ENOMEM, f"[{addr:#x}, {end:#x}) is not all mapped")
        self._cover("msync", mm, addr, end, flags)
        msync_range(self.kernel, vmas, addr, end, flags)

    def mlock(self, addr: int, length: int) -> None:
        self._apply_vma_lock_flags(addr, length, True)

    def munlock(self, addr: int, length: int) -> None:
        self._apply_vma_lock_flags(addr, length, False)

    def _apply_vma_lock_flags(self, addr: int, length: int, on: bool) -> None:
        """mlock/munlock: set or clear VM_LOCKED on the range's VMAs; mlock faults it in."""
        mm = self._alive()
        addr = _int(addr, "addr")
        self.kernel.event(KernelEvent.SYS_MLOCK if on else KernelEvent.SYS_MUNLOCK, addr)
        length = _int(length, "length")
        if addr < 0 or length < 0:
            raise KernelError(errno.EINVAL, "negative address or length")
        end = PAGE_ALIGN(addr + length)
        start = addr & PAGE_MASK
        if end == start:
            return
        if end > TASK_SIZE or not range_fully_mapped(mm, start, end):
            raise KernelError(errno.ENOMEM, f"[{start:#x}, {end:#x}) is not all mapped")
        self._cover("mlock" if on else "munlock", mm, start, end)
        for vma in vmas_in_range(mm, start, end):
            newflags = vma.vm_flags | VM_LOCKED if on else vma.vm_flags & ~VM_LOCKED
            if newflags != vma.vm_flags:
                vma_modify_flags(mm, vma, start, end, newflags)
        if on:
            self._mm_populate(start, end)

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

"""What user space must see: a model of the files and address spaces that knows nothing of
pages cache, PTEs or TLBs. Workloads and tests run every syscall, load and store on the
kernel and on this oracle and compare; at the end the files on disk must equal its shadow
(invariant 1: no lost write).

The oracle is page-granular and follows the user ABI only: MAP_SHARED stores reach the
file, MAP_PRIVATE ones a private copy made at the first store (until then the mapping shows
the file), stores beyond the last page of a file get SIGBUS, truncation zeroes the tail of
the new last page and drops private copies beyond it, extension zeroes the old tail. As
Linux does, populating a private writable mapping (mlock, MAP_LOCKED, MAP_POPULATE) makes
its private copies then, of the pages within the file (it breaks COW with write faults).
"""

import errno
import signal

PAGE = 4096
TASK_SIZE = 1 << 38
SIGSEGV, SIGBUS = int(signal.SIGSEGV), int(signal.SIGBUS)
PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS = 0x01, 0x02, 0x10, 0x20
MAP_POPULATE = 0x8000


class OFile:
    """The shadow of a file (or of a shared anonymous object): bytes up to the end of the
    last page (the tail beyond EOF is what stores into that page left there)."""

    def __init__(self, name: str, size: int):
        self.name = name
        self.size = size
        self.data = bytearray(-(-size // PAGE) * PAGE)

    @property
    def pages(self) -> int:
        return -(-self.size // PAGE)

    def _room(self, end: int) -> None:
        if len(self.data) < end:
            self.data.extend(bytes(end - len(self.data)))

    def extend_to(self, new_size: int) -> None:
        """Grow: the old tail beyond EOF reads zero from now on."""
        old_end = -(-self.size // PAGE) * PAGE
        self.data[self.size:old_end] = bytes(old_end - self.size)
        self._room(-(-new_size // PAGE) * PAGE)
        self.size = new_size

    def write(self, offset: int, data: bytes) -> None:
        """pwrite on ext4 (4 KiB blocks): ext4_write_checks zeroes the old EOF block only
        from EOF to the write's start, and only for a write starting beyond EOF; a
        store's bytes beyond the write stay (beyond the new EOF)."""
        if offset > self.size:
            stop = min(offset, -(-self.size // PAGE) * PAGE)
            self.data[self.size:stop] = bytes(max(0, stop - self.size))
        end = offset + len(data)
        if end > self.size:
            self._room(-(-end // PAGE) * PAGE)
            self.size = end
        self.data[offset:end] = data

    def truncate(self, new_size: int) -> None:
        if new_size >= self.size:
            self.extend_to(new_size)
            return
        end = -(-new_size // PAGE) * PAGE
        self.data[new_size:end] = bytes(end - new_size)
        del self.data[end:]
        self.size = new_size

    def contents(self) -> bytes:
        return bytes(self.data[:self.size])


class OPage:
    """One page of an address space."""

    __slots__ = ("kind", "prot", "obj", "index", "copy", "unknown", "locked")

    def __init__(self, kind: str, prot: int, obj, index: int, locked: bool = False):
        self.kind = kind          # "shared" (file or shmem), "private" (file), "anon"
        self.prot = prot
        self.obj = obj            # OFile, or None for anon
        self.index = index
        self.copy = None          # bytearray once a private/anon page has its own copy
        #: Of the copy, the bytes not known (1): those copied from beyond EOF, which
        #: writeback may have zeroed in the file page before (None: all known).
        self.unknown = None
        self.locked = locked

    def clone(self) -> "OPage":
        c = OPage(self.kind, self.prot, self.obj, self.index)
        c.copy = None if self.copy is None else bytearray(self.copy)
        c.unknown = None if self.unknown is None else bytearray(self.unknown)
        return c

    def make_copy(self) -> None:
        """The private copy a COW fault makes, from the file page (or zeros)."""
        if self.obj is None:
            self.copy = bytearray(PAGE)
            return
        start = self.index * PAGE
        self.copy = bytearray(self.obj.data[start:start + PAGE])
        eof = self.obj.size - start
        if 0 <= eof < PAGE:
            self.unknown = bytearray(eof) + b"\1" * (PAGE - eof)


class Oracle:
    def __init__(self):
        self.files: dict[str, OFile] = {}
        self.procs: dict[int, dict[int, OPage]] = {}

    # -- objects ---------------------------------------------------------------------------

    def create_file(self, name: str, size: int) -> OFile:
        f = OFile(name, size)
        self.files[name] = f
        return f

    def spawn(self, pid: int) -> None:
        self.procs[pid] = {}

    def fork(self, parent: int, child: int) -> None:
        self.procs[child] = {va: pg.clone() for va, pg in self.procs[parent].items()}

    def exit(self, pid: int) -> None:
        del self.procs[pid]

    # -- mappings ----------------------------------------------------------------------------

    def mmap(self, pid: int, va: int, length: int, prot: int, flags: int, file: OFile | None,
             offset: int, locked: bool = False) -> None:
        pages = self.procs[pid]
        n = -(-length // PAGE)
        shared = bool(flags & MAP_SHARED)
        if flags & MAP_ANONYMOUS:
            obj = OFile("shmem", n * PAGE) if shared else None
            kind = "shared" if shared else "anon"
            first = 0
        else:
            obj, kind, first = file, ("shared" if shared else "private"), offset // PAGE
        for i in range(n):
            pages[va + i * PAGE] = OPage(kind, prot, obj, first + i, locked)
        if locked or flags & MAP_POPULATE:
            self.populate(pid, va, n * PAGE)

    def munmap(self, pid: int, va: int, length: int) -> None:
        pages = self.procs[pid]
        for i in range(-(-length // PAGE)):
            pages.pop(va + i * PAGE, None)

    def mapped(self, pid: int, va: int, length: int) -> bool:
        pages = self.procs[pid]
        return all(va + i * PAGE in pages for i in range(-(-length // PAGE)))

    def _walk(self, pid: int, va: int, length: int):
        """The mapped pages of a range syscall's walk, in order, up to the first hole;
        and the errno the walk ends with (ENOMEM at a hole: do_mprotect_pkey,
        apply_vma_lock_flags), the pages before it keeping their change."""
        pages = self.procs[pid]
        walked = []
        if va + length > TASK_SIZE:
            return walked, errno.ENOMEM
        for i in range(-(-length // PAGE)):
            pg = pages.get(va + i * PAGE)
            if pg is None:
                return walked, errno.ENOMEM
            walked.append(pg)
        return walked, 0

    def mprotect(self, pid: int, va: int, length: int, prot: int) -> int:
        """mprotect's change and errno: the pages up to a hole change, then ENOMEM."""
        walked, err = self._walk(pid, va, length)
        for pg in walked:
            pg.prot = prot
        return err

    def mlock(self, pid: int, va: int, length: int, on: bool) -> int:
        """mlock/munlock of whole pages and its errno: the pages up to a hole change, then
        ENOMEM (and no population); mlock then faults the range in, and a page it cannot
        (PROT_NONE, beyond EOF) stops it with ENOMEM (do_mlock's
        __mlock_posix_error_return), the range staying locked."""
        walked, err = self._walk(pid, va, length)
        for pg in walked:
            pg.locked = on
        if err or not on:
            return err
        for pg in walked:
            beyond_eof = pg.obj is not None and pg.copy is None and pg.index >= pg.obj.pages
            if not pg.prot & (PROT_READ | PROT_WRITE | PROT_EXEC) or beyond_eof:
                return errno.ENOMEM
            self._populate_one(pg)
        return 0

    def populate(self, pid: int, va: int, length: int) -> None:
        """What faulting a range in shows: each private writable page gets its copy now
        (populate_vma_page_range's write faults break COW), unless beyond the file's end;
        errors are ignored (MAP_POPULATE, MAP_LOCKED)."""
        pages = self.procs[pid]
        for i in range(-(-length // PAGE)):
            pg = pages.get(va + i * PAGE)
            if pg is not None:
                self._populate_one(pg)

    def _populate_one(self, pg: OPage) -> None:
        if pg.kind == "shared" or not pg.prot & PROT_WRITE or pg.copy is not None \
                or self._check(pg, True):
            return
        pg.make_copy()

    def msync_errno(self, pid: int, va: int, length: int, flags: int) -> int:
        """msync's errno, as mm/msync.c's walk: a hole is ENOMEM at the end (at once for
        exactly MS_ASYNC); MS_INVALIDATE on a locked page, met first, is EBUSY."""
        if length == 0:
            return 0
        pages = self.procs[pid]
        unmapped = 0
        for i in range(-(-length // PAGE)):
            pg = pages.get(va + i * PAGE)
            if pg is None:
                if flags == 1:                              # MS_ASYNC alone
                    return errno.ENOMEM
                unmapped = errno.ENOMEM
            elif flags & 2 and pg.locked:
                return errno.EBUSY
        return unmapped

    # -- loads and stores ----------------------------------------------------------------------

    def _check(self, pg: OPage | None, write: bool) -> int:
        if pg is None:
            return SIGSEGV
        if write and not pg.prot & PROT_WRITE:
            return SIGSEGV
        if not write and not pg.prot & (PROT_READ | PROT_WRITE):
            return SIGSEGV
        if pg.obj is not None and pg.copy is None and pg.index >= pg.obj.pages:
            return SIGBUS
        return 0

    def _view(self, pg: OPage):
        """(buffer, base offset) holding the page's bytes."""
        if pg.copy is not None:
            return pg.copy, 0
        if pg.obj is None:
            return None, 0
        return pg.obj.data, pg.index * PAGE

    def store(self, pid: int, va: int, data: bytes) -> int:
        """Apply a store page by page; the signal that stops it (0: all done)."""
        pages = self.procs[pid]
        done = 0
        while done < len(data):
            a = va + done
            base = a & ~(PAGE - 1)
            n = min(PAGE - (a - base), len(data) - done)
            pg = pages.get(base)
            sig = self._check(pg, True)
            if sig:
                return sig
            chunk = data[done:done + n]
            if pg.kind == "shared":
                off = pg.index * PAGE + (a - base)
                pg.obj.data[off:off + n] = chunk
            else:
                if pg.copy is None:
                    pg.make_copy()
                pg.copy[a - base:a - base + n] = chunk
                if pg.unknown is not None:
                    pg.unknown[a - base:a - base + n] = bytes(n)
            done += n
        return 0

    def load(self, pid: int, va: int, n: int):
        """(expected bytes, or None) and the signal (0 if none) of a load.

        The bytes are None without a signal where the load reaches beyond EOF in a file's
        last page: stores left there are zeroed whenever writeback writes the page
        (ext4_bio_write_folio), which the oracle does not follow."""
        pages = self.procs[pid]
        out = bytearray()
        unknown = False
        done = 0
        while done < n:
            a = va + done
            base = a & ~(PAGE - 1)
            m = min(PAGE - (a - base), n - done)
            pg = pages.get(base)
            sig = self._check(pg, False)
            if sig:
                return None, sig
            buf, start = self._view(pg)
            if pg.copy is None and pg.obj is not None \
                    and pg.index * PAGE + (a - base) + m > pg.obj.size:
                unknown = True
            elif pg.unknown is not None and any(pg.unknown[a - base:a - base + m]):
                unknown = True
            if buf is None:
                out += bytes(m)
            else:
                off = start + (a - base)
                out += buf[off:off + m]
            done += m
        return (None if unknown else bytes(out)), 0

    # -- file syscalls -----------------------------------------------------------------------

    def write(self, name: str, offset: int, data: bytes) -> None:
        if data:
            self.files[name].write(offset, data)

    def read(self, name: str, offset: int, n: int) -> bytes:
        f = self.files[name]
        return bytes(f.data[offset:min(offset + n, f.size)]) if offset < f.size else b""

    def ftruncate(self, name: str, size: int) -> None:
        f = self.files[name]
        f.truncate(size)
        keep = f.pages
        for pages in self.procs.values():
            for pg in pages.values():
                if pg.obj is f and pg.kind == "private" and pg.index >= keep:
                    pg.copy = pg.unknown = None     # truncation drops COWed copies beyond EOF too

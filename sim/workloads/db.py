"""``db``: many small stores to the hot pages of a large shared file, periodic msync.

Like a database buffer pool mapped MAP_SHARED: record updates of 8 bytes, most of them to a
small hot set of pages, a few loads, an msync(MS_SYNC) checkpoint every ``msync_every``
accesses and a flusher pass every ``writeback_every``.
"""

from mkclean.sim.kernel import MAP_SHARED, MS_SYNC, PROT_READ, PROT_WRITE

from .base import Option, Workload

PAGE = 4096


class Db(Workload):
    name = "db"

    options = {
        "file_pages": Option(4096, 1, 1 << 18, "pages of the shared file"),
        "hot_pages": Option(8, 1, 1 << 18, "pages most stores go to (at most file_pages)"),
        "hot_fraction": Option(0.995, 0.0, 1.0, "share of accesses to the hot pages"),
        "load_fraction": Option(0.2, 0.0, 1.0, "share of accesses that are loads"),
        "msync_every": Option(100_000, 1, help="accesses between msync(MS_SYNC) checkpoints"),
        "writeback_every": Option(100_000, 1, help="accesses between flusher passes"),
        "chunk": Option(4096, 1, 1 << 16, "accesses handed to the hardware at once"),
    }

    @classmethod
    def check_together(cls, values):
        values["hot_pages"] = min(values["hot_pages"], values["file_pages"])

    def setup(self):
        k = self.k
        size = self.file_pages * PAGE
        self.f = k.create_file("db", size)
        self.shadow[self.f] = bytearray(size)
        self.p = k.spawn()
        self.base = self.p.mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, file=self.f)
        rng = self.rng
        self.hot = rng.sample(range(self.file_pages), self.hot_pages)

    def _plan(self, n):
        """The next ``n`` accesses: virtual addresses, and the 8 bytes to store (None: a load).

        One 64-bit random number per access: bits 0-15 pick hot or cold, 16-39 the page,
        40-48 the 8-byte record, 49-56 load or store; the bytes stored are random too (a
        store that left a record as it was would hide a lost write).
        """
        rng = self.rng
        hot, hot_n, pages, base = self.hot, self.hot_pages, self.file_pages, self.base
        hot_cut = int(self.hot_fraction * 65536)
        load_cut = int(self.load_fraction * 256)
        rs = memoryview(rng.randbytes(8 * n)).cast("Q").tolist()
        pool = rng.randbytes(8 * n)
        vas = [base + ((hot[(r >> 16) % hot_n] if (r & 0xFFFF) < hot_cut
                        else (r >> 16) % pages) << 12) + (((r >> 40) & 511) << 3) for r in rs]
        datas = [None if ((r >> 49) & 255) < load_cut else pool[8 * i:8 * i + 8]
                 for i, r in enumerate(rs)]
        return vas, datas

    def steps(self):
        p, base, shadow = self.p, self.base, self.shadow[self.f]
        access_many = p.access_many
        left = self.accesses
        since_msync = since_wb = 0
        while left > 0:
            n = min(self.chunk, left, self.msync_every - since_msync,
                    self.writeback_every - since_wb)
            vas, datas = self._plan(n)
            # One batch for the hardware (a far backend translates it in one go); the
            # loads are checked afterwards against the shadow as it was at each of them.
            loaded = iter(access_many([(va, 8 if data is None else data)
                                       for va, data in zip(vas, datas)]))
            for va, data in zip(vas, datas):
                off = va - base
                if data is None:
                    if next(loaded) != shadow[off:off + 8]:
                        self.mismatch(f"load at file offset {off}")
                else:
                    shadow[off:off + 8] = data
            left -= n
            since_msync += n
            since_wb += n
            if since_msync >= self.msync_every:
                p.msync(base, self.file_pages * PAGE, MS_SYNC)
                since_msync = 0
            if since_wb >= self.writeback_every:
                self.k.writeback()
                since_wb = 0
            yield n

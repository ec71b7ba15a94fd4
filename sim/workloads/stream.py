"""``stream``: sequential writes through a large shared file mapping.

Stores of ``record`` bytes walk the file from start to end (and around again), like a log
or a copy into an mmap'ed output file; the flusher runs every ``writeback_every`` accesses
and every ``write_every``-th record goes through write() instead of a store.
"""

from mkclean.sim.kernel import MAP_SHARED, PROT_READ, PROT_WRITE

from .base import Option, Workload

PAGE = 4096


class Stream(Workload):
    name = "stream"

    options = {
        "file_pages": Option(4096, 1, 1 << 18, "pages of the shared file"),
        "record": Option(256, 1, PAGE, "bytes a store writes (divides 4096: no store "
                                       "crosses a page)"),
        "writeback_every": Option(16_384, 1, help="accesses between flusher passes"),
        "write_every": Option(0, 0, help="every N-th record goes through write() (0: none)"),
        "chunk": Option(4096, 1, 1 << 16, "accesses handed to the hardware at once"),
    }

    @classmethod
    def check_together(cls, values):
        if PAGE % values["record"]:
            raise ValueError(f"record must divide {PAGE} (a store may not cross a page), "
                             f"got {values['record']}")

    def setup(self):
        k = self.k
        size = self.file_pages * PAGE
        self.f = k.create_file("stream", size)
        self.shadow[self.f] = bytearray(size)
        self.p = k.spawn()
        self.base = self.p.mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, file=self.f)
        self.pos = 0

    def steps(self):
        p, f, base, shadow = self.p, self.f, self.base, self.shadow[self.f]
        access_many, write = p.access_many, p.write
        rec, size = self.record, self.file_pages * PAGE
        left = self.accesses
        since_wb = 0
        i = 0
        pattern = bytes(self.rng.getrandbits(8) for _ in range(rec * 4))
        while left > 0:
            n = min(self.chunk, left, self.writeback_every - since_wb)
            batch = []            # stores since the last write(), for one hardware batch
            for _ in range(n):
                off = self.pos
                start = (i * 7) % (rec * 3)
                data = pattern[start:start + rec]
                i += 1
                if self.write_every and i % self.write_every == 0:
                    access_many(batch)
                    batch = []
                    write(f, off, data)
                else:
                    batch.append((base + off, data))
                shadow[off:off + rec] = data
                self.pos = (off + rec) % size
            access_many(batch)
            left -= n
            since_wb += n
            if since_wb >= self.writeback_every:
                self.k.writeback()
                since_wb = 0
            yield n

"""``clean_store``: the mechanism one step at a time, for waves and demonstrations.

Rounds over a small shared writable file mapping: load every page (a read fault maps it
read-only and clean), store to every page (the store page fault: do_wp_page makes the PTE
writable and dirty and the page dirty; the store is retried), then writeback (page_mkclean
write-protects and cleans every PTE and flushes the TLB; the page goes to the file). A
trace of it shows each of those on the RTL beside the kernel's actions (``make waves``).
"""

from mkclean.sim.kernel import MAP_SHARED, PROT_READ, PROT_WRITE

from .base import Option, Workload

PAGE = 4096


class CleanStore(Workload):
    name = "clean_store"

    options = {
        "pages": Option(2, 1, 4096, "pages of the shared file"),
    }

    def setup(self):
        size = self.pages * PAGE
        self.f = self.k.create_file("clean_store", size)
        self.shadow[self.f] = bytearray(size)
        self.p = self.k.spawn()
        self.base = self.p.mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, file=self.f)

    def steps(self):
        p, shadow = self.p, self.shadow[self.f]
        left = self.accesses
        round_ = 0
        while left > 0:
            for page in range(self.pages):
                if left == 0:
                    break
                p.load(self.base + page * PAGE, 8)
                left -= 1
                yield 1
            for page in range(self.pages):
                if left == 0:
                    break
                off = page * PAGE + 8 * (round_ % 512)
                data = self.rng.getrandbits(64).to_bytes(8, "little")
                p.store(self.base + off, data)
                shadow[off:off + 8] = data
                left -= 1
                yield 1
            self.k.writeback()
            round_ += 1

"""The random differential campaign: random page tables, accesses, sfences, CSR changes,
wait states, bus errors and PTE changes during walks, on the RTL and the golden model.

Everything is drawn from one ``random.Random(seed)``, so a seed replays a run exactly.
"""

import random
from collections import Counter
from dataclasses import dataclass

from .pair import Event, Mismatch, Pair
from .stimulus import (PTE_A, PTE_D, PTE_G, PTE_R, PTE_U, PTE_V, PTE_W, PTE_X, LEVEL_SIZE,
                       PageTables, pte)

TABLES = 0x10000          # page tables from here ...
DATA = 0x10_0000          # ... data frames from here to the end of memory
SPACES = 3                # address spaces, ASIDs 1..SPACES, each with its own root
PERMS = (PTE_R, PTE_R | PTE_W, PTE_R | PTE_X, PTE_R | PTE_W | PTE_X, PTE_X)
MALFORMED = ("v0", "w_no_r", "reserved", "pbmt", "napot", "misaligned", "ppn_range",
             "nonleaf_adu", "nonleaf_level0", "nonleaf_range")
SIZE_NAME = {0: "4k", 1: "2m", 2: "1g"}


@dataclass
class Mapping:
    space: int
    vaddr: int            # canonical, aligned to the level's page size
    level: int
    pte_addr: int
    label: str            # "4k"/"2m"/"1g" or the malformation it carries


def sign_extend(vaddr):
    return vaddr | (((1 << 64) - (1 << 39)) if vaddr >> 38 & 1 else 0)


class Campaign:
    """One seeded campaign over a :class:`~.pair.Pair`."""

    def __init__(self, pair: Pair, seed: int):
        self.pair = pair
        self.rng = random.Random(seed)
        self.phys_size = pair.params["phys_size"]
        self.classes = Counter()
        self.tables = []
        self.mappings = []
        self.space = 0
        self.translations = 0
        self.bare = False         # satp.mode Bare or priv M: no translation

    # -- page tables ----------------------------------------------------------------

    def build(self, count=48):
        next_free = TABLES
        for space in range(SPACES):
            root = next_free
            self.pair.memory.write(root, bytes(0x1000))
            self.tables.append(PageTables(self.pair.memory, root, root + 0x1000,
                                          limit=root + 0x4_0000))
            next_free += 0x4_0000        # 64 table pages per space
        for _ in range(count):
            self.add_mapping()

    def add_mapping(self):
        rng = self.rng
        space = rng.randrange(SPACES)
        pt = self.tables[space]
        level = rng.choices((0, 1, 2), (6, 3, 1))[0]
        vpn = [rng.randrange(512) for _ in range(3)]
        if rng.random() < 0.5:                    # crowd a few regions: shared tables
            vpn[2] = rng.choice((0, 1, 511))
        for i in range(level):
            vpn[i] = 0
        vaddr = sign_extend((vpn[2] << 30) | (vpn[1] << 21) | (vpn[0] << 12))
        if pt.next_free + 2 * 0x1000 > pt.limit:
            return
        addr = pt.pte_addr(vaddr, level)
        if addr is None:
            return
        label = SIZE_NAME[level]
        if rng.random() < 0.3:
            label = rng.choice(MALFORMED)
            if label == "misaligned" and level == 0:
                label = "4k"                     # a 4K page cannot be misaligned
        value = self.leaf_value(level, label)
        if label.startswith("nonleaf"):
            if level == 0 and label != "nonleaf_level0":
                label = "nonleaf_level0"
            value = self.nonleaf_value(pt, level, label)
        self.pair.write64(addr, value)
        self.mappings.append(Mapping(space, vaddr, level, addr, label))

    def leaf_value(self, level, label):
        rng = self.rng
        frames = (self.phys_size - DATA) // LEVEL_SIZE[level]
        if frames > 0:
            base = DATA + (LEVEL_SIZE[level] - DATA % LEVEL_SIZE[level]) % LEVEL_SIZE[level]
            frames = max(1, (self.phys_size - base) // LEVEL_SIZE[level])
            ppn = (base + rng.randrange(frames) * LEVEL_SIZE[level]) >> 12
        else:
            ppn = 0                              # a 1G page at 0 covers all of memory
        flags = PTE_V | rng.choice(PERMS)
        for bit, p in ((PTE_U, 0.5), (PTE_G, 0.1), (PTE_A, 0.7), (PTE_D, 0.5)):
            if rng.random() < p:
                flags |= bit
        high = 0
        if label == "v0":
            flags &= ~PTE_V
        elif label == "w_no_r":
            flags = (flags | PTE_W) & ~PTE_R
        elif label == "reserved":
            high = 1 << rng.randrange(54, 61)
        elif label == "pbmt":
            high = rng.randrange(1, 4) << 61
        elif label == "napot":
            high = 1 << 63
        elif label == "misaligned" and level:
            # One PPN bit below the level: a slice of 9 bits first (a 1G page has two,
            # ppn[8:0] and ppn[17:9]), so that each slice is as likely as the other.
            ppn |= 1 << (9 * rng.randrange(level) + rng.randrange(9))
            if rng.random() < 0.5:    # otherwise fully permitted: alignment alone decides
                flags |= PTE_R | PTE_W | PTE_X | PTE_A | PTE_D
        elif label == "ppn_range":
            ppn = (self.phys_size >> 12) + rng.randrange(1, 1 << 20)
            ppn &= ~((1 << (9 * level)) - 1)
        return pte(ppn, flags) | high

    def nonleaf_value(self, pt, level, label):
        rng = self.rng
        if label == "nonleaf_range":
            return pte((self.phys_size >> 12) + rng.randrange(1 << 16), PTE_V)
        if label == "nonleaf_level0":
            return pte(rng.randrange(DATA >> 12, self.phys_size >> 12), PTE_V)
        child = pt.alloc_table()
        return pte(child >> 12, PTE_V | rng.choice((PTE_A, PTE_D, PTE_U)))

    # -- steps ----------------------------------------------------------------------

    async def start(self):
        await self.pair.set_csr(mode=8, asid=1, ppn=self.tables[0].root >> 12, priv=1,
                                sum=0, mxr=0, adue=1)

    async def step(self):
        """One random action; a translation returns True."""
        rng = self.rng
        r = rng.random()
        if r < 0.72:
            await self.translate()
            return True
        if r < 0.82:
            await self.mutate()
        elif r < 0.88:
            await self.pair.sfence(*self.sfence_operands())
        elif r < 0.97:
            await self.change_csr()
        else:
            self.add_mapping()
        return False

    def sfence_operands(self):
        rng = self.rng
        vaddr = None
        if rng.random() < 0.6 and self.mappings:
            m = rng.choice(self.mappings)
            vaddr = m.vaddr + rng.randrange(LEVEL_SIZE[m.level])
        asid = rng.randrange(1, SPACES + 1) if rng.random() < 0.4 else None
        return vaddr, asid

    async def change_csr(self):
        rng = self.rng
        what = rng.randrange(7)
        if self.bare:             # leave Bare/M soon: they translate nothing
            self.bare = False
            await self.pair.set_csr(mode=8, priv=1)
        elif what == 0:
            self.space = rng.randrange(SPACES)
            await self.pair.set_csr(asid=self.space + 1,
                                    ppn=self.tables[self.space].root >> 12)
        elif what == 1:
            await self.pair.set_csr(priv=rng.choice((0, 1, 1)))
        elif what == 2:
            await self.pair.set_csr(sum=rng.randrange(2))
        elif what == 3:
            await self.pair.set_csr(mxr=rng.randrange(2))
        elif what == 4:
            await self.pair.set_csr(adue=rng.randrange(2))
        elif what == 5:
            self.bare = True
            await self.pair.set_csr(**rng.choice(({"mode": 0}, {"priv": 3})))

    def mutated(self, m):
        """A new value for the PTE of ``m``: flip a permission or A/D bit, or remap."""
        rng = self.rng
        old = self.pair.read64(m.pte_addr)
        choice = rng.randrange(5)
        if choice == 0:
            return old ^ rng.choice((PTE_W | PTE_D, PTE_A, PTE_D, PTE_U, PTE_X))
        if choice == 1:
            return old & ~(PTE_W | PTE_D)          # what mkclean does
        if choice == 2:
            return old & ~PTE_V
        if choice == 3:
            return old | PTE_V
        return self.leaf_value(m.level, SIZE_NAME[m.level])

    async def mutate(self):
        rng = self.rng
        if not self.mappings:
            return
        m = rng.choice(self.mappings)
        value = self.mutated(m)
        self.pair.write64(m.pte_addr, value)
        m.label = self.relabel(m, value)
        if rng.random() < 0.5:
            await self.pair.sfence(*self.sfence_operands())

    @staticmethod
    def relabel(m, value):
        if m.label.startswith("nonleaf"):
            return m.label
        return SIZE_NAME[m.level] if value & PTE_V else "v0"

    async def translate(self):
        rng = self.rng
        kind = rng.choice((0, 0, 1, 1, 2, 3))
        m = None
        r = rng.random()
        space = [x for x in self.mappings if x.space == self.space]
        if r < 0.04:
            vaddr = rng.getrandbits(64)
            label = "random_vaddr"
        elif r < 0.08 or not space:
            vaddr = sign_extend(rng.getrandbits(39))
            label = "unmapped"
        else:
            m = rng.choice(space)
            # Half the offsets stay within the size of memory, so that a 1G page at 0
            # also translates.
            size = LEVEL_SIZE[m.level]
            vaddr = m.vaddr + rng.randrange(min(size, self.phys_size) if rng.random() < 0.5
                                            else size)
            label = m.label
        events = []
        r = rng.random()
        if r < 0.06:
            events.append(Event(rng.randrange(5), "error"))
            label = "bus_error"
        elif r < 0.16 and m is not None:
            events.append(Event(rng.randrange(5), "write", addr=m.pte_addr,
                                value=self.mutated(m)))
            label = "pte_change_in_walk"
        elif r < 0.20:
            vaddr_s, asid_s = self.sfence_operands()
            events.append(Event(rng.randrange(4), "sfence", vaddr=vaddr_s, asid=asid_s))
            label = "sfence_in_walk"
        if self.bare:
            label = "bare"
        out = await self.pair.translate(vaddr, kind, events)
        if m is not None:
            m.label = self.relabel(m, self.pair.read64(m.pte_addr)) \
                if label == "pte_change_in_walk" else m.label
        self.translations += 1
        self.classify(label, out)

    def classify(self, label, out):
        resp = out.response
        log = out.bus_log
        outcome = "ok" if not resp.fault else ("page_fault" if resp.cause >= 12
                                               else "access_fault")
        self.classes[f"{outcome}:{label}"] += 1
        if not log:
            self.classes["answered_without_walk"] += 1
        if any(we for we, *_ in log):
            self.classes["ad_update"] += 1
        if any(a[1] and not a[0] and not b[1] for a, b in zip(log, log[1:])):
            self.classes["ad_rewalk"] += 1       # a locked re-read, then a new walk

    async def check(self):
        await self.pair.check_tlb()
        self.pair.check_memory()


async def run(pair: Pair, seed: int, translations: int, progress=None, check_every=200):
    """Run until ``translations`` translations are done or the first mismatch.

    Returns a dict: translations, mismatches (0 or 1: the campaign stops at the first),
    first_mismatch (text or None), classes.
    """
    campaign = Campaign(pair, seed)
    campaign.build()
    await campaign.start()
    mismatch = None
    steps = 0
    try:
        while campaign.translations < translations:
            if await campaign.step() and progress:
                progress(campaign.translations)
            steps += 1
            if steps % check_every == 0:
                await campaign.check()
        await campaign.check()
    except Mismatch as e:
        mismatch = f"after {campaign.translations} translations (step {steps}): {e}"
    return {
        "translations": campaign.translations,
        "mismatches": int(mismatch is not None),
        "first_mismatch": mismatch,
        "classes": dict(sorted(campaign.classes.items())),
    }

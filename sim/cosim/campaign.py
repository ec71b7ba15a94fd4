"""The random differential campaign: random page tables, accesses, sfences, CSR changes,
wait states, bus errors and PTE changes during walks, on the RTL and the golden model;
then, when the pair samples coverage, a directed fill of the bins the random part left
(:class:`Fill`).

Everything is drawn from one ``random.Random(seed)``, so a seed replays a run exactly;
the fill depends only on what the random part covered.

Every physical address of a campaign (its page tables at :data:`TABLES`, the fill's at
:data:`FILL_TABLES`, data frames from :data:`DATA`, satp) is an offset from the pair's
``phys_base``; the PPNs "beyond memory" it writes are past the end and, when memory does
not start at 0, below the base too. At base 0 a seed draws what it drew before bases.
"""

import random
from collections import Counter
from dataclasses import dataclass

from ..model import mmu as golden
from ..model.pte import PPN_SHIFT
from .coverage import ADS, KINDS, LEVEL_NAMES, MXRS, PRIVS, SFENCE_FORMS, SUMS
from .pair import Event, Mismatch, Pair
from .stimulus import (PTE_A, PTE_D, PTE_G, PTE_R, PTE_U, PTE_V, PTE_W, PTE_X, LEVEL_SIZE,
                       PageTables, pte)

TABLES = 0x10000          # page tables from here (an offset from the base) ...
DATA = 0x10_0000          # ... data frames from here to the end of memory
SPACES = 3                # address spaces, ASIDs 1..SPACES, each with its own root
PERMS = (PTE_R, PTE_R | PTE_W, PTE_R | PTE_X, PTE_R | PTE_W | PTE_X, PTE_X)
MALFORMED = ("v0", "w_no_r", "reserved", "pbmt", "napot", "misaligned", "ppn_range",
             "nonleaf_adu", "nonleaf_level0", "nonleaf_range")
SIZE_NAME = {0: "4k", 1: "2m", 2: "1g"}
PPN_LIMIT = 1 << 44       # a PTE's PPN field


def beyond_ppn(rng, base, size, past, level, below):
    """A PPN outside memory ``[base, base + size)`` for a page at ``level``: ``past``
    (a range of pages) past the end, aligned down to the level; or, when ``below`` and a
    whole page of the level fits below the base, that page. Past the end at the top of
    the address space wraps to a low PPN, which is below the base."""
    pages_below = base >> (12 + 9 * level)
    if below and pages_below:
        return rng.randrange(pages_below) << (9 * level)
    ppn = ((base + size) >> 12) + rng.randrange(*past)
    return (ppn & ~((1 << (9 * level)) - 1)) % PPN_LIMIT


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

    #: Where memory starts (the pair's ``phys_base``); 0 for a campaign made without a
    #: pair (tests/test_verify.py draws leaves from one).
    base = 0

    def __init__(self, pair: Pair, seed: int):
        self.pair = pair
        self.rng = random.Random(seed)
        self.phys_size = pair.params["phys_size"]
        #: where memory starts: every physical address below is from here
        self.base = pair.phys_base
        #: satp's VPN[2]s that the mappings crowd: a few regions share tables; with a
        #: base, the one where memory is takes the place of 1 (Bare translations land
        #: in memory there)
        base_vpn2 = (self.base >> 30) & 0x1FF
        self.crowd = (0, 1, 511) if base_vpn2 in (0, 1, 511) else (0, base_vpn2, 511)
        self.classes = Counter()
        self.tables = []
        self.mappings = []
        self.space = 0
        self.translations = 0
        self.bare = False         # satp.mode Bare or priv M: no translation

    # -- page tables ----------------------------------------------------------------

    def build(self, count=48):
        next_free = self.base + TABLES
        for space in range(SPACES):
            root = next_free
            self.pair.memory.write(root, bytes(0x1000))
            self.tables.append(PageTables(self.pair.memory, root, root + 0x1000,
                                          limit=root + 0x4_0000))
            next_free += 0x4_0000        # 64 table pages per space
        for _ in range(count):
            self.add_mapping()
        if self.base:
            # Memory does not start at 0: in every space two leaves and two pointers below
            # it and as many past its end, besides the few the random malformations make.
            for space in range(SPACES):
                for label in ("ppn_range", "nonleaf_range"):
                    for below in (True, False, True, False):
                        self.add_beyond(space, label, below)

    def add_mapping(self):
        rng = self.rng
        space = rng.randrange(SPACES)
        pt = self.tables[space]
        level = rng.choices((0, 1, 2), (6, 3, 1))[0]
        vaddr = self.random_vaddr(level, crowd=0.5)
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
        if (label in ("ppn_range", "nonleaf_range") and
                ((value >> 10) % PPN_LIMIT) << 12 < self.base):
            label += "_below"                   # outside memory, below it
        self.pair.write64(addr, value)
        self.mappings.append(Mapping(space, vaddr, level, addr, label))

    def random_vaddr(self, level, crowd):
        """A canonical vaddr aligned to ``level``'s page, in one of the crowded regions (so
        that mappings share tables) with the chance ``crowd`` (1: always, and no draw)."""
        rng = self.rng
        vpn = [rng.randrange(512) for _ in range(3)]
        if crowd >= 1 or rng.random() < crowd:
            vpn[2] = rng.choice(self.crowd)
        for i in range(level):
            vpn[i] = 0
        return sign_extend((vpn[2] << 30) | (vpn[1] << 21) | (vpn[0] << 12))

    def add_beyond(self, space, label, below):
        """A 4K leaf ("ppn_range") or a level-1 pointer ("nonleaf_range") in ``space``
        whose PPN is outside memory, below the base or past the end; otherwise fully
        permitted, so that translations through it reach the range check. Not over a
        valid PTE."""
        rng = self.rng
        pt = self.tables[space]
        level = 0 if label == "ppn_range" else 1
        vaddr = self.random_vaddr(level, crowd=1)
        if pt.next_free + 2 * 0x1000 > pt.limit:
            return
        addr = pt.pte_addr(vaddr, level)
        if addr is None or self.pair.read64(addr) & PTE_V:
            return
        ppn = beyond_ppn(rng, self.base, self.phys_size, (1, 1 << 16), level, below)
        if level:
            value = pte(ppn, PTE_V)
        else:
            value = pte(ppn, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D |
                        (PTE_U if rng.random() < 0.5 else 0))
        self.pair.write64(addr, value)
        # (past the end at the top of the address space wraps below the base)
        self.mappings.append(Mapping(space, vaddr, level, addr,
                                     label + ("_below" if ppn << 12 < self.base else "")))

    def leaf_value(self, level, label):
        rng = self.rng
        size, base = LEVEL_SIZE[level], self.base
        frames = (self.phys_size - DATA) // size
        if frames > 0:
            first = DATA + (size - DATA % size) % size
            frames = max(1, (self.phys_size - first) // size)
            ppn = (base + first + rng.randrange(frames) * size) >> 12
        else:
            # A page larger than memory's data: the one that holds memory (at base 0, a
            # 1G page at 0 covers all of memory).
            ppn = (base & ~(size - 1)) >> 12
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
            ppn = beyond_ppn(rng, base, self.phys_size, (1, 1 << 20), level,
                             below=base and rng.random() < 0.5)
        return pte(ppn, flags) | high

    def nonleaf_value(self, pt, level, label):
        rng = self.rng
        if label == "nonleaf_range":
            return pte(beyond_ppn(rng, self.base, self.phys_size, (0, 1 << 16), 0,
                                  below=self.base and rng.random() < 0.5), PTE_V)
        if label == "nonleaf_level0":
            return pte(rng.randrange((self.base + DATA) >> 12,
                                     (self.base + self.phys_size) >> 12), PTE_V)
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

    def relabel(self, m, value):
        """The label of mapping ``m`` once its PTE is ``value``: a pointer keeps its own;
        a leaf is "v0" when not valid, "ppn_range" or "ppn_range_below" when its page
        lies wholly past memory's end or below its base, else named by its size."""
        if m.label.startswith("nonleaf"):
            return m.label
        if not value & PTE_V:
            return "v0"
        size = LEVEL_SIZE[m.level]
        start = (((value >> 10) % PPN_LIMIT) << 12) & ~(size - 1)
        if start + size <= self.base:
            return "ppn_range_below"
        if start >= self.base + self.phys_size:
            return "ppn_range"
        return SIZE_NAME[m.level]

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
            # Half the offsets stay within memory, so that a page larger than memory (a
            # 1G page at 0) also translates.
            size = LEVEL_SIZE[m.level]
            if rng.random() < 0.5:
                vaddr = m.vaddr + self.base % size + rng.randrange(min(size, self.phys_size))
            else:
                vaddr = m.vaddr + rng.randrange(size)
            label = m.label
        events = []
        # QEMU takes no bus errors, PTE changes or sfences inside a walk
        r = rng.random() if self.pair.third is None else 1.0
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
        if self.pair.third is not None:
            self.pair.third.check_memory([m.pte_addr for m in self.mappings])


FILL_ROOT = TABLES + SPACES * 0x4_0000    # the fill's own address space: its root, ...
FILL_TABLES = (FILL_ROOT, FILL_ROOT + 0x1000, FILL_ROOT + 0x2000)   # ... L1 and L0 tables
FILL_ASID = SPACES + 1
FILL_VA = (5 << 30) | (0 << 21) | (7 << 12)   # root[5] -> L1[0] -> L0[7]
_LEVEL_OFFSET = {level: LEVEL_SIZE[level] - 1 for level in LEVEL_SIZE}
_OK = PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D     # a leaf's flags, every one


class Fill:
    """The directed fill: for each bin of the pair's coverage not hit yet, one scenario
    aimed at it, in an address space of its own (ASID ``FILL_ASID``: a root and one L1
    and one L0 table below the campaign's spaces), every scenario from an empty TLB and
    walk cache. What a scenario really hit is what the golden model reports, so a recipe
    that misses leaves its hole open for the tests to see.

    Each translation takes the path root[5] -> L1[0] -> L0[7] of :data:`FILL_VA`; a
    scenario puts the PTE it needs at the level it needs and pointers above it. A leaf
    that translates maps the page of its level that holds memory's first byte
    (``frame``), and the address translated through a leaf at a level is ``va`` of it:
    :data:`FILL_VA` moved within its page to land in memory (at a base aligned to the
    level's page size, :data:`FILL_VA` itself).
    """

    def __init__(self, pair: Pair):
        self.pair = pair
        self.coverage = pair.coverage
        self.phys_size = pair.params["phys_size"]
        self.base = base = pair.phys_base
        self.tables = [base + t for t in FILL_TABLES]
        self.slot = [self.tables[2 - level] + ((FILL_VA >> (12 + 9 * level)) & 0x1FF) * 8
                     for level in range(3)]
        #: per level, a leaf's PPN field (as in the PTE) for the page holding memory's
        #: first byte; and the address that lands in memory through it
        self.frame = [pte((base >> (12 + 9 * level)) << (9 * level), 0) for level in range(3)]
        self.va = [(FILL_VA & ~_LEVEL_OFFSET[level]) |
                   ((base + (FILL_VA & _LEVEL_OFFSET[level])) & _LEVEL_OFFSET[level])
                   for level in range(3)]
        #: the first page past memory's end (a PPN)
        self.past = ((base + self.phys_size) >> 12) % PPN_LIMIT
        self.translations = 0
        self.csr = {}

    @staticmethod
    def fits(phys_size):
        return FILL_TABLES[-1] + 0x1000 <= min(phys_size, DATA)

    async def run(self):
        """Fill every hole; the memory answers without wait states (but for the
        wait-state bins): a walk takes half the cycles."""
        ram = self.pair.rtl.ram
        latency, ram.latency = ram.latency, 0
        try:
            await self._run()
        finally:
            ram.latency = latency

    async def _run(self):
        pair = self.pair
        for table in self.tables:
            pair.memory.write(table, bytes(0x1000))
        await pair.set_csr(mode=8, asid=FILL_ASID, ppn=self.tables[0] >> 12)
        holes = self.coverage.holes()
        order = {"priv": PRIVS, "sum": SUMS, "mxr": MXRS, "ad": ADS}
        checks = sorted(holes["checks"], key=lambda h: tuple(
            order[axis].index(v) for axis, v in zip(("priv", "sum", "mxr", "ad"), h[1][2:])))
        for decision, (level, kind, priv, sum_, mxr, ad) in checks:
            await self.check(decision, None if level == "-" else LEVEL_NAMES.index(level),
                             KINDS.index(kind), PRIVS.index(priv), SUMS.index(sum_),
                             MXRS.index(mxr), ADS.index(ad))
        await self.csrs(priv=1, sum=0, mxr=0, adue=1)
        for cls, (level, bit) in holes["malformed"]:
            await self.malformed(cls, LEVEL_NAMES.index(level), bit)
        for _, (form, size, glob) in holes["sfence"]:
            await self.sfence(SFENCE_FORMS.index(form), LEVEL_NAMES.index(size),
                              glob == "global")
        waits = set()
        for _, (event, role) in holes["injection"]:
            if event.startswith("wait"):
                if event not in waits:       # one walk hits every role at once
                    waits.add(event)
                    await self.waits(int(event[4:]))
            else:
                await self.inject(event, role)

    # -- tools --------------------------------------------------------------------------

    async def csrs(self, **want):
        changed = {k: v for k, v in want.items() if self.csr.get(k) != v}
        if changed:
            await self.pair.set_csr(**changed)
            self.csr.update(changed)

    async def path(self, level, value):
        """Pointers down to ``level``, ``value`` there; an empty TLB and walk cache."""
        write = self.pair.write64
        if level < 2:
            write(self.slot[2], pte(self.tables[1] >> 12, PTE_V))
        if level < 1:
            write(self.slot[1], pte(self.tables[2] >> 12, PTE_V))
        write(self.slot[level], value)
        await self.pair.sfence()

    async def translate(self, vaddr, kind, events=()):
        self.translations += 1
        return await self.pair.translate(vaddr, kind, events)

    def pointer(self, level, flags=0):
        """A valid pointer at ``level`` to the fill's next table (at level 0, to memory's
        first page)."""
        return pte(self.tables[3 - level] >> 12 if level else self.base >> 12, PTE_V | flags)

    @staticmethod
    def denied(kind, priv, sum_, mxr):
        """Flags of a leaf (A and D set) that step 6 refuses to ``kind`` under these CSRs
        and a load from S mode with SUM and MXR allows, or None if there is none."""
        u = PTE_U if priv == 0 else 0             # a page ``priv`` may reach
        if kind & 1:
            return PTE_V | PTE_R | PTE_X | u | PTE_A | PTE_D
        if kind == 2:
            return PTE_V | PTE_R | PTE_W | u | PTE_A | PTE_D
        if not mxr:
            return PTE_V | PTE_X | u | PTE_A | PTE_D
        if priv == 0:
            return PTE_V | PTE_R | PTE_A | PTE_D  # an S page from U mode
        if not sum_:
            return PTE_V | PTE_R | PTE_U | PTE_A | PTE_D
        return None

    # -- scenarios --------------------------------------------------------------------------

    async def check(self, decision, level, kind, priv, sum_, mxr, adue):
        """A translation decided by ``decision`` at ``level`` under these CSRs."""
        csr = {"priv": priv, "sum": sum_, "mxr": mxr, "adue": adue}
        if decision == golden.NON_CANONICAL:
            await self.csrs(**csr)
            await self.translate(FILL_VA | 1 << 39, kind)
            return
        flags = _OK | (PTE_U if priv == 0 else 0)
        ok = flags | self.frame[level]          # a leaf that translates
        va = self.va[level]
        denied = self.denied(kind, priv, sum_, mxr)
        if denied is not None:
            denied |= self.frame[level]
        if decision.startswith("2."):
            # A fill by a load from S mode with SUM and MXR, then the hit under ``csr``.
            vaddr = fill_at = va
            if decision == golden.HIT_RANGE:
                # The page holding memory's last byte, which runs past the end, or (a
                # page larger than memory, ending where memory does) starts below the
                # base: filled where it is in memory, then hit where it is not.
                end = self.base + self.phys_size
                ppn = ((end - 1) >> (12 + 9 * level)) << (9 * level)
                page, start = ppn << 12, FILL_VA & ~_LEVEL_OFFSET[level]
                outside = end + 8 if page + LEVEL_SIZE[level] > end else self.base - 8
                leaf, vaddr = pte(ppn, flags), start + outside - page
                fill_at = start + max(page, self.base) - page
            else:
                leaf = {golden.HIT: ok, golden.HIT_SVADE: ok & ~PTE_D,
                        golden.HIT_PERMISSION: denied}[decision]
            if leaf is None:
                return
            await self.path(level, leaf)
            await self.csrs(priv=1, sum=1, mxr=1, adue=adue)
            await self.translate(fill_at, 0)
            await self.csrs(**csr)
            await self.translate(vaddr, kind)
            return
        await self.csrs(**csr)
        events = []
        if decision == golden.PTE_RANGE:
            if level == 2:
                await self.path(2, ok)
                await self.pair.set_csr(ppn=self.past)
                await self.translate(FILL_VA, kind)
                await self.pair.set_csr(ppn=self.tables[0] >> 12)
                return
            await self.path(level + 1, pte(self.past, PTE_V))
            await self.translate(FILL_VA, kind)
            return
        if decision == golden.PADDR_RANGE:
            value = pte((((self.base + self.phys_size - 1) >> (12 + 9 * level)) + 1
                         << (9 * level)) % PPN_LIMIT, flags)
        elif decision == golden.PERMISSION:
            value = denied
            if value is None:
                return
        elif decision == golden.NONLEAF_ADU:
            value = self.pointer(level, PTE_A)
        elif decision == golden.NONLEAF_LEVEL0:
            value = self.pointer(0)
        else:
            value = {golden.FILL: ok, golden.STALE: ok, golden.BUS_ERROR: ok,
                     golden.AD_UPDATE: ok & ~(PTE_A | PTE_D), golden.SVADE: ok & ~PTE_A,
                     golden.AD_BUS_ERROR: ok & ~PTE_A, golden.INVALID: ok & ~PTE_V,
                     golden.MISALIGNED: ok | 1 << PPN_SHIFT}[decision]
            # With an empty walk cache the read of level L is transaction 2 - L, and the
            # locked re-read comes next.
            if decision == golden.STALE:
                events = [Event(0, "sfence")]
            elif decision == golden.BUS_ERROR:
                events = [Event(2 - level, "error")]
            elif decision == golden.AD_BUS_ERROR:
                events = [Event(3 - level, "error")]
        await self.path(level, value)
        await self.translate(va, kind, events)

    async def malformed(self, cls, level, bit):
        """A load from S mode (no SUM, no MXR, Svadu) faulting for this malformation alone."""
        ok = _OK | self.frame[level]
        if cls == "nonleaf_adu":
            value = self.pointer(level, {"A": PTE_A, "D": PTE_D, "U": PTE_U}[bit])
        elif cls == "nonleaf_level0":
            value = self.pointer(0)
        elif cls == "misaligned":
            value = ok | 1 << (PPN_SHIFT + int(bit))
        elif cls == "v0":
            value = ok & ~PTE_V
        elif cls == "w_no_r":
            value = ok & ~PTE_R & ~(0 if bit == "WX" else PTE_X)
        elif cls == "pbmt":
            value = ok | int(bit) << 61
        else:                                      # reserved, napot: the bit itself
            value = ok | 1 << int(bit)
        await self.path(level, value)
        await self.translate(self.va[level], 0)

    async def sfence(self, form, level, global_):
        """A TLB entry of this size, then an sfence of this form that addresses it."""
        va = self.va[level]
        await self.path(level, _OK | self.frame[level] | (PTE_G if global_ else 0))
        await self.translate(va, 0)
        await self.pair.sfence(va if form & 1 else None, FILL_ASID if form & 2 else None)

    async def inject(self, event, role):
        """A 4K walk that updates A (transactions: reads at levels 2, 1, 0, the locked
        re-read, the A/D write) with ``event`` at ``role``'s transaction."""
        at = ("read_l2", "read_l1", "read_l0", "locked_read", "ad_write").index(role)
        leaf = (_OK | self.frame[0]) & ~(PTE_A | PTE_D)
        if event == "error":
            events = [Event(at, "error")]
        elif event == "sfence":
            events = [Event(at, "sfence")]
        else:                  # "write", "rewalk": the PTE changes, as mkclean changes it
            events = [Event(at, "write", addr=self.slot[0], value=leaf & ~PTE_W)]
        await self.path(0, leaf)
        await self.translate(self.va[0], 0, events)

    async def waits(self, n):
        """The same walk with ``n`` wait states at every transaction."""
        ram = self.pair.rtl.ram
        latency, ram.latency = ram.latency, n
        try:
            await self.path(0, (_OK | self.frame[0]) & ~(PTE_A | PTE_D))
            await self.translate(self.va[0], 0)
        finally:
            ram.latency = latency


async def run(pair: Pair, seed: int, translations: int, progress=None, check_every=200,
              fill=True, against=None, masks_off=()):
    """Run until ``translations`` translations are done or the first mismatch; then, if
    the pair samples coverage and ``fill``, the directed fill of what is left.
    ``against="qemu"``: QEMU's MMU is a third side (:mod:`.qemu_side`), for the stimuli
    it can take: no events inside walks, and so no fill; ``masks_off``: its masks not to
    apply.

    Returns a dict: translations, fill_translations, mismatches (0 or 1: the campaign
    stops at the first), first_mismatch (text or None), mismatch_cycle (the RTL's clock
    cycle when it was seen, for a window of waves around it; or None), classes; with
    ``against``, ``against`` too: the third side's translations and masks applied.
    """
    campaign = Campaign(pair, seed)
    campaign.build()
    third = None
    if against == "qemu":
        from .qemu_side import QemuSide, tag_memory
        for mem in (pair.rtl_mem, pair.golden_mem):
            tag_memory(mem, pair.phys_base + DATA)
        third = pair.third = QemuSide(pair, masks_off)
        fill = False
    elif against is not None:
        raise ValueError(f"no third machine {against!r}: the one there is, is qemu")
    await campaign.start()
    mismatch = mismatch_cycle = None
    steps = 0
    filler = None
    try:
        while campaign.translations < translations:
            if await campaign.step() and progress:
                progress(campaign.translations)
            steps += 1
            if steps % check_every == 0:
                await campaign.check()
        await campaign.check()
        if fill and pair.coverage is not None and Fill.fits(campaign.phys_size):
            filler = Fill(pair)
            await filler.run()
            await campaign.check()
    except Mismatch as e:
        where = (f"in the directed fill, after {filler.translations} of its translations"
                 if filler else f"after {campaign.translations} translations (step {steps})")
        mismatch = f"{where}: {e}"
        mismatch_cycle = pair.rtl.cycle
    finally:
        if third is not None:
            pair.third = None
            third.close()
    return {
        "translations": campaign.translations,
        "fill_translations": filler.translations if filler else 0,
        "mismatches": int(mismatch is not None),
        "first_mismatch": mismatch,
        "mismatch_cycle": mismatch_cycle,
        "classes": dict(sorted(campaign.classes.items())),
        **({"against": {against: {"translations": third.translations,
                                  "masks": dict(third.masks)}}} if third else {}),
    }

"""Functional coverage of the differential campaign (cocotb-coverage): which checks of the
walk decided which translations, under which CSRs; which malformed PTEs were the sole
reason for their fault; which sfence forms met which TLB entries; which transactions of a
walk had a bus error, a PTE change, an sfence or wait states injected.

Four groups, in cocotb-coverage's database under ``<name>.``:

- ``check.<step>_<check>``: one cross a check of hdl/README.md's steps 1-9 (the
  decisions of :mod:`mkclean.sim.model.mmu`, ``DECISIONS``): level x access kind x
  privilege x SUM x MXR x A/D mode, sampled with the decision the golden model reports
  (``GoldenMMU.decided``), not the RTL's (the pair holds the RTL to it anyway).
- ``malformed.<class>``: level x which bit, sampled when that malformation alone decided
  the fault: the same PTE without it would have passed steps 4-7 at that level (the
  blind spot this exists for: a misaligned page without W that is stored to faults
  whatever the alignment check does).
- ``sfence``: form (x0/x0, vaddr/x0, x0/asid, vaddr/asid) x entry size x global, sampled
  for each valid TLB entry an sfence addresses (by its vaddr, if any, and by its ASID,
  if any, or a global entry it spares).
- ``injection``: what was injected (bus error, PTE change, sfence, 0-3 wait states, and
  the re-walk a changed PTE causes) x the walk's transaction it hit: the read at level
  2, 1 or 0, the locked re-read, the A/D write.

Combinations the contract makes impossible are excluded, each rule with its reason
(:func:`check_exclusions`, :data:`MALFORMED_EXCLUDED`, :data:`INJECTION_EXCLUDED`); a
sample that falls on one is counted in ``excluded_hits`` (a wrong exclusion shows
there).

Samples are counted in a dict as they come and go to cocotb-coverage when a figure is
asked for: each distinct sample once through its CoverPoints and CoverCross, its
further hits added to their counts (cocotb-coverage walks every bin of a cross at each
sample, a cost a campaign would feel).

Runs anywhere (cocotb-coverage needs no simulator): the campaign samples it inside the
simulator and hands :meth:`CampaignCoverage.result` back through the job's result; the
command prints :func:`summary` of that. Imports: cocotb-coverage, the golden model's
decisions and PTE checks.
"""

from ..coverage.cross import Cross, export, forget

from ..model.mmu import (AD_BUS_ERROR, AD_UPDATE, DECISIONS, HIT_PERMISSION, HIT_RANGE,
                         HIT_SVADE, INVALID, MISALIGNED, NON_CANONICAL, NONLEAF_ADU,
                         NONLEAF_LEVEL0, PERMISSION, SVADE, permitted)
from ..model.pte import A, D, HIGH_BITS, PPN_MASK, PPN_SHIFT, R, U, V, W, X

LEVEL_NAMES = ("4k", "2m", "1g")                 # by level 0, 1, 2
LEVELS = ("-",) + LEVEL_NAMES                    # "-": decided before a level (step 1)
KINDS = ("load", "store", "fetch", "amo")        # by seam.Kind
PRIVS = ("U", "S")
SUMS = ("sum0", "sum1")
MXRS = ("mxr0", "mxr1")
ADS = ("svade", "svadu")                         # by csr.adue
CHECK_AXES = {"level": LEVELS, "kind": KINDS, "priv": PRIVS, "sum": SUMS, "mxr": MXRS,
              "ad": ADS}

#: The malformations of a PTE and the bits each can sit in.
MALFORMED_BITS = {
    "v0": ("V",),                                # V=0
    "w_no_r": ("W", "WX"),                       # W without R (X clear, X set)
    "reserved": tuple(str(b) for b in range(54, 61)),
    "pbmt": ("1", "2", "3"),                     # PBMT's value (Svpbmt not implemented)
    "napot": ("63",),                            # N (Svnapot not implemented)
    "nonleaf_adu": ("A", "D", "U"),              # a pointer with A, D or U
    "nonleaf_level0": ("pointer",),              # a pointer at level 0
    "misaligned": tuple(str(b) for b in range(18)),   # the PPN bit below the level
}
_ANY = None
#: (class, level, bit) patterns the malformed group leaves out (None: any), and why.
MALFORMED_EXCLUDED = [
    (("nonleaf_adu", "4k", _ANY), "at level 0 a pointer faults in step 5 anyway (no next "
                                  "level): A, D or U is never the sole cause there"),
    (("nonleaf_level0", "2m", _ANY), "only level 0 has no next level"),
    (("nonleaf_level0", "1g", _ANY), "only level 0 has no next level"),
    (("misaligned", "4k", _ANY), "a 4K page has no PPN bits below its level"),
] + [(("misaligned", "2m", str(b)), "a 2M page has 9 PPN bits below its level")
     for b in range(9, 18)]

SFENCE_FORMS = ("x0/x0", "vaddr/x0", "x0/asid", "vaddr/asid")
GLOBAL = ("global", "non_global")

EVENTS = ("error", "write", "sfence", "wait0", "wait1", "wait2", "wait3", "rewalk")
ROLES = ("read_l2", "read_l1", "read_l0", "locked_read", "ad_write")
INJECTION_EXCLUDED = [
    (("write", "ad_write"), "the bus lock: nobody writes between the locked re-read and "
                            "the A/D write (the pair drops such a change on both sides)"),
] + [(("rewalk", role), "a re-walk starts at the locked re-read, whose compare found the "
                        "PTE changed") for role in ROLES if role != "locked_read"]


def check_exclusions(phys_size):
    """(decision, level, kind, priv, sum, mxr, ad) patterns the check crosses leave out
    (None: any), and why. One depends on the size of memory, and not on its base: the
    base is aligned to the power of two at or above the size, so a page whose size
    divides the size is inside memory whole or not at all at any base."""
    rest = (_ANY,) * 5
    out = [((d, "-") + rest, "decided in a TLB entry or a walk, at its level")
           for d in DECISIONS if d != NON_CANONICAL]
    out += [((NON_CANONICAL, lv) + rest, "step 1 decides before the TLB and the walk: no "
                                         "level") for lv in LEVEL_NAMES]
    out += [((NONLEAF_LEVEL0, lv) + rest, "only level 0 has no next level")
            for lv in ("2m", "1g")]
    out += [((MISALIGNED, "4k") + rest, "a 4K page has no PPN bits below its level")]
    out += [((HIT_SVADE, _ANY, k) + (_ANY,) * 4,
             "only a store or AMO needs D, and a TLB entry always has A (its fill set A or "
             "faulted)") for k in ("load", "fetch")]
    out += [((HIT_SVADE,) + (_ANY,) * 5 + ("svadu",),
             "with Svadu a store that hits D=0 goes to the walker, which decides")]
    out += [((SVADE,) + (_ANY,) * 5 + ("svadu",), "with Svadu A/D are written, not faulted")]
    out += [((d,) + (_ANY,) * 5 + ("svade",), "Svade has no A/D sequence: it faults")
            for d in (AD_BUS_ERROR, AD_UPDATE)]
    out += [((d, _ANY, "load", "S", "sum1", "mxr1", _ANY),
             "a leaf has R or X, MXR makes X readable and SUM lets S mode read U pages: no "
             "load from S mode fails step 6") for d in (PERMISSION, HIT_PERMISSION)]
    for level, name in enumerate(LEVEL_NAMES):
        size = 1 << (12 + 9 * level)
        if phys_size % size == 0:
            out.append(((HIT_RANGE, name) + rest,
                        f"phys_size {phys_size:#x} is a multiple of the {name} page size: "
                        f"a {name} page is in memory whole or not at all, and its fill "
                        f"needed its paddr in memory"))
    return out


def decision_key(decision):
    """A decision's name in the coverage database: cocotb-coverage splits names at dots,
    and an XML element name cannot start with a digit ("2.hit" is "step2_hit")."""
    return "step" + decision.replace(".", "_")


def passes(pte, level, kind, priv, sum_, mxr, adue):
    """Steps 4-7 at ``level`` let ``pte`` through (a pointer to the next level, or a leaf
    that translates, with an A/D update under Svadu if it needs one)."""
    if not pte & V or (pte & (R | W)) == W or pte & HIGH_BITS:
        return False
    if not pte & (R | X):
        return level > 0 and not pte & (A | D | U)
    if (pte >> PPN_SHIFT) & PPN_MASK & ((1 << (9 * level)) - 1):
        return False
    if not permitted(pte & U, pte & R, pte & W, pte & X, kind, priv, sum_, mxr):
        return False
    return bool(adue or (pte & A and not (kind & 1 and not pte & D)))


def step4_malformations(pte):
    """Each reason step 4 finds ``pte`` invalid: (class, bit, the PTE without it)."""
    out = []
    if not pte & V:
        out.append(("v0", "V", pte | V))
    if (pte & (R | W)) == W:
        out.append(("w_no_r", "WX" if pte & X else "W", pte | R))
    for b in range(54, 61):
        if pte >> b & 1:
            out.append(("reserved", str(b), pte & ~(1 << b)))
    pbmt = (pte >> 61) & 3
    if pbmt:
        out.append(("pbmt", str(pbmt), pte & ~(3 << 61)))
    if pte >> 63:
        out.append(("napot", "63", pte & ~(1 << 63)))
    return out


class CampaignCoverage:
    """The campaign's coverage model, sampled by :class:`~.pair.Pair`.

    Parameters
    ----------
    phys_size : int
        The memory size of the MMU under test (one exclusion depends on it).
    name : str
        Its subtree of cocotb-coverage's ``coverage_db`` (made anew when one is created
        with the same name).

    Attributes
    ----------
    checks : dict
        Decision -> its :class:`Cross`.
    malformed : dict
        Class -> its :class:`Cross`.
    sfences, injections : Cross
    excluded_hits : dict
        Samples that fell on an excluded bin, and how many (should stay empty).
    unmodelled : dict
        Translations no bin is about (Bare or M mode), and how many.
    """

    def __init__(self, phys_size, name="verify"):
        self.name = name
        self.phys_size = phys_size
        self.forget()
        excluded = check_exclusions(phys_size)
        self.checks = {
            d: Cross(f"{name}.check.{decision_key(d)}", CHECK_AXES,
                      [(p[1:], why) for p, why in excluded if p[0] == d])
            for d in DECISIONS}
        self.check_excluded = excluded
        self.malformed = {
            cls: Cross(f"{name}.malformed.{cls}", {"level": LEVEL_NAMES, "bit": bits},
                        [(p[1:], why) for p, why in MALFORMED_EXCLUDED if p[0] == cls])
            for cls, bits in MALFORMED_BITS.items()}
        self.sfences = Cross(f"{name}.sfence", {"form": SFENCE_FORMS, "size": LEVEL_NAMES,
                                                 "global": GLOBAL}, [])
        self.injections = Cross(f"{name}.injection", {"event": EVENTS, "role": ROLES},
                                 INJECTION_EXCLUDED)
        self.excluded_hits = {}
        self.unmodelled = {}

    def forget(self):
        """Drop this model's subtree from cocotb-coverage's database."""
        forget(self.name)

    # -- sampling (from the pair) ----------------------------------------------------------

    def _sample(self, cross, key):
        if key in cross.excluded_bins:
            label = f"{cross.name}: {'/'.join(key)}"
            self.excluded_hits[label] = self.excluded_hits.get(label, 0) + 1
        pending = cross.pending
        pending[key] = pending.get(key, 0) + 1

    def translation(self, kind, priv, sum_, mxr, adue, decided, bus_log, read_levels,
                    events, waits, walks):
        """One translation: ``kind`` and the CSRs it was made under, the golden model's
        ``decided``, its bus log and ``read_levels``, the events scripted for it, the RTL
        memory's wait states (one a transaction) and the walks it took (re-walks
        included)."""
        decision, level, pte = decided
        if decision == "bare":
            self.unmodelled["bare"] = self.unmodelled.get("bare", 0) + 1
            return
        self._sample(self.checks[decision], (
            "-" if level is None else LEVEL_NAMES[level], KINDS[kind], PRIVS[priv],
            SUMS[sum_], MXRS[mxr], ADS[adue]))
        if pte is not None:
            self._malformed(decision, level, pte, kind, priv, sum_, mxr, adue)
        if bus_log:
            roles = []
            levels = iter(read_levels)
            for we, lock, *_ in bus_log:
                roles.append("ad_write" if we else "locked_read" if lock
                             else f"read_l{next(levels)}")
            injections = self.injections
            for event in events:
                # (a change aimed at the locked A/D write is dropped: see pair.Event)
                if event.at < len(roles) and not (event.what == "write"
                                                  and bus_log[event.at][0]
                                                  and bus_log[event.at][1]):
                    self._sample(injections, (event.what, roles[event.at]))
            for role, wait in zip(roles, waits):
                self._sample(injections, (f"wait{wait}", role))
            if walks > 1:
                self._sample(injections, ("rewalk", "locked_read"))

    def _malformed(self, decision, level, pte, kind, priv, sum_, mxr, adue):
        name = LEVEL_NAMES[level]
        if decision == INVALID:
            found = step4_malformations(pte)
            if len(found) == 1:
                cls, bit, repaired = found[0]
                if passes(repaired, level, kind, priv, sum_, mxr, adue):
                    self._sample(self.malformed[cls], (name, bit))
        elif decision == NONLEAF_ADU:
            found = [(n, b) for n, b in (("A", A), ("D", D), ("U", U)) if pte & b]
            if len(found) == 1 and passes(pte & ~found[0][1], level, kind, priv, sum_, mxr,
                                          adue):
                self._sample(self.malformed["nonleaf_adu"], (name, found[0][0]))
        elif decision == NONLEAF_LEVEL0:
            self._sample(self.malformed["nonleaf_level0"], (name, "pointer"))
        elif decision == MISALIGNED:
            low = (pte >> PPN_SHIFT) & ((1 << (9 * level)) - 1)
            if low & (low - 1) == 0:                        # one bit
                bit = low.bit_length() - 1
                if passes(pte & ~(1 << (PPN_SHIFT + bit)), level, kind, priv, sum_, mxr,
                          adue):
                    self._sample(self.malformed["misaligned"], (name, str(bit)))

    def sfence(self, entries, vaddr, asid):
        """An sfence.vma (None: x0) about to reach a TLB holding ``entries``."""
        form = SFENCE_FORMS[(vaddr is not None) + 2 * (asid is not None)]
        vpn = None if vaddr is None else (vaddr >> 12) & ((1 << 27) - 1)
        for e in entries:
            if not e.valid:
                continue
            if vpn is not None:
                mask = ((1 << 27) - 1) & ~((1 << (9 * e.level)) - 1)
                if (e.vpn ^ vpn) & mask:
                    continue
            if asid is not None and not e.g and e.asid != asid:
                continue
            self._sample(self.sfences, (form, LEVEL_NAMES[e.level],
                                        GLOBAL[0] if e.g else GLOBAL[1]))

    # -- results ---------------------------------------------------------------------------

    @property
    def groups(self):
        """Group name -> {cross name: Cross}."""
        return {"checks": self.checks, "malformed": self.malformed,
                "sfence": {"sfence": self.sfences}, "injection": {"injection": self.injections}}

    def holes(self):
        """Group -> the bins not hit: (cross name within the group, bin tuple)."""
        return {g: [(c, b) for c, cross in crosses.items() for b in cross.holes()]
                for g, crosses in self.groups.items()}

    def result(self):
        """The figures as JSON: per group and cross, the holes, the exclusions and why."""
        out = {"groups": {}, "excluded": [], "excluded_hits": dict(self.excluded_hits),
               "unmodelled": dict(self.unmodelled)}
        bins = covered = excluded = 0
        for g, crosses in self.groups.items():
            group = {"bins": 0, "covered": 0, "excluded": 0, "crosses": {}, "holes": []}
            for c, cross in crosses.items():
                hits = cross.bins
                n, hit = len(hits), sum(1 for h in hits.values() if h >= cross.cross.at_least)
                group["crosses"][c] = {"axes": list(cross.axes), "bins": n, "covered": hit,
                                       "excluded": cross.size - n}
                group["bins"] += n
                group["covered"] += hit
                group["excluded"] += cross.size - n
                group["holes"] += [f"{c}: {'/'.join(b)}" for b in cross.holes()]
            group["percent"] = _percent(group["covered"], group["bins"])
            out["groups"][g] = group
            bins += group["bins"]
            covered += group["covered"]
            excluded += group["excluded"]
        out.update(bins=bins, covered=covered, percent=_percent(covered, bins),
                   excluded_bins=excluded)
        for g, rules in (("checks", self.check_excluded), ("malformed", MALFORMED_EXCLUDED),
                         ("injection", INJECTION_EXCLUDED)):
            for pattern, why in rules:
                out["excluded"].append({"group": g, "bin": "/".join(
                    "*" if v is None else v for v in pattern), "why": why})
        return out

    def export(self, path):
        """cocotb-coverage's own report of the database: XML if ``path`` ends in .xml,
        else YAML."""
        export(path, [cross for crosses in self.groups.values()
                      for cross in crosses.values()])


def _percent(covered, bins):
    return round(100 * covered / bins, 2) if bins else 100.0


def summary(result, holes=10):
    """A few lines for a person from :meth:`CampaignCoverage.result`: coverage in all and
    per group, the first holes of each, any excluded bin that was hit."""
    r = result
    lines = [f"coverage {r['percent']}% of {r['bins']} reachable bins ("
             + ", ".join(f"{g} {v['covered']}/{v['bins']}" for g, v in r["groups"].items())
             + f"); {r['excluded_bins']} unreachable bins excluded by "
               f"{len(r['excluded'])} rules (listed in --json)"]
    for g, v in r["groups"].items():
        if v["holes"]:
            more = len(v["holes"]) - holes
            lines.append(f"  {g} {v['percent']}%, not hit: " + ", ".join(v["holes"][:holes])
                         + (f" and {more} more" if more > 0 else ""))
    if r["excluded_hits"]:
        lines.append(f"  EXCLUDED BINS HIT: {r['excluded_hits']}")
    return "\n".join(lines)

"""Plumbing over cocotb-coverage that every coverage model here shares: a cross of
CoverPoints with its exclusions (:class:`Cross`), and the database's subtree and report.

A leaf: it imports cocotb-coverage and nothing of the project, so that the kernel's
coverage model (:mod:`.kernel`, above the kernel) and the campaign's
(``mkclean.sim.cosim.coverage``, a backend's) can both stand on it.
"""

import itertools

from cocotb_coverage.coverage import CoverCross, CoverPoint, coverage_db, coverage_section


class Cross:
    """One cross of cocotb-coverage: a CoverPoint an axis and their CoverCross, and the
    sampling function they decorate.

    Samples are counted in :attr:`pending` as they come (a dict increment: cocotb-coverage
    walks every bin of a cross at each sample, a cost a long run would feel) and go to
    cocotb-coverage at :meth:`flush`: each distinct sample once through the sampling
    function, its further hits added to the same bins' counts.

    An axis value whose every combination is excluded is left out of its CoverPoint too,
    so that cocotb-coverage's own report counts no unreachable bin either."""

    def __init__(self, name, axes, excluded):
        self.name = name
        self.axes = tuple(axes)
        self.excluded = excluded
        self.excluded_bins = expand(excluded, axes.values())
        self.size = 1
        for values in axes.values():
            self.size *= len(values)
        kept = {}
        for i, (axis, values) in enumerate(axes.items()):
            whole = self.size // len(values)
            kept[axis] = [v for v in values
                          if sum(1 for b in self.excluded_bins if b[i] == v) < whole]
        self.points = [CoverPoint(f"{name}.{axis}", xf=(lambda *a, i=i: a[i]),
                                  bins=values)
                       for i, (axis, values) in enumerate(kept.items())]
        self.cross = CoverCross(f"{name}.cross", items=[f"{name}.{axis}" for axis in axes],
                                ign_bins=[pattern for pattern, _ in excluded])
        self.sample = coverage_section(*self.points, self.cross)(_nothing)
        self.pending = {}

    def flush(self):
        pending, self.pending = self.pending, {}
        for key, n in pending.items():
            self.sample(*key)
            if n > 1:
                for point, value in zip(self.points, key):
                    hits = point.detailed_coverage
                    if value in hits:
                        hits[value] += n - 1
                if key in self.cross.detailed_coverage:
                    self.cross.detailed_coverage[key] += n - 1

    @property
    def bins(self):
        """Every bin of the cross (a tuple, one value an axis) and its hits."""
        self.flush()
        return self.cross.detailed_coverage

    def holes(self):
        return [b for b, hits in self.bins.items() if hits < self.cross.at_least]


def _nothing(*args):
    pass


def expand(patterns, axes):
    """Every full bin the wildcard ``patterns`` cover."""
    out = set()
    for pattern, _ in patterns:
        choices = [axis if want is None else (want,) for want, axis in zip(pattern, axes)]
        out.update(itertools.product(*choices))
    return out


def forget(name: str) -> None:
    """Drop the subtree ``name`` from cocotb-coverage's database (which is one for the
    whole process, and which its reports export whole)."""
    for key in [k for k in coverage_db if k == name or k.startswith(name + ".")]:
        del coverage_db[key]


def export(path, crosses) -> None:
    """cocotb-coverage's own report of the database, ``crosses`` flushed first: XML if
    ``path`` ends in .xml, else YAML."""
    for cross in crosses:
        cross.flush()
    if str(path).endswith(".xml"):
        coverage_db.export_to_xml(str(path))
    else:
        coverage_db.export_to_yaml(str(path))

"""Workloads for the kernel model: who touches which page, when.

Each is a :class:`base.Workload` that declares its options (:class:`base.Option`: type,
range, help); ``mkclean run --workload NAME`` picks one from :data:`WORKLOADS`. They
import the kernel model only, never a backend: the same workload runs on any.
"""

from .base import Workload
from .clean_store import CleanStore
from .db import Db
from .random_mix import RandomMix
from .stream import Stream

WORKLOADS = {"random": RandomMix, "db": Db, "stream": Stream, "clean_store": CleanStore}


def make_workload(name: str, kernel, seed: int, accesses: int, **options) -> Workload:
    try:
        cls = WORKLOADS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown workload {name!r}: choose one of "
                         f"{', '.join(WORKLOADS)}") from None
    return cls(kernel, seed, accesses, **options)


__all__ = ["WORKLOADS", "Workload", "make_workload"]

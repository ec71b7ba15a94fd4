"""Which hardware the kernel runs on: a small registry of seam backends.

A backend is a factory ``make(phys_size, tlb_entries, walk_cache_entries, **options)``
returning an object that implements :class:`mkclean.sim.hw.seam.Hardware`. The golden one
is registered here; the rtl, board and qemu backends of later issues register theirs with
:func:`register_backend` (by object, or lazily by "module:function" path).
"""

import importlib

_BACKENDS: dict[str, object] = {}


def register_backend(name: str, factory) -> None:
    """Make ``Kernel(backend=name)`` build its hardware with ``factory``.

    ``factory`` is a callable or a ``"package.module:function"`` string imported on first use.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a backend name must be a non-empty string, got {name!r}")
    _BACKENDS[name] = factory


def backend_names() -> list[str]:
    return sorted(_BACKENDS)


def make_hardware(name: str, **options):
    """The hardware of backend ``name``; ValueError naming the choices if there is none."""
    factory = _BACKENDS.get(name) if isinstance(name, str) else None
    if factory is None:
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(backend_names())}")
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(module), attr)
        _BACKENDS[name] = factory
    return factory(**options)


def _golden(phys_size: int = 64 << 20, tlb_entries: int = 16, walk_cache_entries: int = 8,
            **options):
    from mkclean.sim.hw.golden import GoldenHardware
    if options:
        raise ValueError(f"the golden backend takes no options {sorted(options)}")
    return GoldenHardware(phys_size=phys_size, tlb_entries=tlb_entries,
                          walk_cache_entries=walk_cache_entries)


register_backend("golden", _golden)
# The kernel on the RTL MMU runs inside a cocotb simulation, which hands the Kernel its
# hardware (Kernel(hw=...)); `mkclean run --backend rtl` starts that simulation.
register_backend("rtl", "mkclean.sim.cosim.rtl_backend:outside_simulation")

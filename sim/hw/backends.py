"""Which hardware the kernel runs on: the registry of the seam's backends.

A backend is a factory ``make(phys_size, tlb_entries, walk_cache_entries, **options)``
returning an object that implements :class:`~.seam.Hardware`. The kernel adds the option
``phys_base`` only when it is not 0: a factory whose memory is always at 0 refuses it as
an option it does not take, and needs no other change. Each backend lives in its
own folder, above the seam, and is named here by a "module:function" path that is
imported on first use: the seam knows the backends' names, never their code, so that the
kernel model (which asks for a backend by name) imports nothing of a backend.
"""

import importlib

#: name -> factory, or the "package.module:function" path of one
_BACKENDS: dict[str, object] = {
    # pure Python, in the kernel's thread
    "golden": "mkclean.sim.model.backend:make_golden",
    # The kernel on the RTL MMU runs inside a cocotb simulation, which hands the Kernel
    # its hardware (Kernel(hw=...)); `mkclean run --backend rtl` starts that simulation.
    "rtl": "mkclean.sim.cosim.rtl_backend:outside_simulation",
    # a machine at the end of a byte stream (docs/bridge-protocol.md): a board's UART, a
    # board top under Verilator, the reference machine; `--port URL` names it
    "board": "mkclean.sim.board.backend:make_board",
    # the board top under Verilator, its UART bridged to a TCP port that the board
    # backend opens: the same host code as a board
    "board-sim": "mkclean.sim.cosim.board_sim:make_board_sim",
    # QEMU's MMU: the firmware's bridge server (firmware/) on QEMU's UART, opened by the
    # board backend's host code; its memory is a window of QEMU's RAM at 0x8400_0000
    "qemu": "mkclean.sim.qemu.backend:make_qemu",
}


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

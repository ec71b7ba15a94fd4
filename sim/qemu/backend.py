"""The qemu backend of the hardware seam: QEMU's MMU, through the firmware's bridge server
(firmware/) on QEMU's UART, driven by the board backend's host code: the same protocol,
the same :class:`~mkclean.sim.board.backend.BoardHardware`, another machine.

QEMU reports no TLB and no counters (VERSION's features 0): invariant 2 cannot be checked
on its TLB, and :data:`~.masks.MASKS` says so where a run's summary is made.
"""

from ..board.backend import BoardHardware
from ..board.link import Link
from .machine import WINDOW_BASE, WINDOW_SIZE, BridgeProcess, QemuError

#: Seconds to wait for a response before sending a request again: QEMU answers in
#: microseconds, but a loaded machine may stall it for a while.
TIMEOUT_S = 5.0


class QemuHardware(BoardHardware):
    """:class:`BoardHardware` on the firmware's bridge server in a QEMU of its own, which
    :meth:`close` stops.

    Attributes
    ----------
    qemu : BridgeProcess
    """

    name = "qemu"

    def __init__(self, qemu: BridgeProcess, phys_size: int, timeout: float = TIMEOUT_S):
        self.qemu = qemu
        super().__init__(Link(qemu.url, timeout=timeout), phys_size=phys_size)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.qemu.close()


def make_qemu(phys_size: int = WINDOW_SIZE, tlb_entries: int | None = None,
              walk_cache_entries: int = 8, phys_base: int = WINDOW_BASE,
              timeout: float = TIMEOUT_S, **options) -> QemuHardware:
    """The backend registry's factory: QEMU started with the bridge server serving
    ``phys_size`` bytes at ``phys_base`` (the window the kernel model's memory is).

    ``tlb_entries`` and ``walk_cache_entries`` are the run's sizes for the other
    backends; QEMU's TLB is its own, and is not compared."""
    if options:
        raise ValueError(f"the qemu backend takes no options {sorted(options)}")
    qemu = BridgeProcess(phys_base, phys_size)
    try:
        hw = QemuHardware(qemu, phys_size, timeout)
    except BaseException:
        qemu.close()
        raise
    if hw.phys_base != phys_base or hw.machine.phys_size != phys_size:
        hw.close()
        raise QemuError(f"the firmware serves [{hw.phys_base:#x}, +{hw.machine.phys_size:#x}),"
                        f" not the [{phys_base:#x}, +{phys_size:#x}) it was asked for")
    return hw



"""The host-side half of ``mkclean run --backend board``: the kernel model and a workload
on a machine at the end of a link, with invariant 2 checked on the machine's TLB after
every kernel step (as the rtl backend checks it) and the workload's lost-write oracle.

Every failure is a :class:`BoardFailed` with one line to print and an exit status: 2 when
the port cannot be opened or what answers is not a machine this run can use (before the
run), 1 when the link fails or a check fails during it.
"""

from ..kernel import Kernel, KernelError, Signal
from ..kernel.invariants import run_checked
from .backend import make_board
from .link import LinkError

#: Seconds to wait for a response before sending a request again.
TIMEOUT_S = 1.0


class BoardFailed(Exception):
    """A run on a board that could not start (status 2) or stopped (status 1)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def open_board(kernel_opts, port: str, baud: int, timeout: float = TIMEOUT_S):
    """The board's hardware, before any progress bar: the port opened, the machine reset
    and asked what it is."""
    try:
        return make_board(phys_size=kernel_opts["phys_size"],
                          tlb_entries=kernel_opts["tlb_entries"], url=port, baud=baud,
                          timeout=timeout)
    except (LinkError, ValueError) as e:
        raise BoardFailed(str(e), 2) from None


def run_on_board(hw, kernel_opts, cls, seed, accesses, options, progress=None):
    """The run's JSON (the workload's result, the machine's counters, the link's
    figures); BoardFailed if the link or a check fails."""
    kernel = {k: v for k, v in kernel_opts.items() if k != "backend"}
    try:
        k = Kernel(hw=hw, **kernel)
    except LinkError as e:
        raise BoardFailed(f"the link failed as the kernel booted: {e}", 1) from None
    workload = None
    try:
        workload = cls(k, seed, accesses, **options)
        result, counters = run_checked(k, workload, progress)
        result["link"] = {key[5:]: value for key, value in counters.items()
                          if key.startswith("link_")}
        result["port"] = hw.link.url
        return result
    except LinkError as e:
        done = workload.done if workload is not None else 0
        raise BoardFailed(f"the link failed after {done} of {accesses} accesses: {e}",
                          1) from None
    except (Signal, KernelError, MemoryError) as e:
        raise BoardFailed(f"the {cls.name} workload stopped: {e or type(e).__name__} (more "
                          f"--phys-mb, or smaller files?)", 1) from None
    except AssertionError as e:         # KernelBug, InvariantError: a model bug
        raise BoardFailed(f"FAILED: {type(e).__name__}: {e}", 1) from None
    finally:
        k.close()

"""What the kernel model raises: syscall errors, signals, and its own bugs."""

import errno as _errno
import signal as _signal


class KernelError(OSError):
    """A syscall failed: ``errno`` is one of Python's :mod:`errno` values.

    An argument error changes nothing; a syscall that walks a range keeps what it did
    before the walk stopped, as Linux's does (see process.py).
    """

    def __init__(self, err: int, what: str = ""):
        name = _errno.errorcode.get(err, str(err))
        super().__init__(err, f"{name}: {what}" if what else name)

    def __reduce__(self):
        return (type(self), (self.errno, self.strerror))


class Signal(Exception):
    """A load or store the kernel would kill the process for.

    Attributes
    ----------
    signo : int
        ``signal.SIGSEGV``, ``signal.SIGBUS`` (or ``signal.SIGKILL`` when out of memory).
    addr : int
        The faulting virtual address (``si_addr``).
    """

    def __init__(self, signo: int, addr: int, why: str = ""):
        self.signo = signo
        self.addr = addr
        self.why = why
        name = _signal.Signals(signo).name
        super().__init__(f"{name} at {addr:#x}" + (f": {why}" if why else ""))

    def __reduce__(self):
        return (type(self), (self.signo, self.addr, self.why))


class KernelBug(AssertionError):
    """The model reached a state the real kernel would BUG() on (never a user's error)."""

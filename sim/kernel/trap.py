"""The page-fault trap (arch/riscv/mm/fault.c): from the hardware's trap to handle_mm_fault."""

import signal

from mkclean.sim.hw.seam import Cause, KernelEvent

from .constants import (FAULT_FLAG_INSTRUCTION, FAULT_FLAG_WRITE, TASK_SIZE, VM_EXEC,
                        VM_FAULT_OOM, VM_FAULT_SIGBUS, VM_FAULT_SIGSEGV, VM_READ, VM_WRITE)
from .errors import Signal
from .memory import count_vm_event, handle_mm_fault
from .mm import find_vma

#: The key of each cause in the traps counter: "fetch_access", ..., "store_page".
CAUSE_NAMES = {cause: cause.name.lower() for cause in Cause}


def access_error(cause: int, vma) -> bool:
    if cause == Cause.FETCH_PAGE:
        return not vma.vm_flags & VM_EXEC
    if cause == Cause.LOAD_PAGE:
        # Write implies read.
        return not vma.vm_flags & (VM_READ | VM_WRITE)
    if cause == Cause.STORE_PAGE:
        return not vma.vm_flags & VM_WRITE
    return True


def bad_area(kernel, addr: int, why: str, vma=None) -> Signal:
    count_vm_event(kernel, "sigsegv", vma)
    return Signal(signal.SIGSEGV, addr, why)


def do_page_fault(kernel, mm, cause: int, addr: int) -> None:
    """Handle one trap of a user access; returns to retry it, or raises Signal."""
    kernel.event(KernelEvent.TRAP, addr)
    traps = kernel.counters["traps"]
    name = CAUSE_NAMES.get(cause, str(cause))
    traps[name] = traps.get(name, 0) + 1
    if kernel.trace is not None:
        kernel.trace.append((mm.asid, cause, addr))
    if cause in (Cause.LOAD_ACCESS, Cause.STORE_ACCESS, Cause.FETCH_ACCESS):
        raise bad_area(kernel, addr, f"{name} (physical address out of range)")
    if addr >= TASK_SIZE:
        raise bad_area(kernel, addr, "address outside user space")
    vma = find_vma(mm, addr)
    if vma is None or vma.vm_start > addr:
        raise bad_area(kernel, addr, "no mapping")
    if access_error(cause, vma):
        raise bad_area(kernel, addr, f"{name} not allowed by the mapping", vma)
    flags = 0
    if cause == Cause.STORE_PAGE:
        flags |= FAULT_FLAG_WRITE
    elif cause == Cause.FETCH_PAGE:
        flags |= FAULT_FLAG_INSTRUCTION
    fault = handle_mm_fault(kernel, vma, addr, flags)
    if fault & VM_FAULT_OOM:
        count_vm_event(kernel, "oom", vma)
        raise Signal(signal.SIGKILL, addr, "out of memory")
    if fault & VM_FAULT_SIGBUS:
        count_vm_event(kernel, "sigbus", vma)
        raise Signal(signal.SIGBUS, addr, "beyond the end of the file")
    if fault & VM_FAULT_SIGSEGV:
        raise bad_area(kernel, addr, "fault handler refused", vma)

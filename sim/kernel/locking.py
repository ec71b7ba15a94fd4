"""The page lock and the split PTE lock, and the points where a path may be preempted.

The model runs one kernel path at a time. Each path takes and drops its locks where the
real kernel does, through these functions, and each of them calls the kernel's scheduler
hook (:class:`Sched`): the default one does nothing, and a deterministic scheduler (a later
issue) can switch to another path at these points, which are exactly the places where the
real kernel can be interleaved with another CPU. A path that finds a lock held by another
path asks the scheduler to run others until it is free; without a scheduler that is a
deadlock, reported as a KernelBug.
"""

from .constants import PAGE_SHIFT
from .errors import KernelBug


class Sched:
    """No interleaving: one path at a time. Subclass to explore orderings."""

    #: The path running now; the lock owner recorded in pages and PTE tables.
    current = "task"

    def point(self, where: str, obj=None) -> None:
        """A place where another path may run (a lock was just dropped or is about to be taken)."""

    def wait(self, where: str, obj, ready) -> None:
        """Block until ``ready()``: run other paths. Alone, nothing can make it true."""
        if not ready():
            raise KernelBug(f"{where}: would sleep forever on {obj!r} (no other path runs)")


# -- PG_locked (lock_page / unlock_page / trylock_page) -----------------------------------------

def lock_page(kernel, page) -> None:
    sched = kernel.sched
    sched.point("lock_page", page)
    if page.locked:
        if page.lock_owner == sched.current:
            raise KernelBug(f"lock_page: {page!r} already locked by this path")
        sched.wait("lock_page", page, lambda: not page.locked)
    page.locked = True
    page.lock_owner = sched.current


def trylock_page(kernel, page) -> bool:
    if page.locked:
        return False
    page.locked = True
    page.lock_owner = kernel.sched.current
    return True


def unlock_page(kernel, page) -> None:
    if not page.locked:
        raise KernelBug(f"unlock_page: {page!r} is not locked")
    page.locked = False
    page.lock_owner = None
    kernel.sched.point("unlock_page", page)


# -- the split PTE lock (pte_offset_map_lock / pte_unmap_unlock) --------------------------------

def pte_lockptr(kernel, ptep: int):
    """The struct page of the PTE table holding ``ptep``: its ptl is the lock."""
    return kernel.mem.pfn_to_page(ptep >> PAGE_SHIFT)


def pte_lock(kernel, ptep: int):
    """spin_lock(ptl) for the table of ``ptep``; returns the lock to give to pte_unlock."""
    sched = kernel.sched
    ptl = pte_lockptr(kernel, ptep)
    sched.point("pte_lock", ptl)
    if ptl.ptl_owner is not None:
        if ptl.ptl_owner == sched.current:
            raise KernelBug(f"pte_lock: PTE lock of {ptl!r} already held by this path")
        sched.wait("pte_lock", ptl, lambda: ptl.ptl_owner is None)
    ptl.ptl_owner = sched.current
    return ptl


def pte_unlock(kernel, ptl) -> None:
    if ptl.ptl_owner is None:
        raise KernelBug(f"pte_unlock: PTE lock of {ptl!r} not held")
    ptl.ptl_owner = None
    kernel.sched.point("pte_unlock", ptl)

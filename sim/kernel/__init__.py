"""The Linux kernel's shared-dirty-page tracking (2.6.19 "mm: tracking shared dirty pages"
and its later fixes), modelled in Python over the hardware seam.

One module per area, named after the kernel's files, functions named after the kernel
functions they model: ``mm`` (mm_struct, VMAs, vma_wants_writenotify), ``pgtable`` (Sv39
tables in hardware memory: pte_offset_map, pmd_addr_end, the ptep_* updates), ``memory``
(faults, zap, fork's copy), ``rmap`` (page_mkclean), ``tlbflush`` (the arch TLB flush),
``mmu_gather`` (unmapping's flushes and deferred frees), ``pagecache`` (files, read/write,
truncate), ``writeback`` (set_page_dirty, clear_page_dirty_for_io, write_cache_pages),
``mprotect``, ``msync``, ``mmap``, ``fork``, ``trap`` (the page-fault entry), ``policies``,
``process`` (the syscalls), ``kernel`` (the Kernel). The hardware's vocabulary (access
kinds, causes, privilege levels, satp modes) is the seam's, ``mkclean.sim.hw.seam``.

It imports the seam and nothing else of the project: never Amaranth, cocotb, a backend or
the gateware (a backend is asked for by name, from the seam's registry), and its modules
import one another without a circle.
"""

from mkclean.sim.hw.backends import backend_names, register_backend
from .constants import (MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_LOCKED, MAP_POPULATE,
                        MAP_PRIVATE, MAP_SHARED, MAP_SHARED_VALIDATE, MS_ASYNC, MS_INVALIDATE,
                        MS_SYNC, PAGE_SIZE, PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE)
from .errors import KernelBug, KernelError, Signal
from .kernel import AD_MODES, Kernel
from .pagecache import File
from .policies import POLICIES
from .process import Process

__all__ = ["Kernel", "KernelError", "KernelBug", "Signal", "Process", "File",
           "PROT_READ", "PROT_WRITE", "PROT_EXEC", "PROT_NONE",
           "MAP_SHARED", "MAP_PRIVATE", "MAP_SHARED_VALIDATE", "MAP_ANONYMOUS", "MAP_FIXED",
           "MAP_FIXED_NOREPLACE", "MAP_LOCKED", "MAP_POPULATE",
           "MS_ASYNC", "MS_SYNC", "MS_INVALIDATE", "PAGE_SIZE",
           "POLICIES", "AD_MODES", "register_backend", "backend_names"]

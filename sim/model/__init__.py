"""The golden backend: a pure-Python Sv39 MMU exact to hdl/README.md (``mmu``, ``tlb``,
``pte``, ``memory``), and :mod:`.backend`, the seam over it.

It stands on the seam (``mkclean.sim.hw.seam``) and imports nothing else of the project:
the co-simulation uses it as its reference, never the other way.
"""

from .memory import Bus, Memory, MemoryBus
from .mmu import GoldenMMU, Response
from .pte import Pte, make_pte
from .tlb import PlruTree, Tlb, TlbEntry, WalkCache

__all__ = ["Bus", "GoldenMMU", "Memory", "MemoryBus", "PlruTree", "Pte", "Response", "Tlb",
           "TlbEntry", "WalkCache", "make_pte"]

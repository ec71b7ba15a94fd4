"""The golden model: a pure-Python Sv39 MMU exact to hdl/README.md."""

from .memory import Bus, Memory, MemoryBus
from .mmu import GoldenMMU, Response
from .pte import Pte, make_pte
from .tlb import PlruTree, Tlb, TlbEntry, WalkCache

__all__ = ["Bus", "GoldenMMU", "Memory", "MemoryBus", "PlruTree", "Pte", "Response", "Tlb",
           "TlbEntry", "WalkCache", "make_pte"]

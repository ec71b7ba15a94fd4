"""Sv39 PTE and virtual-address bit fields, as plain ints and small functions."""

from dataclasses import dataclass

# PTE flag bits 0..7.
V, R, W, X, U, G, A, D = (1 << i for i in range(8))

RSW_SHIFT, RSW_MASK = 8, 0x3
PPN_SHIFT, PPN_MASK = 10, (1 << 44) - 1
RESERVED_SHIFT, RESERVED_MASK = 54, 0x7F
PBMT_SHIFT, PBMT_MASK = 61, 0x3
N = 1 << 63
#: Bits 54..63 (reserved, PBMT, N): any of them set makes a PTE invalid (no Svpbmt, Svnapot).
HIGH_BITS = ((1 << 10) - 1) << 54

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
LEVELS = 3
VPN_BITS = 9
VPN_MASK = (1 << 27) - 1          # vaddr[38:12]
PA_MASK = (1 << 56) - 1
ASID_MASK = 0xFFFF
#: Bytes offset mask of a page at level 0, 1, 2 (4 KiB, 2 MiB, 1 GiB).
OFFSET_MASK = tuple((1 << (PAGE_SHIFT + VPN_BITS * level)) - 1 for level in range(LEVELS))
#: Mask of the VPN bits above a level, applied to a 27-bit VPN.
VPN_LEVEL_MASK = tuple(VPN_MASK & ~((1 << (VPN_BITS * level)) - 1) for level in range(LEVELS))


def vpn_field(vaddr: int, level: int) -> int:
    """``vpn[level]`` of ``vaddr`` (9 bits)."""
    return (vaddr >> (PAGE_SHIFT + VPN_BITS * level)) & 0x1FF


def vpn_of(vaddr: int) -> int:
    """``vaddr[38:12]``, the 27-bit VPN."""
    return (vaddr >> PAGE_SHIFT) & VPN_MASK


def is_canonical(vaddr: int) -> bool:
    """``vaddr[63:39]`` all equal ``vaddr[38]``."""
    top = vaddr >> 38
    return top == 0 or top == (1 << 26) - 1


def page_size(level: int) -> int:
    return 1 << (PAGE_SHIFT + VPN_BITS * level)


def pte_ppn(pte: int) -> int:
    return (pte >> PPN_SHIFT) & PPN_MASK


def is_invalid(pte: int) -> bool:
    """Step 4 of the contract: V=0, W without R, or any of bits 54..63 set."""
    return not pte & V or (pte & (R | W)) == W or bool(pte & HIGH_BITS)


def is_leaf(pte: int) -> bool:
    return bool(pte & (R | X))


def is_misaligned(pte: int, level: int) -> bool:
    """A superpage leaf whose PPN has non-zero bits below its level."""
    return bool(pte_ppn(pte) & ((1 << (VPN_BITS * level)) - 1))


def make_pte(ppn: int, *, v: bool = True, r: bool = False, w: bool = False,
             x: bool = False, u: bool = False, g: bool = False, a: bool = False,
             d: bool = False, rsw: int = 0, reserved: int = 0, pbmt: int = 0,
             n: bool = False) -> int:
    """Encode a PTE; see :class:`Pte` for the fields."""
    return Pte(v=v, r=r, w=w, x=x, u=u, g=g, a=a, d=d, rsw=rsw, ppn=ppn,
               reserved=reserved, pbmt=pbmt, n=n).encode()


@dataclass(frozen=True)
class Pte:
    """A decoded Sv39 page-table entry.

    Attributes
    ----------
    v, r, w, x, u, g, a, d : bool
        Flag bits 0..7.
    rsw : int
        Bits 8..9, for software.
    ppn : int
        Bits 10..53.
    reserved : int
        Bits 54..60; must be zero.
    pbmt : int
        Bits 61..62 (Svpbmt, not implemented: must be zero).
    n : bool
        Bit 63 (Svnapot, not implemented: must be zero).
    """
    v: bool = False
    r: bool = False
    w: bool = False
    x: bool = False
    u: bool = False
    g: bool = False
    a: bool = False
    d: bool = False
    rsw: int = 0
    ppn: int = 0
    reserved: int = 0
    pbmt: int = 0
    n: bool = False

    @classmethod
    def decode(cls, value: int) -> "Pte":
        if not 0 <= value < 1 << 64:
            raise ValueError(f"PTE value {value:#x} is not a 64-bit unsigned integer")
        return cls(v=bool(value & V), r=bool(value & R), w=bool(value & W),
                   x=bool(value & X), u=bool(value & U), g=bool(value & G),
                   a=bool(value & A), d=bool(value & D),
                   rsw=(value >> RSW_SHIFT) & RSW_MASK, ppn=pte_ppn(value),
                   reserved=(value >> RESERVED_SHIFT) & RESERVED_MASK,
                   pbmt=(value >> PBMT_SHIFT) & PBMT_MASK, n=bool(value & N))

    def encode(self) -> int:
        for name, mask in (("rsw", RSW_MASK), ("ppn", PPN_MASK),
                           ("reserved", RESERVED_MASK), ("pbmt", PBMT_MASK)):
            field = getattr(self, name)
            if not 0 <= field <= mask:
                raise ValueError(f"Pte.{name} = {field:#x} does not fit in "
                                 f"{mask.bit_length()} bits")
        flags = sum(bit for bit, on in zip((V, R, W, X, U, G, A, D),
                                           (self.v, self.r, self.w, self.x, self.u,
                                            self.g, self.a, self.d)) if on)
        return (flags | self.rsw << RSW_SHIFT | self.ppn << PPN_SHIFT
                | self.reserved << RESERVED_SHIFT | self.pbmt << PBMT_SHIFT
                | (N if self.n else 0))

    @property
    def leaf(self) -> bool:
        return self.r or self.x

    @property
    def invalid(self) -> bool:
        return is_invalid(self.encode())

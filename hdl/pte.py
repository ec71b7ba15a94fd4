"""Sv39 layouts and the checks made on them: virtual address, PTE, satp and the CSRs, the
MMU's request, response and sfence.vma, and a TLB entry.

The layouts follow the privileged spec bit for bit, so that a :class:`Pte` view over a
raw 64-bit word read from the bus *is* the PTE. The walker's checks are methods of the
view they look at, named after the steps of hdl/README.md.
"""

from amaranth.hdl import Cat, Const, Mux
from amaranth.lib import data, enum, stream

PAGE_BITS = 12
VPN_BITS = 9
LEVELS = 3
PADDR_BITS = 56
PPN_BITS = 44
ASID_BITS = 16
VPN_TOTAL = VPN_BITS * LEVELS


class Kind(enum.Enum, shape=2):
    """What an access does; the encoding of the request's ``kind`` field."""
    LOAD = 0
    STORE = 1
    FETCH = 2
    AMO = 3


class Priv(enum.Enum, shape=2):
    U = 0
    S = 1
    M = 3


class SatpMode(enum.Enum, shape=4):
    BARE = 0
    SV39 = 8


class Cause(enum.Enum, shape=4):
    """Trap causes an MMU raises (mcause values)."""
    NONE = 0
    FETCH_ACCESS = 1
    LOAD_ACCESS = 5
    STORE_ACCESS = 7
    FETCH_PAGE = 12
    LOAD_PAGE = 13
    STORE_PAGE = 15


class Vaddr(data.Struct):
    """An Sv39 virtual address; ``upper`` must be the sign extension of ``vpn2``."""
    offset: PAGE_BITS
    vpn0: VPN_BITS
    vpn1: VPN_BITS
    vpn2: VPN_BITS
    upper: 25

    @property
    def vpn(self):
        return Cat(self.vpn0, self.vpn1, self.vpn2)


class Pte(data.Struct):
    """A Sv39 page table entry, and the walker's checks on it (hdl/README.md, steps 4 to
    7, in that order)."""
    v: 1
    r: 1
    w: 1
    x: 1
    u: 1
    g: 1
    a: 1
    d: 1
    rsw: 2
    ppn: PPN_BITS
    reserved: 7
    pbmt: 2
    n: 1

    def has_reserved_bits(self):
        """Bits 54..63 set. Bits 54..60 are reserved; PBMT (Svpbmt) and N (Svnapot)
        belong to extensions this MMU does not implement, which makes them reserved too."""
        return self.reserved.any() | self.pbmt.any() | self.n

    def is_invalid(self):
        """Step 4: a page fault at any level. W without R is a reserved encoding."""
        return ~self.v | (self.w & ~self.r) | self.has_reserved_bits()

    def is_pointer(self):
        """Step 5: R=0 and X=0 point to the next level's table; anything else is a leaf."""
        return ~self.r & ~self.x

    def is_bad_pointer(self, level):
        """Step 5: A, D and U are reserved in a pointer, and level 0 has no next level."""
        return self.a | self.d | self.u | (level == 0)

    def is_misaligned(self, level):
        """Step 6: a superpage's PPN must be aligned to its size (2M, 1G)."""
        return Mux(level == 2, self.ppn[0:18].any(), (level == 1) & self.ppn[0:9].any())

    def permits(self, kind, csr):
        """Step 6: see :func:`_leaf_permits`."""
        return _leaf_permits(self, kind, csr)

    def needs_ad_update(self, kind):
        """Step 7: A clear, or D clear for a store."""
        return ~self.a | (is_store(kind) & ~self.d)


class Satp(data.Struct):
    ppn: PPN_BITS
    asid: ASID_BITS
    mode: SatpMode


class Csr(data.Struct):
    """The translation state the MMU takes from the hart's CSRs."""
    satp: Satp
    priv: Priv
    sum: 1   #: mstatus.SUM: S-mode may load/store U pages.
    mxr: 1   #: mstatus.MXR: loads may read execute-only pages.
    adue: 1  #: menvcfg.ADUE: 1 = Svadu (hardware A/D), 0 = Svade (A/D page faults).


class Request(data.Struct):
    """A translation asked of the MMU, and of the walker."""
    vaddr: 64
    kind: Kind


class Response(data.Struct):
    """A translation's answer, from the MMU and from the walker."""
    fault: 1
    cause: Cause        #: when ``fault``
    paddr: PADDR_BITS   #: when not ``fault``
    tval: 64            #: when ``fault``: the request's vaddr


class Sfence(data.Struct):
    """sfence.vma: ``by_vaddr`` is rs1 != x0, ``by_asid`` is rs2 != x0."""
    vaddr: 64
    asid: ASID_BITS
    by_vaddr: 1
    by_asid: 1


#: How the MMU, the TLB and the walker take sfence.vma: never refused, applied the cycle
#: it is valid (a hart does not wait for the MMU to finish a walk before it fences).
SFENCE_PORT = stream.Signature(Sfence, always_ready=True)


class TlbEntry(data.Struct):
    """A cached leaf translation; ``level`` 0/1/2 is a 4K/2M/1G page."""
    valid: 1
    g: 1
    level: 2
    asid: ASID_BITS
    vpn: VPN_TOTAL
    ppn: PPN_BITS
    r: 1
    w: 1
    x: 1
    u: 1
    a: 1
    d: 1

    def permits(self, kind, csr):
        """Step 6 again on a hit: see :func:`_leaf_permits`."""
        return _leaf_permits(self, kind, csr)


def is_store(kind):
    """STORE and AMO both need W and D, and both raise store/AMO causes."""
    return (kind == Kind.STORE) | (kind == Kind.AMO)


def page_fault_cause(kind):
    return Cause(Mux(kind == Kind.FETCH, Cause.FETCH_PAGE,
                     Mux(kind == Kind.LOAD, Cause.LOAD_PAGE, Cause.STORE_PAGE)))


def access_fault_cause(kind):
    return Cause(Mux(kind == Kind.FETCH, Cause.FETCH_ACCESS,
                     Mux(kind == Kind.LOAD, Cause.LOAD_ACCESS, Cause.STORE_ACCESS)))


def _leaf_permits(leaf, kind, csr):
    """Whether a leaf with bits ``r w x u`` (a PTE or a TLB entry) allows ``kind`` at the
    current priv/SUM/MXR.

    Evaluated on every TLB hit, never cached, so that a SUM or MXR change is seen at once
    (cva6 #3298).
    """
    user_ok = Mux(leaf.u,
                  (csr.priv == Priv.U) | ((csr.priv == Priv.S) & csr.sum & (kind != Kind.FETCH)),
                  csr.priv != Priv.U)
    kind_ok = Mux(kind == Kind.FETCH, leaf.x,
                  Mux(kind == Kind.LOAD, leaf.r | (leaf.x & csr.mxr), leaf.w))
    return user_ok & kind_ok


def check_phys_size(phys_size):
    if (not isinstance(phys_size, int) or isinstance(phys_size, bool) or phys_size <= 0 or
            phys_size % 4096 or phys_size > 1 << PADDR_BITS):
        raise ValueError(f"phys_size must be a positive multiple of 4096 bytes, at most "
                         f"2**{PADDR_BITS}, not {phys_size!r}")


def _size_text(n):
    """``n`` bytes in the largest binary unit that divides it: 32 MiB, 4 KiB."""
    for shift, unit in ((40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")):
        if n >= 1 << shift and not n % (1 << shift):
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


def check_phys_base(phys_base, phys_size):
    """Physical memory ``[phys_base, phys_base + phys_size)`` must be one naturally
    aligned block: ``phys_base`` a multiple of the smallest power of two at or above
    ``phys_size``, and the end within the 56-bit physical address space. The golden
    model holds its memory to the same rule (sim/model/memory.py)."""
    check_phys_size(phys_size)
    if not isinstance(phys_base, int) or isinstance(phys_base, bool) or phys_base < 0:
        raise ValueError(f"phys_base must be a non-negative integer, not {phys_base!r}")
    block = 1 << (phys_size - 1).bit_length()
    if phys_base % block:
        raise ValueError(f"phys_base {phys_base:#x} is not aligned to {_size_text(block)}, "
                         f"the power of two at or above phys_size {phys_size:#x}: physical "
                         f"memory must be one naturally aligned block")
    if phys_base + phys_size > 1 << PADDR_BITS:
        raise ValueError(f"phys_base {phys_base:#x} + phys_size {phys_size:#x} ends beyond "
                         f"the {PADDR_BITS}-bit physical address space")


class PhysMemory:
    """Where physical memory is: ``[base, base + size)``, one naturally aligned block of
    ``1 << block_bits`` bytes (hdl/README.md, "Memory"). Every address the MMU checks,
    and every one it puts on its bus, goes through here.

    An address is inside memory when its bits from ``block_bits`` up equal the base's
    and its offset (the bits below) is below ``size``: an equality with constants, no
    carry chain, and for a power-of-two ``size`` no offset compare at all. The memory bus
    carries the offset, so the memories behind it do not know the base; where a full
    physical number is rebuilt from an offset's bits, the base's bits are put back by
    concatenation (:meth:`ppn`), never added.

    Parameters
    ----------
    size : int
        Bytes; a multiple of 4096.
    base : int
        See :func:`check_phys_base`.
    """

    def __init__(self, size, base=0):
        check_phys_base(base, size)
        self.size = size
        self.base = base
        #: log2 of the smallest power of two at or above ``size``: the offset's bits.
        self.block_bits = (size - 1).bit_length()
        #: PPN bits below the block's: what a page inside memory can have of its own.
        self.ppn_bits = max(0, self.block_bits - PAGE_BITS)

    def outside(self, addr):
        """``addr`` (an address of any width) is not in ``[base, base + size)``. On the
        walker's and the TLB hit's paths to their registers."""
        bits = self.block_bits
        high = self.base >> bits
        if bits >= len(addr):
            above = Const(0)
        elif not high:
            above = addr[bits:].any()
        elif high >> (len(addr) - bits):
            above = Const(1)            # the base is wider than the address
        else:
            above = addr[bits:] != high
        if self.size == 1 << bits:
            return above
        return above | (addr[PAGE_BITS:bits] >= self.size >> PAGE_BITS)

    def offset(self, addr):
        """An address inside memory as the memory bus carries it: its offset, the bits
        below ``block_bits``. At a base whose bits there are 0 (base 0), the address
        itself: inside memory, its bits above are 0 already."""
        return addr[:self.block_bits] if self.base >> self.block_bits else addr

    def ppn(self, low):
        """A full PPN from the low :attr:`ppn_bits` of ``low`` (a page inside memory):
        the base's bits above them, a concatenation."""
        return Cat(low[:self.ppn_bits], Const(self.base >> self.block_bits,
                                              PPN_BITS - self.ppn_bits))


def or_all(values):
    """The OR of ``values`` as a balanced tree: with one-hot selects, a wide mux of a few
    LUT levels, where a chain of If's is a level per input."""
    values = list(values)
    while len(values) > 1:
        values = [values[i] | values[i + 1] if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


def leaf_paddr(ppn, level, vaddr):
    """Physical address of ``vaddr`` through a leaf at ``level``: superpages take the
    lower VPNs from the virtual address."""
    va = Vaddr(vaddr)
    ppn0 = Mux(level >= 1, va.vpn0, ppn[0:9])
    ppn1 = Mux(level >= 2, va.vpn1, ppn[9:18])
    return Cat(va.offset, ppn0, ppn1, ppn[18:PPN_BITS])


def vpn_matches(entry_vpn, level, vpn):
    """Whether ``vpn`` falls in the page of ``entry_vpn`` at ``level`` (superpages
    ignore their lower VPN fields)."""
    return ((entry_vpn[18:27] == vpn[18:27]) &
            ((level >= 2) | (entry_vpn[9:18] == vpn[9:18])) &
            ((level >= 1) | (entry_vpn[0:9] == vpn[0:9])))

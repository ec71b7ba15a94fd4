"""The TLB (fully associative, ASID + global tags, 4K/2M/1G, tree-PLRU) and the walk cache."""

from dataclasses import dataclass, replace

from .pte import VPN_LEVEL_MASK

GLOBAL_TAG = 1 << 16      # an ASID no satp can hold: the index key of global entries
MEMO_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class TlbEntry:
    """One TLB entry, as the hardware holds it.

    Attributes
    ----------
    valid : bool
    asid : int
        The satp.asid the entry was filled under (16 bits).
    g : bool
        PTE.G: matches under every ASID.
    level : int
        0 = 4 KiB, 1 = 2 MiB, 2 = 1 GiB.
    vpn : int
        The 27-bit VPN of the request that filled it (only the bits above ``level`` match).
    ppn : int
        The leaf PTE's 44-bit PPN, as in the PTE.
    r, w, x, u, a, d : bool
        The leaf PTE's flags (after the A/D update, if any).
    """
    valid: bool
    asid: int
    g: bool
    level: int
    vpn: int
    ppn: int
    r: bool
    w: bool
    x: bool
    u: bool
    a: bool
    d: bool

    def matches(self, vpn: int, asid: int) -> bool:
        """The contract's match rule (a linear-scan reference for the index)."""
        mask = VPN_LEVEL_MASK[self.level]
        return (self.valid and (self.g or self.asid == asid)
                and (self.vpn & mask) == (vpn & mask))


INVALID_ENTRY = TlbEntry(False, 0, False, 0, 0, 0, False, False, False, False, False, False)


def check_power_of_two(name: str, n: int) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0 or n & (n - 1):
        raise ValueError(f"{name} must be a positive power of two, got {n!r}")
    return n


def _key(level: int, tag: int, vpn: int) -> int:
    return (level << 44) | (tag << 27) | (vpn & VPN_LEVEL_MASK[level])


class PlruTree:
    """Tree-PLRU over ``n`` leaves: node bits ``t[1..n-1]`` in heap order, all 0 at start.

    Bit ``k`` of :attr:`state` is ``t[k]``.
    """

    def __init__(self, n: int):
        self.n = check_power_of_two("tlb_entries", n)
        self.state = 0
        # Touching leaf e: the nodes on its path (their mask) and the bits they take.
        self._keep = []
        self._set = []
        for e in range(n):
            path = set_bits = 0
            node = e + n
            while node > 1:
                parent = node >> 1
                path |= 1 << parent
                if node == 2 * parent:        # e is under the left child: point right
                    set_bits |= 1 << parent
                node = parent
            self._keep.append(~path)
            self._set.append(set_bits)

    def t(self, node: int) -> int:
        if not 1 <= node < self.n:
            raise IndexError(f"PLRU node {node} outside 1..{self.n - 1}")
        return (self.state >> node) & 1

    def touch(self, e: int) -> None:
        self.state = (self.state & self._keep[e]) | self._set[e]

    def victim(self) -> int:
        node, n, state = 1, self.n, self.state
        while node < n:
            node = 2 * node + ((state >> node) & 1)
        return node - n


class Tlb:
    """Fully associative TLB; :attr:`entries` in hardware index order.

    Alongside the entry list it keeps an index from (level, ASID or global, level-masked
    VPN) to the bitmask of entries with that key, and a memo of lookups by (ASID, VPN)
    cleared on every change, so that a hit costs a dict lookup instead of a scan. Both
    give the lowest matching index, as the contract's priority rule does.

    Parameters
    ----------
    n_entries : int
        A power of two.
    """

    def __init__(self, n_entries: int):
        self.n = check_power_of_two("tlb_entries", n_entries)
        self.plru = PlruTree(n_entries)
        self._entries = [INVALID_ENTRY] * n_entries
        self._index: dict[int, int] = {}
        self._memo: dict[int, int] = {}

    @property
    def entries(self) -> list[TlbEntry]:
        return list(self._entries)

    def lookup(self, vpn: int, asid: int) -> int:
        """Index of the lowest matching entry, or -1. Does not touch the PLRU."""
        memo_key = (asid << 27) | vpn
        i = self._memo.get(memo_key)
        if i is None:
            i = self._resolve(vpn, asid)
            if len(self._memo) >= MEMO_LIMIT:
                self._memo.clear()
            self._memo[memo_key] = i
        return i

    def _resolve(self, vpn: int, asid: int) -> int:
        index = self._index
        if not index:
            return -1
        hits = 0
        for level in range(3):
            base = (level << 44) | (vpn & VPN_LEVEL_MASK[level])
            hits |= index.get(base | (asid << 27), 0) | index.get(base | (GLOBAL_TAG << 27), 0)
        return (hits & -hits).bit_length() - 1

    def fill_index(self) -> int:
        """Where a fill that did not come from a hit goes: lowest invalid, else the victim."""
        for i, e in enumerate(self._entries):
            if not e.valid:
                return i
        return self.plru.victim()

    def fill(self, i: int, entry: TlbEntry) -> None:
        """Write ``entry`` at ``i`` and make ``i`` the most recently used."""
        self._unindex(i)
        self._entries[i] = entry
        if entry.valid:
            key = _key(entry.level, GLOBAL_TAG if entry.g else entry.asid, entry.vpn)
            self._index[key] = self._index.get(key, 0) | (1 << i)
        self._memo.clear()
        self.plru.touch(i)

    def _unindex(self, i: int) -> None:
        old = self._entries[i]
        if old.valid:
            key = _key(old.level, GLOBAL_TAG if old.g else old.asid, old.vpn)
            rest = self._index[key] & ~(1 << i)
            if rest:
                self._index[key] = rest
            else:
                del self._index[key]

    def flush(self, by_vaddr: bool, vpn: int, by_asid: bool, asid: int) -> None:
        """sfence.vma on the TLB: the four cases of the contract. Leaves the PLRU alone."""
        for i, e in enumerate(self._entries):
            if not e.valid:
                continue
            if by_asid and (e.g or e.asid != asid):
                continue
            if by_vaddr:
                mask = VPN_LEVEL_MASK[e.level]
                if (e.vpn & mask) != (vpn & mask):
                    continue
            self._unindex(i)
            # Only the valid bit clears, as in the hardware; the fields stay for the debug port.
            self._entries[i] = replace(e, valid=False)
        self._memo.clear()


class WalkCache:
    """Non-leaf PTEs by PTE address, filled at a round-robin pointer.

    Parameters
    ----------
    n_entries : int
        0 (disabled) to 64.
    """

    def __init__(self, n_entries: int):
        if (not isinstance(n_entries, int) or isinstance(n_entries, bool)
                or not 0 <= n_entries <= 64):
            raise ValueError(f"walk_cache_entries must be an integer in 0..64, got {n_entries!r}")
        self.n = n_entries
        self.pointer = 0
        self._valid = [False] * n_entries
        self._addr = [0] * n_entries
        self._pte = [0] * n_entries
        self._slot: dict[int, int] = {}   # addr -> slot, valid entries only

    @property
    def entries(self) -> list[tuple[bool, int, int]]:
        return list(zip(self._valid, self._addr, self._pte))

    def lookup(self, addr: int) -> int | None:
        slot = self._slot.get(addr)
        return None if slot is None else self._pte[slot]

    def insert(self, addr: int, pte: int) -> None:
        if not self.n:
            return
        # Inserts follow misses only, so an address is never held twice.
        assert addr not in self._slot, f"walk cache already holds {addr:#x}"
        slot = self.pointer
        if self._valid[slot]:
            del self._slot[self._addr[slot]]
        self._valid[slot], self._addr[slot], self._pte[slot] = True, addr, pte
        self._slot[addr] = slot
        self.pointer = (slot + 1) % self.n

    def flush(self) -> None:
        """Invalidate every entry; the round-robin pointer keeps its place."""
        self._valid = [False] * self.n
        self._slot.clear()

"""QEMU's MMU as a third side of the differential campaign (``mkclean verify --against
qemu``): every CSR change, sfence and PTE store of the campaign also goes to QEMU through
the firmware's bridge server, and every translation is made there too, as a real access,
and compared with the golden model's answer.

QEMU answers with data or a trap, not a physical address. So that the data tells the
address, every word of memory outside the campaign's page tables holds its own physical
address (:func:`tag_memory`), on all three sides, and QEMU is started with that image
(QEMU's generic loader: 16 MiB through the UART would take minutes). A load or fetch
reads the 8-byte word the vaddr falls in; an AMO swaps in the value the golden model says
is there, so memory keeps its contents while the old value names the word reached; a
store writes a mark, which is looked for where the golden model says it lands and then
undone. Each needs the permissions, and sets the A and D bits, its kind asks for.

What QEMU may answer otherwise, :mod:`mkclean.sim.qemu.masks` names: ``stale-translation``
(golden and rtl still use a translation of a PTE stored since the last full fence, QEMU
walks afresh: QEMU's TLB is flushed after every PTE store, so its answer is always the
fresh walk's) and ``no-svade`` (QEMU sets A/D where adue=0 asks for a fault). A masked
answer must be exactly what a fresh walk of the golden model gives (with Svadu for
no-svade); the A/D bits QEMU then set are copied to the other two sides' memories.

Runs inside the simulator, in the campaign's thread. Imports: the golden model and the
qemu backend.
"""

import tempfile
from pathlib import Path

from ..board.protocol import WORD
from ..hw.seam import Kind, Trap
from ..model.memory import Memory, MemoryBus
from ..model.mmu import HIT_SVADE, SVADE, GoldenMMU
from ..qemu.backend import QemuHardware
from ..qemu.machine import BridgeProcess
from .pair import Mismatch

_AMO = Kind.AMO
_MASK64 = (1 << 64) - 1


def tag_memory(mem: Memory, tables_end: int) -> None:
    """Every 8-byte word from ``tables_end`` (a physical address) to the end of memory
    holds its own physical address: as a PTE it is invalid (V, bit 0, is 0)."""
    start = tables_end - mem.base
    words = (mem.size - start) // WORD
    first = mem.base + start
    mem.data[start:] = b"".join((first + WORD * i).to_bytes(WORD, "little")
                                for i in range(words))


class _RecordingBus(MemoryBus):
    """A bus that remembers where a walk wrote (the A/D updates of a fresh walk)."""

    def __init__(self, mem):
        super().__init__(mem)
        self.written = []

    def write(self, addr, value, lock):
        self.written.append(addr)
        return super().write(addr, value, lock)


class QemuSide:
    """QEMU beside a :class:`~.pair.Pair`, started on the pair's memory as it is now.

    Attributes
    ----------
    masks : dict[str, int]
        How often each mask of :data:`mkclean.sim.qemu.masks.MASKS` applied.
    masks_off : frozenset
        The masks not applied.
    translations : int
        Translations compared.
    """

    def __init__(self, pair, masks_off=()):
        self.pair = pair
        #: masks not applied (``mkclean verify --no-mask``): what each hides shows
        self.masks_off = frozenset(masks_off)
        mem = pair.golden_mem
        self._folder = tempfile.TemporaryDirectory(prefix="mkclean-qemu-side-")
        image = Path(self._folder.name) / "memory.bin"
        image.write_bytes(mem.data)
        self.qemu = BridgeProcess(mem.base, mem.size, image=image)
        self.hw = QemuHardware(self.qemu, mem.size)
        self.csr = dict(vars(pair.golden.csr))
        self.masks = {"stale-translation": 0, "no-svade": 0}
        self.translations = 0
        #: a PTE was stored since the last sfence.vma x0, x0: golden and rtl may still
        #: hold the old translation
        self.unfenced = False

    def close(self):
        self.hw.close()
        self._folder.cleanup()

    # -- what the campaign does, done on QEMU too ----------------------------------------------

    def write(self, addr, data):
        """The pair's store of ``data`` at ``addr``, before the pair makes it: the words
        it changes go to QEMU (a page table allocated is zeros over zeros: nothing)."""
        mem = self.pair.golden_mem
        first = addr & ~(WORD - 1)
        end = -(-(addr + len(data)) // WORD) * WORD
        new = bytearray(mem.read(first, end - first))
        new[addr - first:addr - first + len(data)] = data
        old = mem.read(first, end - first)
        changed = [at for at in range(0, len(new), WORD) if new[at:at + WORD] != old[at:at + WORD]]
        if not changed:
            return
        for at in changed:
            self.hw.write(first + at, bytes(new[at:at + WORD]))
        self.hw.sfence_vma()            # QEMU always walks afresh: see the module
        self.unfenced = True

    def set_csr(self, **fields):
        self.csr.update(fields)
        self.hw.set_csr(**fields)

    def sfence(self, vaddr, asid):
        self.hw.sfence_vma(vaddr, asid)
        if vaddr is None and asid is None:
            self.unfenced = False

    # -- translations -------------------------------------------------------------------------

    def access(self, vaddr, kind, expected):
        """QEMU's answer to a translation of ``vaddr``: (trap cause, tval) or (None, the
        word there). ``expected``: the Response QEMU should give, which says where a
        store or AMO should land; memory is left as it was."""
        word = vaddr & ~(WORD - 1)
        if kind == Kind.LOAD or kind == Kind.FETCH:
            r = self.hw.access(word, Kind(kind), size=WORD)
        elif expected.fault:        # QEMU must fault too: nothing lands anywhere then
            r = self.hw.access(word, Kind(kind), bytes(WORD))
        else:
            at = expected.paddr & ~(WORD - 1)
            value = self.pair.golden_mem.read64(at)
            if kind == Kind.AMO:    # the old value names the word it reached
                r = self.hw.access(word, _AMO, value.to_bytes(WORD, "little"))
            else:                   # a store: its mark must be found where expected
                mark = value ^ _MASK64
                r = self.hw.access(word, Kind.STORE, mark.to_bytes(WORD, "little"))
                if not isinstance(r, Trap):
                    found = self.hw.read_pte(at)
                    self.hw.write_pte(at, value)
                    r = (value if found == mark else found ^ _MASK64).to_bytes(WORD, "little")
        if isinstance(r, Trap):
            return r.cause, r.tval
        return None, int.from_bytes(r, "little")

    def compare(self, vaddr, kind, golden):
        """Raise :class:`Mismatch` unless QEMU answers ``vaddr`` as ``golden`` (the golden
        model's Response) does, or as a mask allows."""
        self.translations += 1
        kind = Kind(kind)
        word = vaddr & ~(WORD - 1)
        mask = self._mask(golden)
        # Where a mask may apply, QEMU walks afresh: a store must land where the fresh
        # walk says. The walk is on a copy of memory: a few ms, only then.
        fresh = self._fresh_walk(vaddr, kind) if mask is not None else None
        got = self.access(vaddr, kind, fresh[0] if fresh is not None else golden)
        # (the answer QEMU may give, its memory, the walk's writes, the mask it takes):
        # QEMU walks afresh, so the fresh walk's first; where it is the golden answer
        # too, the mask is needed only for the A/D bits the walk set and golden did not
        answers = [(golden, self.pair.golden_mem, (), None)]
        if fresh is not None:
            answers.insert(0, (fresh[0], fresh[2], fresh[1], mask))
        for response, mem, written, name in answers:
            if got == self._answer(response, word, mem):
                if name is not None and (self._copy_walk(written, mem) or response != golden):
                    self.masks[name] += 1
                return
        raise Mismatch(f"vaddr={vaddr:#x} kind={int(kind)}: qemu {_show(got)} vs golden "
                       f"{golden}" + (f" (mask {mask} checked: a fresh walk says otherwise)"
                                      if mask else ""))

    def _copy_walk(self, written, copy):
        """What a walk QEMU made wrote (A/D bits), on the two other sides too; True if
        that changed anything there."""
        changed = False
        for addr in written:
            value = copy.read64(addr)
            if value != self.pair.golden_mem.read64(addr):
                changed = True
                self.pair.rtl_mem.write64(addr, value)
                self.pair.golden_mem.write64(addr, value)
        return changed

    def _answer(self, r, word, mem=None):
        """What QEMU must answer for the golden Response ``r``: the trap (cause, tval) or
        (None, the word at the translated address)."""
        if r.fault:
            return r.cause, word
        mem = mem if mem is not None else self.pair.golden_mem
        return None, mem.read64(r.paddr & ~(WORD - 1))

    def _mask(self, golden):
        """The mask that may explain a difference, or None."""
        decision = self.pair.golden.decided[0] if self.pair.golden.decided else None
        if not self.csr.get("adue", True) and golden.fault and decision in (SVADE,
                                                                              HIT_SVADE):
            mask = "no-svade"
        elif self.unfenced:
            mask = "stale-translation"
        else:
            return None
        return mask if mask not in self.masks_off else None

    def _fresh_walk(self, vaddr, kind):
        """What QEMU must answer: the golden model's answer from an empty TLB and walk
        cache, with Svadu, on a copy of its memory: (Response, the addresses the walk
        wrote, the copy)."""
        mem = self.pair.golden_mem
        copy = Memory(mem.size, mem.base)
        copy.data[:] = mem.data
        bus = _RecordingBus(copy)
        mmu = GoldenMMU(copy, tlb_entries=1, walk_cache_entries=0, bus=bus)
        mmu.set_csr(**{**self.csr, "adue": True})
        return mmu.translate(vaddr, int(kind)), bus.written, copy

    def check_memory(self, addresses):
        """The PTEs at ``addresses`` (the campaign's) as QEMU and the golden model hold
        them: the A/D bits each MMU set must be the same."""
        for addr in addresses:
            got, want = self.hw.read_pte(addr), self.pair.golden_mem.read64(addr)
            if got != want:
                raise Mismatch(f"PTE at {addr:#x}: qemu {got:#x} vs golden {want:#x}")


def _show(answer):
    cause, value = answer
    return f"trap {cause} tval {value:#x}" if cause is not None else f"word {value:#x}"

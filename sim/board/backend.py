"""The board backend of the hardware seam: :class:`BoardHardware`, the kernel model's
:class:`~mkclean.sim.hw.seam.Hardware` over a :class:`~.link.Link` to a machine that
speaks docs/bridge-protocol.md (a board's UART bridge, the board top under Verilator, the
reference machine of :mod:`.reference`).

No cache of the machine's memory: its walker sets A/D bits there, so every read goes to
the machine.
"""

from ..hw.seam import Cause, Csr, Kind, Trap
from ..model.memory import check_phys_base
from ..model.tlb import TlbEntry
from .link import KeptResponse, Link, LinkError
from .protocol import (ACCESS_DONE, ACCESS_TRAP, CAS, CAS_FOUND, MAX_BODY, PAGE_SIZE,
                       PROTOCOL_VERSION, READ, WORD, WRITE, AccessItem, AccessResult, Cmd,
                       CsrState, Sfence, Version, decode_counters, decode_tlb, encode_access)

_STORE, _AMO = int(Kind.STORE), int(Kind.AMO)
#: Words one READ returns, and one WRITE carries, within MAX_BODY.
_READ_WORDS = (MAX_BODY - 1) // WORD
_WRITE_WORDS = (MAX_BODY - WRITE.size) // WORD
#: Room in an ACCESS response for the results after the status, done count and a trap.
_RESULT_ROOM = MAX_BODY - 1 - ACCESS_DONE.size - ACCESS_TRAP.size


class BoardHardware:
    """A :class:`seam.Hardware` on a machine at the end of a link.

    The kernel model's physical addresses are the machine's (docs/bridge-protocol.md):
    memory is ``[phys_base, phys_base + phys_size)`` with the machine's ``phys_base``, and
    addresses go on the wire as they are, as do the PPNs in PTEs and satp.

    What the machine cannot do, VERSION's ``features`` say: without the TLB snapshot
    (QEMU's firmware bridge has none), :meth:`tlb_entries` is empty and the step checks of
    invariant 2 are not made (``step_checks`` stays 0: none was made, none passed;
    ``steps_unchecked`` counts the kernel steps that went unchecked);
    without counters, :meth:`counters` gives the host's figures only.

    Parameters
    ----------
    link : Link
    phys_size : int
        Bytes of memory the kernel model uses, from the machine's ``phys_base`` on; at most
        the machine's.
    tlb_entries : int or None
        The TLB size the run expects; the machine's must be the same (None: any; not
        compared when the machine has no TLB snapshot).
    phys_base : int or None
        Where the run expects memory to start; the machine's must be the same (None: any).

    Attributes
    ----------
    machine : Version
        What the machine said it is.
    phys_base, phys_size : int
        The kernel model's memory on the machine.
    step_check : callable or None
        Called with the TLB's entries before the first access after the kernel touched
        memory, page tables, CSRs or the TLB (invariant 2, as the rtl backend checks it),
        when the machine has a TLB snapshot.
    batches, step_checks, steps_unchecked : int
        ACCESS requests sent; step checks made; steps not checked for want of a TLB
        snapshot.
    """

    name = "board"

    def __init__(self, link: Link, phys_size: int | None = None,
                 tlb_entries: int | None = None, phys_base: int | None = None):
        self.link = link
        self.batches = self.step_checks = self.steps_unchecked = 0
        self.step_check = None
        self._kernel_ran = True
        self._start()
        m = self.machine
        if m.version != PROTOCOL_VERSION:
            raise LinkError(f"{link.url}: the machine speaks protocol version {m.version}, "
                            f"this host {PROTOCOL_VERSION}")
        if phys_size is None:
            phys_size = m.phys_size
        if phys_size > m.phys_size:
            raise LinkError(f"{link.url}: the machine has {m.phys_size >> 20} MiB of memory "
                            f"({m.phys_size:#x} bytes), fewer than the {phys_size >> 20} MiB "
                            f"asked for (--phys-mb)")
        self._has_tlb = bool(m.features & Version.TLB_SNAPSHOT)
        self._has_counters = bool(m.features & Version.COUNTERS)
        # A TLB the host cannot see is not compared (QEMU's reports 0 entries).
        if tlb_entries is not None and self._has_tlb and tlb_entries != m.tlb_entries:
            raise LinkError(f"{link.url}: the machine's TLB has {m.tlb_entries} entries, the "
                            f"run asks for {tlb_entries} (--tlb-entries)")
        if phys_base is not None and phys_base != m.phys_base:
            raise LinkError(f"{link.url}: the machine's memory starts at {m.phys_base:#x}, "
                            f"the run asks for {phys_base:#x} (--phys-base)")
        try:
            check_phys_base(m.phys_base, phys_size)
        except ValueError as e:
            raise LinkError(f"{link.url}: the machine's memory cannot hold the kernel "
                            f"model's: {e}") from None
        self.phys_size = phys_size
        self.phys_base = m.phys_base
        self.csr = Csr()
        self._send_csr()

    def _start(self) -> None:
        """RESET, then VERSION. The machine may hold a kept response from an earlier
        host under this SEQ: an answer to another command is that, and the RESET goes
        again under the next SEQ."""
        link = self.link
        for _ in range(3):
            link.seq = (link.seq + 1) & 0xFF
            try:
                link.request(Cmd.RESET, next_seq=False)
                break
            except KeptResponse:
                continue
        else:
            raise LinkError(f"{link.url}: RESET is answered by other commands' responses")
        self.machine = Version.decode(link.request(Cmd.VERSION))

    def close(self) -> None:
        self.link.close()

    # -- memory --------------------------------------------------------------------------------

    def _check_range(self, paddr: int, n: int, what: str) -> None:
        base = self.phys_base
        if paddr < base or n < 0 or paddr + n > base + self.phys_size:
            raise ValueError(f"{what} of {n} bytes at {paddr:#x} is outside memory "
                             f"[{base:#x}, {base + self.phys_size:#x})")

    def _read_words(self, addr: int, words: int) -> bytes:
        out = []
        while words:
            n = min(words, _READ_WORDS)
            out.append(self.link.request(Cmd.READ, READ.pack(addr, n)))
            addr += n * WORD
            words -= n
        return b"".join(out)

    def _write_words(self, addr: int, data: bytes) -> None:
        step = _WRITE_WORDS * WORD
        for at in range(0, len(data), step):
            self.link.request(Cmd.WRITE, WRITE.pack(addr + at) + data[at:at + step])

    def read(self, paddr: int, n: int) -> bytes:
        self._check_range(paddr, n, "read")
        if n == 0:
            return b""
        first = paddr & ~(WORD - 1)
        end = -(-(paddr + n) // WORD) * WORD
        raw = self._read_words(first, (end - first) // WORD)
        return raw[paddr - first:paddr - first + n]

    def write(self, paddr: int, data: bytes) -> None:
        """Whole words go as they are; a partial word at either end is read, merged and
        written (between commands the machine's MMU is idle: nothing else writes it)."""
        self._check_range(paddr, len(data), "write")
        if not data:
            return
        self._kernel_ran = True
        first = paddr & ~(WORD - 1)
        end = -(-(paddr + len(data)) // WORD) * WORD
        if first != paddr or end != paddr + len(data):
            buf = bytearray(end - first)
            if first != paddr:
                buf[:WORD] = self._read_words(first, 1)
            if end != paddr + len(data) and (end - WORD != first or first == paddr):
                buf[-WORD:] = self._read_words(end - WORD, 1)
            buf[paddr - first:paddr - first + len(data)] = data
            data = bytes(buf)
        self._write_words(first, data)

    def read_pte(self, paddr: int) -> int:
        if paddr % WORD:
            raise ValueError(f"read_pte: PTE address {paddr:#x} is not 8-byte aligned")
        self._check_range(paddr, WORD, "read_pte")
        return int.from_bytes(self._read_words(paddr, 1), "little")

    def write_pte(self, paddr: int, value: int) -> None:
        if paddr % WORD:
            raise ValueError(f"write_pte: PTE address {paddr:#x} is not 8-byte aligned")
        self._check_range(paddr, WORD, "write_pte")
        self._kernel_ran = True
        self._write_words(paddr, value.to_bytes(WORD, "little"))

    def cas_pte(self, paddr: int, expected: int, new: int) -> int:
        if paddr % WORD:
            raise ValueError(f"cas_pte: PTE address {paddr:#x} is not 8-byte aligned")
        self._check_range(paddr, WORD, "cas_pte")
        self._kernel_ran = True
        found = self.link.request(Cmd.CAS, CAS.pack(paddr, expected, new))
        return CAS_FOUND.unpack(found)[0]

    # -- translation state ---------------------------------------------------------------------

    def _send_csr(self) -> None:
        c = self.csr
        self.link.request(Cmd.CSR, CsrState(c.mode, c.asid, c.ppn, int(c.priv), c.sum, c.mxr,
                                            c.adue).encode())

    def set_csr(self, **fields) -> None:
        unknown = set(fields) - set(Csr.__dataclass_fields__)
        if unknown:
            raise ValueError(f"set_csr: no CSR fields {sorted(unknown)}")
        self._kernel_ran = True
        for name, value in fields.items():
            setattr(self.csr, name, value)
        self._send_csr()

    def sfence_vma(self, vaddr: int | None = None, asid: int | None = None) -> None:
        self._kernel_ran = True
        flags = (Sfence.BY_VADDR if vaddr is not None else 0) | \
            (Sfence.BY_ASID if asid is not None else 0)
        self.link.request(Cmd.SFENCE, Sfence(flags, vaddr or 0, asid or 0).encode())

    # -- accesses ------------------------------------------------------------------------------

    def access(self, vaddr: int, kind: Kind, data: bytes | None = None,
               size: int = 0) -> bytes | Trap:
        results, trap = self.access_batch([(vaddr, kind, data, size)])
        return trap if trap is not None else results[0]

    def access_batch(self, accesses, on_trap=None):
        items = [_item(*a) for a in accesses]
        results = []
        at = 0
        while at < len(items):
            chunk = self._chunk(items, at)
            done, trap = self._access(chunk)
            results += done
            at += len(done)
            if trap is not None:
                if on_trap is None:
                    return results, trap
                on_trap(trap, len(results))
        return results, None

    def _chunk(self, items, at):
        """The items from ``at`` that one ACCESS carries: at most the machine's batch,
        request and results within MAX_BODY."""
        request = results = 0
        end = at
        limit = min(len(items), at + self.machine.max_batch)
        while end < limit:
            item = items[end]
            request += item.request_bytes()
            results += item.result_bytes()
            if end > at and (2 + request > MAX_BODY or results > _RESULT_ROOM):
                break
            end += 1
        return items[at:end]

    def _access(self, items):
        if self._kernel_ran and self.step_check is not None:
            if self._has_tlb:
                self._kernel_ran = False
                self.step_checks += 1
                self.step_check(self.tlb_entries())
            else:
                self.steps_unchecked += 1
        self._kernel_ran = False
        self.batches += 1
        body = self.link.request(Cmd.ACCESS, encode_access(items))
        result = AccessResult.decode(body, items)
        trap = None
        if result.trap is not None:
            cause, tval = result.trap
            trap = Trap(Cause(cause), tval)
        return result.data, trap

    # -- debug ---------------------------------------------------------------------------------

    def kernel_event(self, event, addr: int = 0) -> None:
        """Nothing: a board records no trace."""

    def tlb_entries(self) -> list[TlbEntry]:
        """The machine's TLB; empty when it has no TLB snapshot (nothing to check)."""
        if not self._has_tlb:
            return []
        return [TlbEntry(bool(e["valid"]), e["asid"], bool(e["g"]), e["level"], e["vpn"],
                         e["ppn"], bool(e["r"]), bool(e["w"]), bool(e["x"]), bool(e["u"]),
                         bool(e["a"]), bool(e["d"]))
                for e in decode_tlb(self.link.request(Cmd.TLB))]

    def counters(self) -> dict[str, int]:
        """The machine's counters (as the rtl backend's: cycles, walks, TLB hits...) when
        it has them, the ACCESS requests and step checks, and the link's figures."""
        counters = (decode_counters(self.link.request(Cmd.COUNTERS)) if self._has_counters
                    else {})
        return {**counters, "batches": self.batches, "step_checks": self.step_checks,
                "steps_unchecked": self.steps_unchecked,
                **{f"link_{k}": v for k, v in self.link.stats().items()}}


def _item(vaddr, kind, data, size) -> AccessItem:
    """A seam access as an ACCESS item, checked as the golden backend checks it."""
    kind = int(kind)
    if kind == _STORE or kind == _AMO:
        if data is None:
            raise ValueError(f"{Kind(kind).name} access needs data")
        size = len(data)
    elif kind in (0, 2):
        data = None
    else:
        raise ValueError(f"kind must be a seam.Kind, got {kind!r}")
    if not 0 <= vaddr < 1 << 64:
        raise ValueError(f"vaddr {vaddr!r} is not a 64-bit unsigned integer")
    if not 1 <= size <= PAGE_SIZE or (vaddr & (PAGE_SIZE - 1)) + size > PAGE_SIZE:
        raise ValueError(f"access of {size} bytes at {vaddr:#x} crosses a 4 KiB page "
                         f"(or is empty)")
    if kind == _AMO and (size not in (4, 8) or vaddr % size):
        raise ValueError(f"an AMO is of 4 or 8 naturally aligned bytes, not {size} at "
                         f"{vaddr:#x}")
    return AccessItem(vaddr, kind, size, data)


def make_board(phys_size: int | None = None, tlb_entries: int | None = None,
               walk_cache_entries: int = 8, url: str | None = None, baud: int = 115200,
               timeout: float = 1.0, phys_base: int | None = None,
               **options) -> BoardHardware:
    """The backend registry's factory (:mod:`mkclean.sim.hw.backends`): opens ``url``.

    ``phys_size``, ``tlb_entries`` and ``phys_base`` are what the run expects of the
    machine (None: what it has, any TLB, any base); ``walk_cache_entries`` is the run's
    for the other backends (a machine's walk cache is its own)."""
    if options:
        raise ValueError(f"the board backend takes no options {sorted(options)}")
    if url is None:
        raise ValueError("the board backend needs a port: mkclean run --backend board "
                         "--port URL (a serial port, socket://HOST:PORT, loop://)")
    link = Link(url, baud=baud, timeout=timeout)
    try:
        return BoardHardware(link, phys_size=phys_size, tlb_entries=tlb_entries,
                             phys_base=phys_base)
    except BaseException:
        link.close()
        raise

"""The bridge protocol of docs/bridge-protocol.md in Python: every constant and field
layout in one place, frames (:func:`encode_frame`, :class:`Parser`) and each command's
request and results, encoded and decoded both ways (the host uses one direction, the
reference machine the other, the tests both).

It knows bytes only: no port, no board, no MMU. The command and status codes and the
protocol's constants (SYNC, MAX_BODY, RESPONSE, PROTOCOL_VERSION, the feature bits,
PAGE_SIZE) are the gateware's table (``hdl/bridge_codes.py``) and the TLB entry's bit
layout is the gateware's (``hdl/pte.py``'s ``TlbEntry``), all read from there so the two
cannot drift.
"""

import binascii
import enum
import struct
from dataclasses import dataclass, fields

from ...hdl import bridge_codes as _codes
from ...hdl.pte import TlbEntry as _TlbEntryLayout

#: The protocol's constants, the gateware's (``hdl/bridge_codes.py`` documents each):
#: ``SYNC`` (bytes), ``MAX_BODY``, the ``RESPONSE`` bit of a response's CMD, the
#: ``PROTOCOL_VERSION`` VERSION reports, and ACCESS's ``PAGE_SIZE``.
SYNC, MAX_BODY, RESPONSE = _codes.SYNC, _codes.MAX_BODY, _codes.RESPONSE
PROTOCOL_VERSION, PAGE_SIZE = _codes.PROTOCOL_VERSION, _codes.PAGE_SIZE
#: Sends of one request before the host gives up (the first send included).
RETRIES = 4
#: ``LEN``, ``SEQ``, ``CMD`` after ``SYNC``.
HEADER = struct.Struct("<HBB")
CRC = struct.Struct("<H")
#: Bytes of a frame around its body.
OVERHEAD = len(SYNC) + HEADER.size + CRC.size
WORD = 8


#: A request's CMD; the response's is the same with :data:`RESPONSE` set.
Cmd = enum.IntEnum("Cmd", _codes.CMD_CODES, module=__name__)
#: The first byte of every response body: OK, BAD_CMD (no such command; nothing done),
#: BAD_ARG (arguments of the wrong length or out of range; nothing done).
Status = enum.IntEnum("Status", _codes.STATUS_CODES, module=__name__)


class ProtocolError(ValueError):
    """Bytes that are not what the protocol says (a body of the wrong length, a field
    out of range): the machine answers BAD_ARG, the host stops."""


def crc(data: bytes) -> int:
    """CRC-16/XMODEM (poly 0x1021, init 0)."""
    return binascii.crc_hqx(data, 0)


@dataclass(frozen=True)
class Frame:
    seq: int
    cmd: int
    body: bytes


def encode_frame(seq: int, cmd: int, body: bytes = b"") -> bytes:
    """The frame's bytes: SYNC, LEN, SEQ, CMD, BODY, CRC of LEN..BODY."""
    if len(body) > MAX_BODY:
        raise ProtocolError(f"a body of {len(body)} bytes is over MAX_BODY ({MAX_BODY})")
    covered = HEADER.pack(len(body), seq & 0xFF, cmd & 0xFF) + body
    return SYNC + covered + CRC.pack(crc(covered))


class Parser:
    """Frames out of a byte stream, resynchronising after garbage, dropped bytes, cut
    and corrupted frames.

    :meth:`feed` takes any number of bytes; the frames it returns are those a parser fed
    the same bytes one at a time would take: it hunts for SYNC, and drops a candidate
    whose LEN is over MAX_BODY or whose CRC does not match, hunting again from the byte
    after that candidate's first SYNC byte. :meth:`expire` drops a frame whose bytes
    stopped coming (the inter-byte timeout) the same way.

    Attributes
    ----------
    dropped : int
        Candidate frames dropped (LEN too large, bad CRC, expired).
    garbage : int
        Bytes skipped while hunting for SYNC.
    """

    def __init__(self):
        self._buf = bytearray()
        self.dropped = 0
        self.garbage = 0

    @property
    def pending(self) -> int:
        """Bytes held: a frame begun but not complete (0 when hunting)."""
        return len(self._buf)

    @property
    def needed(self) -> int:
        """Bytes that certainly belong to the stream ahead: the rest of the frame begun,
        or a header when hunting. A reader that asks for no more than these never waits
        for bytes that are not coming."""
        head = len(SYNC) + HEADER.size
        if len(self._buf) < head:
            return head - len(self._buf)
        return head + HEADER.unpack_from(self._buf, len(SYNC))[0] + CRC.size - len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        return self._frames()

    def expire(self) -> list[Frame]:
        """The bytes stopped: drop the frame begun, and take what follows its first SYNC
        byte afresh (a retried request may sit behind a cut one)."""
        if not self._buf:
            return []
        self.dropped += 1
        del self._buf[0]
        return self._frames()

    def _frames(self) -> list[Frame]:
        buf, out = self._buf, []
        while True:
            at = buf.find(SYNC)
            if at < 0:
                # keep a last A5: it may be the first half of a SYNC
                keep = 1 if buf[-1:] == SYNC[:1] else 0
                self.garbage += len(buf) - keep
                del buf[:len(buf) - keep]
                return out
            self.garbage += at
            del buf[:at]
            if len(buf) < len(SYNC) + HEADER.size:
                return out
            length, seq, cmd = HEADER.unpack_from(buf, len(SYNC))
            if length > MAX_BODY:
                self.dropped += 1
                del buf[0]
                continue
            end = len(SYNC) + HEADER.size + length
            if len(buf) < end + CRC.size:
                return out
            covered = bytes(buf[len(SYNC):end])
            if CRC.unpack_from(buf, end)[0] != crc(covered):
                self.dropped += 1
                del buf[0]
                continue
            out.append(Frame(seq, cmd, covered[HEADER.size:]))
            del buf[:end + CRC.size]


# -- the commands' requests and results -----------------------------------------------------

def _unpack(fmt: struct.Struct, body: bytes, what: str):
    if len(body) != fmt.size:
        raise ProtocolError(f"{what}: {len(body)} bytes, expected {fmt.size}")
    return fmt.unpack(body)


@dataclass(frozen=True)
class Version:
    """VERSION's results: what the machine is."""
    version: int
    phys_base: int
    phys_size: int
    tlb_entries: int
    max_batch: int
    features: int

    FORMAT = struct.Struct("<BQQBHB")
    TLB_SNAPSHOT = _codes.FEATURE_TLB_SNAPSHOT      #: ``features`` bit 0
    COUNTERS = _codes.FEATURE_COUNTERS              #: ``features`` bit 1

    def encode(self) -> bytes:
        return self.FORMAT.pack(*(getattr(self, f.name) for f in fields(self)))

    @classmethod
    def decode(cls, body: bytes) -> "Version":
        return cls(*_unpack(cls.FORMAT, body, "VERSION results"))


#: READ's request: ``addr``, ``words``.
READ = struct.Struct("<QH")
#: WRITE's request before its words: ``addr``.
WRITE = struct.Struct("<Q")
#: CAS's request: ``addr``, ``expected``, ``new``; its results: ``found``.
CAS = struct.Struct("<QQQ")
CAS_FOUND = struct.Struct("<Q")


@dataclass(frozen=True)
class CsrState:
    """CSR's request: the whole translation state at once."""
    mode: int
    asid: int
    ppn: int
    priv: int
    sum: int
    mxr: int
    adue: int

    FORMAT = struct.Struct("<BHQBBBB")

    def encode(self) -> bytes:
        return self.FORMAT.pack(*(int(getattr(self, f.name)) for f in fields(self)))

    @classmethod
    def decode(cls, body: bytes) -> "CsrState":
        return cls(*_unpack(cls.FORMAT, body, "CSR request"))


@dataclass(frozen=True)
class Sfence:
    """SFENCE's request."""
    flags: int
    vaddr: int
    asid: int

    FORMAT = struct.Struct("<BQH")
    BY_VADDR = 1 << 0
    BY_ASID = 1 << 1

    def encode(self) -> bytes:
        return self.FORMAT.pack(self.flags, self.vaddr, self.asid)

    @classmethod
    def decode(cls, body: bytes) -> "Sfence":
        return cls(*_unpack(cls.FORMAT, body, "SFENCE request"))


#: ACCESS's request: ``count``, then the items.
ACCESS_COUNT = struct.Struct("<H")
#: An ACCESS item before its data (stores and AMOs): ``vaddr``, ``kind``, ``size``.
ACCESS_ITEM = struct.Struct("<QBH")
#: ACCESS's results: ``done``, the data, and when ``done`` < ``count`` the trap.
ACCESS_DONE = struct.Struct("<H")
ACCESS_TRAP = struct.Struct("<BQ")
KIND_STORE, KIND_AMO = 1, 3
KINDS = range(4)


def carries_data(kind: int) -> bool:
    """A store's or AMO's item carries data; a load's, fetch's or AMO's result does."""
    return kind == KIND_STORE or kind == KIND_AMO


def returns_data(kind: int) -> bool:
    return kind != KIND_STORE


@dataclass(frozen=True)
class AccessItem:
    vaddr: int
    kind: int
    size: int
    data: bytes | None = None   #: a store's or AMO's ``size`` bytes

    def request_bytes(self) -> int:
        return ACCESS_ITEM.size + (self.size if carries_data(self.kind) else 0)

    def result_bytes(self) -> int:
        return self.size if returns_data(self.kind) else 0

    def check(self) -> None:
        """The document's ranges, or ProtocolError (the machine's BAD_ARG)."""
        if self.kind not in KINDS:
            raise ProtocolError(f"ACCESS kind {self.kind}")
        if not 1 <= self.size <= PAGE_SIZE \
                or (self.vaddr & (PAGE_SIZE - 1)) + self.size > PAGE_SIZE:
            raise ProtocolError(f"ACCESS of {self.size} bytes at {self.vaddr:#x}")
        if self.kind == KIND_AMO and (self.size not in (4, 8) or self.vaddr % self.size):
            raise ProtocolError(f"AMO of {self.size} bytes at {self.vaddr:#x}")
        if carries_data(self.kind) and (self.data is None or len(self.data) != self.size):
            raise ProtocolError(f"ACCESS store/AMO of {self.size} bytes without its data")


def encode_access(items) -> bytes:
    out = [ACCESS_COUNT.pack(len(items))]
    for item in items:
        out.append(ACCESS_ITEM.pack(item.vaddr, item.kind, item.size))
        if carries_data(item.kind):
            out.append(item.data)
    return b"".join(out)


def decode_access(body: bytes) -> list[AccessItem]:
    """ACCESS's items, each checked; ProtocolError for anything the document forbids."""
    if len(body) < ACCESS_COUNT.size:
        raise ProtocolError("ACCESS request without its count")
    (count,), at, items = ACCESS_COUNT.unpack_from(body), ACCESS_COUNT.size, []
    for _ in range(count):
        if len(body) < at + ACCESS_ITEM.size:
            raise ProtocolError("ACCESS request cut inside an item")
        vaddr, kind, size = ACCESS_ITEM.unpack_from(body, at)
        at += ACCESS_ITEM.size
        data = None
        if carries_data(kind):
            data = bytes(body[at:at + size])
            at += size
        item = AccessItem(vaddr, kind, size, data)
        item.check()
        items.append(item)
    if at != len(body):
        raise ProtocolError(f"ACCESS request: {len(body) - at} bytes after its items")
    return items


@dataclass(frozen=True)
class AccessResult:
    """ACCESS's results: each done item's data (``b""`` for a store), and the trap of
    the item after them as (cause, tval), or None when all were done."""
    data: list[bytes]
    trap: tuple[int, int] | None

    def encode(self) -> bytes:
        out = [ACCESS_DONE.pack(len(self.data)), *self.data]
        if self.trap is not None:
            out.append(ACCESS_TRAP.pack(*self.trap))
        return b"".join(out)

    @classmethod
    def decode(cls, body: bytes, items) -> "AccessResult":
        """Decoded against the request's ``items`` (their kinds and sizes)."""
        if len(body) < ACCESS_DONE.size:
            raise ProtocolError("ACCESS results without their count")
        (done,), at = ACCESS_DONE.unpack_from(body), ACCESS_DONE.size
        if done > len(items):
            raise ProtocolError(f"ACCESS results: {done} done of {len(items)}")
        data = []
        for item in items[:done]:
            n = item.result_bytes()
            data.append(bytes(body[at:at + n]))
            at += n
        trap = None
        if done < len(items):
            trap = ACCESS_TRAP.unpack_from(body, at) if len(body) >= at + ACCESS_TRAP.size \
                else None
            at += ACCESS_TRAP.size
            if trap is None:
                raise ProtocolError("ACCESS results cut before the trap")
        if at != len(body):
            raise ProtocolError(f"ACCESS results of {len(body)} bytes, expected {at}")
        return cls(data, trap)


#: COUNTERS' results, in order, each a u64.
COUNTER_NAMES = ("cycles", "tlb_hits", "tlb_misses", "walks", "walk_cycles", "ad_updates",
                 "page_faults", "access_faults")
COUNTERS = struct.Struct("<" + "Q" * len(COUNTER_NAMES))


def decode_counters(body: bytes) -> dict[str, int]:
    return dict(zip(COUNTER_NAMES, _unpack(COUNTERS, body, "COUNTERS results")))


def encode_counters(counters: dict[str, int]) -> bytes:
    return COUNTERS.pack(*(counters[name] for name in COUNTER_NAMES))


#: TLB's results: ``count``, then the entries.
TLB_COUNT = struct.Struct("<B")
#: (name, bit offset, width) of each TlbEntry field, the gateware's layout.
TLB_FIELDS = tuple((name, field.offset, field.width)
                   for name, field in _TlbEntryLayout.as_shape())
TLB_ENTRY_BYTES = (_TlbEntryLayout.as_shape().size + 7) // 8


def pack_tlb_entry(values: dict[str, int]) -> bytes:
    """A TLB entry's field values (by name) as its layout's bits, little-endian."""
    bits = 0
    for name, offset, width in TLB_FIELDS:
        bits |= (int(values[name]) & ((1 << width) - 1)) << offset
    return bits.to_bytes(TLB_ENTRY_BYTES, "little")


def unpack_tlb_entry(raw: bytes) -> dict[str, int]:
    bits = int.from_bytes(raw, "little")
    return {name: bits >> offset & ((1 << width) - 1) for name, offset, width in TLB_FIELDS}


def encode_tlb(entries: list[dict[str, int]]) -> bytes:
    return TLB_COUNT.pack(len(entries)) + b"".join(map(pack_tlb_entry, entries))


def decode_tlb(body: bytes) -> list[dict[str, int]]:
    if len(body) < TLB_COUNT.size:
        raise ProtocolError("TLB results without their count")
    (count,) = TLB_COUNT.unpack_from(body)
    if len(body) != TLB_COUNT.size + count * TLB_ENTRY_BYTES:
        raise ProtocolError(f"TLB results of {len(body)} bytes for {count} entries")
    return [unpack_tlb_entry(body[TLB_COUNT.size + i * TLB_ENTRY_BYTES:
                                  TLB_COUNT.size + (i + 1) * TLB_ENTRY_BYTES])
            for i in range(count)]

"""The signals a trace of the MMU is read by, grouped, and how each one's value reads.

A :class:`Probe` is one signal of a trace (its full name, its width, the group it is shown
in and a short label) with its decoder: an enum of the gateware names its values (the
walker's :class:`~mkclean.hdl.ptw.WalkState`, a :class:`~mkclean.hdl.pte.Cause`, the
kernel's :class:`~mkclean.sim.hw.seam.KernelEvent`...), a layout of the gateware splits
it into fields (one decoder for every PTE-shaped signal: :class:`~mkclean.hdl.pte.Pte`;
TLB entries, the walker's leaf, the batch's answer), addresses read in hex and counters
in decimal. The names come from the enums and layouts themselves, never from a second
table, so that a renamed state or a moved field is what the trace shows.

:func:`probes` picks the catalogue's probes a trace holds. The GTKWave save file
(:mod:`.gtkw`) and the PNG renderer both stand on it.
"""

import enum as py_enum
from dataclasses import dataclass, field

from amaranth.hdl import Shape
from amaranth.lib import data

from ...hdl.batch import BatchResponse, Op
from ...hdl.mmu import COUNTER_BITS, COUNTERS
from ...hdl.pte import (PADDR_BITS, PAGE_BITS, VPN_BITS, Cause, Kind, Priv, Pte,
                        SatpMode, TlbEntry)
from ...hdl.ptw import BUS_ADDR_BITS, Leaf, WalkState
from ...hdl.verilog import BATCH_TOP_NAME, TOP_NAME
from ..hw.seam import KernelEvent

#: The groups a trace is shown in, in this order.
GROUPS = ("request", "response", "tlb", "walker", "bus", "csr", "batch", "counters",
          "kernel")


def _hex(value, width):
    return f"0x{value:0{(width + 3) // 4}x}"


def page_size(level):
    """``"4K"``, ``"2M"``, ``"1G"`` for a leaf at ``level`` (Sv39's page sizes, from the
    page offset and the VPN fields' widths)."""
    size = 1 << (PAGE_BITS + VPN_BITS * level)
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if size >= 1 << shift:
            return f"{size >> shift}{unit}"
    return str(size)


class Decoder:
    """How a value reads. ``datafmt`` is GTKWave's format for it (what a translate filter
    matches on)."""
    name = ""
    datafmt = "hex"

    def decode(self, value: int, width: int) -> str:
        raise NotImplementedError


class Bit(Decoder):
    name = "bit"
    datafmt = "bin"

    def decode(self, value, width):
        return str(value)


class Hex(Decoder):
    """Addresses and data: zero-padded to the signal's width."""
    name = "hex"

    def decode(self, value, width):
        return _hex(value, width)


class Dec(Decoder):
    """Counters and queue indices."""
    name = "dec"
    datafmt = "dec"

    def decode(self, value, width):
        return str(value)


class EnumDecoder(Decoder):
    """Names a value by the member of ``enum`` that has it; a value no member has reads
    as ``?`` and the number (the RTL never makes one: the test says so)."""

    def __init__(self, enum):
        self.enum = enum
        self.name = enum.__name__
        self.names = {member.value: member.name for member in enum}

    def decode(self, value, width):
        return self.names.get(value, f"?{value:#x}")


class LayoutDecoder(Decoder):
    """Reads a value by the fields of a gateware layout, in the layout's order: one-bit
    fields as flags (the field's name in capitals when set, ``-`` when not), then enum
    fields by name, other fields as ``name=0x...``, a ``level`` as the page size it means.
    Fields named in ``quiet`` show only when non-zero (a PTE's reserved bits). A layout
    with a ``valid`` field reads ``invalid`` when it is clear."""

    def __init__(self, layout, quiet=()):
        self.layout = data.Layout.cast(layout)
        self.name = layout.__name__ if isinstance(layout, type) else str(layout)
        self.quiet = frozenset(quiet)
        missing = self.quiet - set(_field_names(self.layout))
        assert not missing, f"{self.name} has no fields {sorted(missing)}"
        self.width = Shape.cast(self.layout).width

    def decode(self, value, width):
        if "valid" in dict(self.layout) and not (value >> self.layout["valid"].offset) & 1:
            return "invalid"
        flags, names, values, size = [], [], [], []
        self._parts(self.layout, value, flags, names, values, size)
        return " ".join(flags + names + values + size)

    def _parts(self, layout, value, flags, names, values, size):
        for name, fld in layout:
            bits = (value >> fld.offset) & ((1 << fld.width) - 1)
            shape = fld.shape
            if isinstance(shape, data.Layout) or (isinstance(shape, type) and
                                                  issubclass(shape, data.View)):
                self._parts(data.Layout.cast(shape), bits, flags, names, values, size)
            elif name in self.quiet and not bits:
                continue
            elif name == "valid":
                continue    # clear reads "invalid"; set is the normal case
            elif isinstance(shape, type) and issubclass(shape, py_enum.Enum):
                names.append(EnumDecoder(shape).decode(bits, fld.width))
            elif name == "level":
                size.append(f"({page_size(bits)})")
            elif fld.width == 1:
                flags.append(name.upper() if bits else "-")
            else:
                values.append(f"{name}=0x{bits:x}")


def _field_names(layout):
    for name, fld in layout:
        shape = fld.shape
        if isinstance(shape, data.Layout) or (isinstance(shape, type) and
                                              issubclass(shape, data.View)):
            yield from _field_names(data.Layout.cast(shape))
        else:
            yield name


BIT, HEX, DEC = Bit(), Hex(), Dec()
#: One decoder for every PTE-shaped signal. RSW is software's, bits 54..63 make a PTE
#: invalid: shown only when set.
PTE = LayoutDecoder(Pte, quiet=("rsw", "reserved", "pbmt", "n"))
LEAF = LayoutDecoder(Leaf, quiet=("rsw", "reserved", "pbmt", "n"))
TLB_ENTRY = LayoutDecoder(TlbEntry)
BATCH_RESPONSE = LayoutDecoder(BatchResponse)
ENUMS = {enum.__name__: EnumDecoder(enum)
         for enum in (Kind, Priv, SatpMode, Cause, WalkState, Op, KernelEvent)}
#: Every decoder by name: what a GTKWave process filter script asks for (:mod:`.gtkw`).
DECODERS = {d.name: d for d in (BIT, HEX, DEC, PTE, LEAF, TLB_ENTRY, BATCH_RESPONSE,
                                *ENUMS.values())}


def _width(shape):
    return Shape.cast(shape).width


@dataclass(frozen=True)
class Probe:
    """One signal of a trace and how it reads.

    Attributes
    ----------
    group : str
        One of :data:`GROUPS`.
    path : str
        Its full name in the trace, e.g. ``mkclean_batch_tb.u.mmu.ptw.state``.
    width : int
        Bits.
    label : str
        A short name to show.
    decoder : Decoder
    """
    group: str
    path: str
    width: int
    label: str
    decoder: Decoder = field(default=HEX, compare=False)

    def decode(self, value: int | str | None) -> str:
        """``"WALK"``, ``"V R W - U - A D ppn=0x1234 (4K)"``, ``"0x0000003fc0001000"``;
        ``"x"`` for no value, and a value with x or z bits as the trace has it."""
        if value is None:
            return "x"
        if isinstance(value, str):
            try:
                value = int(value, 2)
            except ValueError:
                return value
        return self.decoder.decode(value, self.width)


@dataclass(frozen=True)
class Spec:
    """A probe of the catalogue before it meets a trace: ``width`` None takes the trace's
    (queue indices and TLB indices, sized by the configuration); a ``{i}`` in ``path``
    stands for 0, 1, ... as long as the trace has them (the TLB's entries); ``{top}`` for
    the testbench top, ``{mmu}`` for the MMU in it."""
    group: str
    path: str
    width: int | None
    label: str
    decoder: Decoder = HEX


#: The testbench top every co-simulation of the kernel runs: the batch top's
#: (sim/cosim/build.py names it after the design, with ``_tb``).
TOP = f"{BATCH_TOP_NAME}_tb"
#: The MMU in it (hdl/batch.py's ``mmu``; hdl/top.py's too).
MMU = f"{TOP}.u.mmu"
#: The testbench tops a trace may have, the batch top's first; the bare MMU's has no
#: batch queue, so those probes are not in its traces.
TOPS = (TOP, f"{TOP_NAME}_tb")
#: The kernel's debug port on the testbench top (sim/cosim/build.py KERNEL_EVENT_PORT):
#: an event (8 bits hold every KernelEvent) and its 64-bit address.
KERNEL_EVENT_BITS = max(KernelEvent).bit_length()


def _catalogue():
    m, top, u = "{mmu}", "{top}", "{top}.u"
    kind, cause = ENUMS["Kind"], ENUMS["Cause"]
    return [
        # The MMU's own request, sfence and response streams, read where the top drives
        # them (from the batch queue, or the bare top's ports): inside the MMU, its
        # walker's and TLB's streams (driven there) hold the names req__*, sfence__* and
        # resp__*, and Amaranth renames the MMU's ports instead.
        Spec("request", f"{u}.req__valid", 1, "req valid", BIT),
        Spec("request", f"{u}.req__ready", 1, "req ready", BIT),
        Spec("request", f"{u}.req__payload.vaddr", 64, "vaddr"),
        Spec("request", f"{u}.req__payload.kind", _width(Kind), "kind", kind),
        Spec("request", f"{u}.sfence__valid", 1, "sfence", BIT),
        Spec("request", f"{u}.sfence__payload.vaddr", 64, "sfence vaddr"),
        Spec("request", f"{u}.sfence__payload.by_vaddr", 1, "sfence by vaddr", BIT),
        Spec("request", f"{u}.sfence__payload.asid", 16, "sfence asid"),
        Spec("request", f"{u}.sfence__payload.by_asid", 1, "sfence by asid", BIT),

        Spec("response", f"{u}.resp__valid", 1, "resp valid", BIT),
        Spec("response", f"{u}.resp__payload.fault", 1, "fault", BIT),
        Spec("response", f"{u}.resp__payload.cause", _width(Cause), "cause", cause),
        Spec("response", f"{u}.resp__payload.paddr", PADDR_BITS, "paddr"),
        Spec("response", f"{u}.resp__payload.tval", 64, "tval"),

        Spec("tlb", f"{m}.tlb.hit", 1, "hit", BIT),
        Spec("tlb", f"{m}.tlb.hit_index", None, "hit index", DEC),
        Spec("tlb", f"{m}.tlb.hit_entry", _width(TlbEntry), "hit entry", TLB_ENTRY),
        Spec("tlb", f"{m}.tlb.fill_en", 1, "fill", BIT),
        Spec("tlb", f"{m}.tlb.fill_index", None, "fill index", DEC),
        Spec("tlb", f"{m}.tlb.fill_entry", _width(TlbEntry), "fill entry", TLB_ENTRY),
        Spec("tlb", f"{m}.tlb.entry{{i}}", _width(TlbEntry), "entry {i}", TLB_ENTRY),

        Spec("walker", f"{m}.ptw.state", _width(WalkState), "walker state",
             ENUMS["WalkState"]),
        Spec("walker", f"{m}.ptw.vaddr", 64, "walk vaddr"),
        Spec("walker", f"{m}.ptw.kind", _width(Kind), "walk kind", kind),
        Spec("walker", f"{m}.ptw.level", 2, "level", DEC),
        Spec("walker", f"{m}.ptw.pte_addr", PADDR_BITS, "pte addr"),
        Spec("walker", f"{m}.ptw.pte", _width(Pte), "pte (last read)", PTE),
        Spec("walker", f"{m}.ptw.pte_at", PADDR_BITS, "its addr"),
        Spec("walker", f"{m}.ptw.pte_level", 2, "its level", DEC),
        Spec("walker", f"{m}.ptw.walk_cache.hit", 1, "walk cache hit", BIT),
        Spec("walker", f"{m}.ptw.stale", 1, "stale", BIT),
        Spec("walker", f"{m}.ptw.fill__valid", 1, "fill", BIT),
        Spec("walker", f"{m}.ptw.fill__payload", _width(Leaf), "fill leaf", LEAF),

        Spec("bus", f"{m}.bus__cyc", 1, "cyc", BIT),
        Spec("bus", f"{m}.bus__stb", 1, "stb", BIT),
        Spec("bus", f"{m}.bus__we", 1, "we", BIT),
        Spec("bus", f"{m}.bus__lock", 1, "lock", BIT),
        Spec("bus", f"{m}.bus__adr", BUS_ADDR_BITS, "adr (words)"),
        Spec("bus", f"{m}.bus__dat_r", _width(Pte), "dat_r", PTE),
        Spec("bus", f"{m}.bus__dat_w", _width(Pte), "dat_w", PTE),
        Spec("bus", f"{m}.bus__ack", 1, "ack", BIT),
        Spec("bus", f"{m}.bus__err", 1, "err", BIT),
        Spec("bus", f"{top}.wb_cyc", 1, "host cyc", BIT),
        Spec("bus", f"{top}.wb_adr", BUS_ADDR_BITS, "host adr (words)"),
        Spec("bus", f"{top}.wb_ack", 1, "host ack", BIT),

        Spec("csr", f"{m}.csr.satp.mode", _width(SatpMode), "satp.mode", ENUMS["SatpMode"]),
        Spec("csr", f"{m}.csr.satp.asid", 16, "satp.asid"),
        Spec("csr", f"{m}.csr.satp.ppn", 44, "satp.ppn"),
        Spec("csr", f"{m}.csr.priv", _width(Priv), "priv", ENUMS["Priv"]),
        Spec("csr", f"{m}.csr.sum", 1, "sum", BIT),
        Spec("csr", f"{m}.csr.mxr", 1, "mxr", BIT),
        Spec("csr", f"{m}.csr.adue", 1, "adue", BIT),

        Spec("batch", f"{top}.batch_token", 1, "token", BIT),
        Spec("batch", f"{top}.batch_busy", 1, "busy", BIT),
        Spec("batch", f"{top}.batch_first", None, "first", DEC),
        Spec("batch", f"{top}.batch_end", None, "end", DEC),
        Spec("batch", f"{top}.batch_next", None, "next", DEC),
        Spec("batch", f"{top}.u.answer", _width(BatchResponse), "answer", BATCH_RESPONSE),

        *(Spec("counters", f"{top}.cnt_{name}", COUNTER_BITS, name.replace("_", " "), DEC)
          for name in COUNTERS),

        Spec("kernel", f"{top}.kernel_event", KERNEL_EVENT_BITS, "kernel event",
             ENUMS["KernelEvent"]),
        Spec("kernel", f"{top}.kernel_addr", 64, "kernel addr"),
    ]


#: Every probe the catalogue knows, in group order.
CATALOGUE = sorted(_catalogue(), key=lambda spec: GROUPS.index(spec.group))


def top_of(widths: dict[str, int]) -> str:
    """Which of :data:`TOPS` a trace whose vars are ``widths`` holds (the batch top's if
    none)."""
    return next((top for top in TOPS if f"{top}.clk" in widths), TOP)


def probes(widths: dict[str, int]) -> list[Probe]:
    """The catalogue's probes present in a trace whose vars are ``widths`` (full name ->
    bit width), in group order; a probe whose var is missing or has another width is left
    out (the caller may say so: :func:`missing`)."""
    out = []
    for spec in CATALOGUE:
        for path, label in _expand(spec, widths):
            width = widths.get(path)
            if width is not None and spec.width in (None, width):
                out.append(Probe(spec.group, path, width, label, spec.decoder))
    return out


def missing(widths: dict[str, int]) -> list[str]:
    """The catalogue's signals a trace lacks or holds with another width: ``path``, or
    ``path (N bits, not M)``."""
    out = []
    for spec in CATALOGUE:
        for path, _ in _expand(spec, widths):
            width = widths.get(path)
            if width is None:
                out.append(path)
            elif spec.width not in (None, width):
                out.append(f"{path} ({width} bits, not {spec.width})")
    return out


def _expand(spec, widths):
    """The full names (and labels) of ``spec`` in the trace: with its top, and each
    ``{i}`` the trace has (at least 0, for :func:`missing` to name)."""
    top = top_of(widths)
    where = dict(top=top, mmu=f"{top}.u.mmu")
    if "{i}" not in spec.path:
        return [(spec.path.format(**where), spec.label)]
    out, i = [], 0
    while spec.path.format(i=i, **where) in widths or i == 0:
        out.append((spec.path.format(i=i, **where), spec.label.format(i=i)))
        i += 1
    return out

"""The MMU with flat, readable ports: the standalone Verilog for other SoCs, and the
top that cocotb drives under Verilator (written by :mod:`.verilog`).
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .mmu import COUNTER_BITS, COUNTERS, MMU
from .pte import ASID_BITS, PADDR_BITS, PPN_BITS, TlbEntry

#: flat port -> (direction, width, path into the MMU's interfaces)
_PORTS = {
    "req_valid":       (In, 1, ("req", "valid")),
    "req_ready":       (Out, 1, ("req", "ready")),
    "req_vaddr":       (In, 64, ("req", "payload", "vaddr")),
    "req_kind":        (In, 2, ("req", "payload", "kind")),
    "resp_valid":      (Out, 1, ("resp", "valid")),
    "resp_ready":      (In, 1, ("resp", "ready")),
    "resp_fault":      (Out, 1, ("resp", "payload", "fault")),
    "resp_cause":      (Out, 4, ("resp", "payload", "cause")),
    "resp_paddr":      (Out, PADDR_BITS, ("resp", "payload", "paddr")),
    "resp_tval":       (Out, 64, ("resp", "payload", "tval")),
    "satp_mode":       (In, 4, ("csr", "satp", "mode")),
    "satp_asid":       (In, ASID_BITS, ("csr", "satp", "asid")),
    "satp_ppn":        (In, PPN_BITS, ("csr", "satp", "ppn")),
    "priv":            (In, 2, ("csr", "priv")),
    "sum":             (In, 1, ("csr", "sum")),
    "mxr":             (In, 1, ("csr", "mxr")),
    "adue":            (In, 1, ("csr", "adue")),
    "sfence_valid":    (In, 1, ("sfence", "valid")),
    "sfence_vaddr":    (In, 64, ("sfence", "payload", "vaddr")),
    "sfence_asid":     (In, ASID_BITS, ("sfence", "payload", "asid")),
    "sfence_by_vaddr": (In, 1, ("sfence", "payload", "by_vaddr")),
    "sfence_by_asid":  (In, 1, ("sfence", "payload", "by_asid")),
    "wb_adr":          (Out, PADDR_BITS - 3, ("bus", "adr")),
    "wb_dat_w":        (Out, 64, ("bus", "dat_w")),
    "wb_dat_r":        (In, 64, ("bus", "dat_r")),
    "wb_sel":          (Out, 8, ("bus", "sel")),
    "wb_cyc":          (Out, 1, ("bus", "cyc")),
    "wb_stb":          (Out, 1, ("bus", "stb")),
    "wb_we":           (Out, 1, ("bus", "we")),
    "wb_ack":          (In, 1, ("bus", "ack")),
    "wb_err":          (In, 1, ("bus", "err")),
    "wb_lock":         (Out, 1, ("bus", "lock")),
    "dbg_tlb_entries": (Out, None, ("debug", "tlb_entries")),
}
_PORTS.update({f"cnt_{name}": (Out, COUNTER_BITS, ("debug", name)) for name in COUNTERS})


class MMUTop(wiring.Component):
    """:class:`~.mmu.MMU` with every stream, struct and interface flattened to plain
    ports named ``req_*``, ``resp_*``, ``satp_*``, ``sfence_*``, ``wb_*``, ``dbg_*`` and
    ``cnt_*``. ``dbg_tlb_entries`` holds every :class:`~.pte.TlbEntry`, entry 0 in the
    low bits, each packed LSB first.

    Parameters are those of :class:`~.mmu.MMU`.
    """

    #: the MMU ports this top brings out flat
    PORTS = _PORTS

    def __init__(self, **params):
        self.mmu = MMU(**params)
        #: bits of ``dbg_tlb_entries``
        self.tlb_bits = self.mmu.tlb.entries * TlbEntry.as_shape().size
        super().__init__({**{name: direction(self.tlb_bits if width is None else width)
                             for name, (direction, width, _) in self.PORTS.items()},
                          **self._members()})

    def _members(self):
        """Ports of a subclass, beyond the MMU's (``self.mmu`` exists)."""
        return {}

    @staticmethod
    def _lookup(obj, path):
        for part in path:
            obj = getattr(obj, part)
        return obj

    def _inner(self, m):
        """What the flat ports' paths lead into: the MMU, unless a subclass puts
        something between."""
        return self.mmu

    def elaborate(self, platform):
        m = Module()
        m.submodules.mmu = self.mmu
        inner_root = self._inner(m)
        for name, (direction, _, path) in self.PORTS.items():
            port = getattr(self, name)
            inner = self._lookup(inner_root, path)
            if direction is In:
                m.d.comb += inner.eq(port)
            else:
                m.d.comb += port.eq(inner)
        return m

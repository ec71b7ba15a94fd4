"""The MMU with flat ports (:class:`MMUTop`): the standalone Verilog for other SoCs, and
the top that cocotb drives under Verilator (written by :mod:`.verilog`).

The flat names are defined once, in :data:`PORTS`, with what each leads to in the
:class:`~.mmu.MMU`; :func:`flat_members` and :func:`connect_flat` make and join them, for
this top and for :class:`~.batch.BatchTop`, which brings a part of them out too.
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from .mmu import COUNTERS, MMU

#: Flat port name -> the path of what it carries in :class:`~.mmu.MMU`'s interfaces: a
#: member, or a field of one. The port takes the direction and the shape found there:
#: the names are the Verilog interface, the widths follow the MMU's.
PORTS = {
    # req: translations asked.
    "req_valid":       ("req", "valid"),
    "req_ready":       ("req", "ready"),
    "req_vaddr":       ("req", "payload", "vaddr"),
    "req_kind":        ("req", "payload", "kind"),
    # resp: their answers, in request order.
    "resp_valid":      ("resp", "valid"),
    "resp_ready":      ("resp", "ready"),
    "resp_fault":      ("resp", "payload", "fault"),
    "resp_cause":      ("resp", "payload", "cause"),
    "resp_paddr":      ("resp", "payload", "paddr"),
    "resp_tval":       ("resp", "payload", "tval"),
    # csr: the translation state.
    "satp_mode":       ("csr", "satp", "mode"),
    "satp_asid":       ("csr", "satp", "asid"),
    "satp_ppn":        ("csr", "satp", "ppn"),
    "priv":            ("csr", "priv"),
    "sum":             ("csr", "sum"),
    "mxr":             ("csr", "mxr"),
    "adue":            ("csr", "adue"),
    # sfence: sfence.vma, no ready: applied the cycle it is valid.
    "sfence_valid":    ("sfence", "valid"),
    "sfence_vaddr":    ("sfence", "payload", "vaddr"),
    "sfence_asid":     ("sfence", "payload", "asid"),
    "sfence_by_vaddr": ("sfence", "payload", "by_vaddr"),
    "sfence_by_asid":  ("sfence", "payload", "by_asid"),
    # bus: the walker's Wishbone initiator, 64-bit words.
    "wb_adr":          ("bus", "adr"),
    "wb_dat_w":        ("bus", "dat_w"),
    "wb_dat_r":        ("bus", "dat_r"),
    "wb_sel":          ("bus", "sel"),
    "wb_cyc":          ("bus", "cyc"),
    "wb_stb":          ("bus", "stb"),
    "wb_we":           ("bus", "we"),
    "wb_ack":          ("bus", "ack"),
    "wb_err":          ("bus", "err"),
    "wb_lock":         ("bus", "lock"),
    # debug: every TLB entry (entry 0 in the low bits), and the counters.
    "dbg_tlb_entries": ("debug", "tlb_entries"),
    **{f"cnt_{name}": ("debug", name) for name in COUNTERS},
}


def _lookup(obj, path):
    for part in path:
        obj = getattr(obj, part)
    return obj


def flat_members(mmu, names=tuple(PORTS)):
    """Signature members for the flat ports ``names`` of :data:`PORTS`, each with the
    direction and shape of what it leads to in ``mmu``."""
    flows = {path: member.flow for path, member, _ in mmu.signature.flatten(mmu)}
    members = {}
    for name in names:
        path = PORTS[name]
        member_path = next(path[:i] for i in range(len(path), 0, -1) if path[:i] in flows)
        members[name] = flows[member_path](_lookup(mmu, path).shape())
    return members


def connect_flat(m, top, inner, names=tuple(PORTS)):
    """Join the flat ports ``names`` of ``top`` to what their paths lead to in ``inner``:
    the MMU, or whatever a top puts in its place under the same paths."""
    for name in names:
        port, target = getattr(top, name), _lookup(inner, PORTS[name])
        if top.signature.members[name].flow is In:
            m.d.comb += target.eq(port)
        else:
            m.d.comb += port.eq(target)


class MMUTop(wiring.Component):
    """:class:`~.mmu.MMU` with every stream, struct and interface flattened into the
    plain ports of :data:`PORTS`: what a Verilog design or a cocotb testbench can drive.

    Parameters are those of :class:`~.mmu.MMU`.
    """

    def __init__(self, **params):
        self.mmu = MMU(**params)
        super().__init__(flat_members(self.mmu))

    def elaborate(self, platform):
        m = Module()
        m.submodules.mmu = self.mmu
        connect_flat(m, self, self.mmu)
        return m

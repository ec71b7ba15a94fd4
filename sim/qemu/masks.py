"""Where QEMU 7.2 (Debian's qemu-system-misc) may answer otherwise than the golden model
and the RTL, and why: each known difference is a named mask, written here once, applied
by the comparisons (``mkclean compare``, ``mkclean verify --against qemu``) and shown in
their summaries with how often it applied. Nothing else is forgiven: a difference no mask
names is a mismatch. ../shared/design/REFERENCES.md has the checks behind each.
"""

from dataclasses import dataclass

from ..hw.seam import Cause


@dataclass(frozen=True)
class Mask:
    """A documented difference: ``name`` as the summaries show it, ``why`` the one line
    that explains it, ``applies`` where (a workload run, the translation campaign)."""
    name: str
    why: str
    applies: str


#: name -> Mask, the one list of QEMU's differences.
MASKS = {m.name: m for m in (
    Mask("no-svade",
         "QEMU 7.2 always sets A and D in hardware (no Svade mode, menvcfg.ADUE is not "
         "implemented): where golden and rtl take a page fault for a missing A or D bit "
         "(--ad svade), QEMU takes none. QEMU's traps must then be the reference's with "
         "such page faults left out, and the files the same",
         "workload runs with --ad svade; campaign accesses with adue=0"),
    Mask("no-tlb-snapshot",
         "QEMU's TLB is not architectural (its firmware reports no TLB snapshot): "
         "invariant 2, the TLB against the page tables after every kernel step, is not "
         "checked on it; the steps left unchecked are counted",
         "every workload run on qemu"),
    Mask("stale-translation",
         "the spec lets a hart use a translation cached before a PTE changed until the next "
         "sfence.vma, or walk again: golden and rtl keep what their TLB and walk cache "
         "hold, while QEMU (its TLB flushed after every PTE store of the campaign) walks "
         "afresh. After a PTE store not yet fenced by sfence.vma x0, x0, QEMU's answer "
         "must be a fresh walk's (the golden model's, from an empty TLB and walk cache)",
         "campaign translations after a PTE store without a full sfence.vma since"),
)}

#: Page faults that a missing A or D bit raises under Svade.
AD_FAULTS = frozenset({int(Cause.LOAD_PAGE), int(Cause.STORE_PAGE), int(Cause.FETCH_PAGE)})


def drop_ad_faults(reference: list, qemu: list) -> int | None:
    """The no-svade mask on two traces of (ASID, cause, address): the number of the
    reference's traps left out of QEMU's if QEMU's are the reference's with some A/D page
    faults left out, in order; None if they are not."""
    dropped = 0
    at = 0
    for trap in reference:
        if at < len(qemu) and list(qemu[at]) == list(trap):
            at += 1
        elif int(trap[1]) in AD_FAULTS:
            dropped += 1
        else:
            return None
    return dropped if at == len(qemu) else None

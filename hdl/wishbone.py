"""Wishbone B4 classic bus signature, with amaranth-soc's member names.

amaranth-soc is not on the package index (the name there is an empty placeholder), so the
signature is written here. Only what the MMU uses: no burst tags, no stall.
"""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class Signature(wiring.Signature):
    """Wishbone B4 classic, from the initiator's (master's) side.

    Parameters
    ----------
    addr_width : int
        Width of ``adr``, in units of ``data_width`` bits (word addresses).
    data_width : int
        Width of ``dat_w`` and ``dat_r``.
    granularity : int
        Bits selected by one bit of ``sel``.

    Members
    -------
    adr, dat_w, sel, cyc, stb, we : Out
        The usual B4 initiator outputs.
    lock : Out(1)
        Held from the first to the last transaction of an indivisible sequence; the
        target side must let nobody else reach the addressed memory meanwhile.
    dat_r, ack, err : In
        ``err`` ends a transaction in place of ``ack``: a bus error.
    """

    def __init__(self, *, addr_width, data_width=64, granularity=8):
        if data_width % granularity:
            raise ValueError(f"data_width {data_width} is not a multiple of "
                             f"granularity {granularity}")
        self.addr_width = addr_width
        self.data_width = data_width
        self.granularity = granularity
        super().__init__({
            "adr":   Out(addr_width),
            "dat_w": Out(data_width),
            "dat_r": In(data_width),
            "sel":   Out(data_width // granularity),
            "cyc":   Out(1),
            "stb":   Out(1),
            "we":    Out(1),
            "ack":   In(1),
            "err":   In(1),
            "lock":  Out(1),
        })

    def __eq__(self, other):
        return (isinstance(other, Signature) and
                (self.addr_width, self.data_width, self.granularity) ==
                (other.addr_width, other.data_width, other.granularity))

    def __repr__(self):
        return (f"wishbone.Signature(addr_width={self.addr_width}, "
                f"data_width={self.data_width}, granularity={self.granularity})")

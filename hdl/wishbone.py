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
    """

    def __init__(self, *, addr_width, data_width=64, granularity=8):
        if data_width % granularity:
            raise ValueError(f"data_width {data_width} is not a multiple of "
                             f"granularity {granularity}")
        self.addr_width = addr_width
        self.data_width = data_width
        self.granularity = granularity
        super().__init__({
            #: Word address: in units of ``data_width`` bits.
            "adr":   Out(addr_width),
            #: Data of a write.
            "dat_w": Out(data_width),
            #: Data of a read, with ``ack``.
            "dat_r": In(data_width),
            #: One bit per ``granularity`` bits of the data.
            "sel":   Out(data_width // granularity),
            #: A bus cycle is in progress.
            "cyc":   Out(1),
            #: A transaction is asked.
            "stb":   Out(1),
            #: It is a write.
            "we":    Out(1),
            #: It is done.
            "ack":   In(1),
            #: It failed, in place of ``ack``: a bus error.
            "err":   In(1),
            #: Held from the first to the last transaction of an indivisible sequence; the
            #: target side must let nobody else reach the addressed memory meanwhile.
            "lock":  Out(1),
        })

    def __eq__(self, other):
        return (isinstance(other, Signature) and
                (self.addr_width, self.data_width, self.granularity) ==
                (other.addr_width, other.data_width, other.granularity))

    def __repr__(self):
        return (f"wishbone.Signature(addr_width={self.addr_width}, "
                f"data_width={self.data_width}, granularity={self.granularity})")

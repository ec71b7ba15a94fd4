"""The bridge protocol's command and status codes, the tables of docs/bridge-protocol.md
("Status", "Commands") in one place: the gateware (:mod:`.bridge`) builds its Amaranth
enums from them, the host (``sim/board/protocol.py``) its ``IntEnum``s.

Plain Python and a leaf (an import-linter contract in pyproject.toml holds it to that), so
that the host side reads it without the gateware.
"""

#: A request's CMD, by name; the response's is the same with bit 7 set.
CMD_CODES = (
    ("VERSION", 0x01),
    ("RESET", 0x02),
    ("READ", 0x03),
    ("WRITE", 0x04),
    ("CAS", 0x05),
    ("CSR", 0x06),
    ("SFENCE", 0x07),
    ("ACCESS", 0x08),
    ("COUNTERS", 0x09),
    ("TLB", 0x0A),
)

#: The first byte of every response body, by name.
STATUS_CODES = (
    ("OK", 0),          # done; the results follow
    ("BAD_CMD", 1),     # no such command; nothing done
    ("BAD_ARG", 2),     # arguments of the wrong length or out of range; nothing done
)

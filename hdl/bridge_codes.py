"""The bridge protocol's numbers, the tables and constants of docs/bridge-protocol.md in
one place: the command and status codes ("Status", "Commands") and the frame's and
commands' constants ("Frames", "Commands"). The gateware (:mod:`.bridge`) builds its
Amaranth enums from the codes and reads the constants from here, the host
(``sim/board/protocol.py``) its ``IntEnum``s and the same constants.

Plain Python and a leaf (an import-linter contract in pyproject.toml holds it to that), so
that the host side reads it without the gateware.
"""

#: "Frames": the two bytes every frame begins with (``SYNC``), ``0xA5 0x5A``. Bytes, so
#: that the host finds and joins them as they are and the gateware takes ``SYNC[0]`` and
#: ``SYNC[1]`` as the byte values.
SYNC = b"\xa5\x5a"
#: "Frames": the most ``BODY`` bytes one frame carries (``LEN`` at most this); a frame
#: with a larger ``LEN`` is dropped, and a host splits what does not fit.
MAX_BODY = 8192
#: "Frames": a response's ``CMD`` is its request's with this bit (bit 7) set.
RESPONSE = 0x80

#: "Commands", VERSION: the protocol version its ``version`` reports.
PROTOCOL_VERSION = 1
#: "Commands", VERSION: ``features`` bit 0, the TLB snapshot (the TLB command).
FEATURE_TLB_SNAPSHOT = 1 << 0
#: "Commands", VERSION: ``features`` bit 1, the counters (the COUNTERS command).
FEATURE_COUNTERS = 1 << 1
#: "Commands", VERSION: every feature bit this protocol version defines.
FEATURES = FEATURE_TLB_SNAPSHOT | FEATURE_COUNTERS

#: "Commands", ACCESS: an item's ``size`` is 1 to this, and the item does not cross a page
#: of this size (4 KiB).
PAGE_SIZE = 4096

#: "Commands": a request's CMD, by name; the response's is the same with :data:`RESPONSE`
#: set.
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

#: "Status": the first byte of every response body, by name.
STATUS_CODES = (
    ("OK", 0),          # done; the results follow
    ("BAD_CMD", 1),     # no such command; nothing done
    ("BAD_ARG", 2),     # arguments of the wrong length or out of range; nothing done
)

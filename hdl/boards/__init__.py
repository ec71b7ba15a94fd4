"""Board tops: the MMU with its physical memory in block RAM, behind the UART command
bridge of docs/bridge-protocol.md (:mod:`.top`). Board wrappers (clock, pins) build on
:class:`~.top.BoardTop`."""

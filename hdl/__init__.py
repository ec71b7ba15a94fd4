"""The MMU's gateware (Amaranth), one block a module; hdl/README.md is the behaviour it
implements. The tops are :mod:`.top` (flat ports) and :mod:`.batch` (behind a queue);
:mod:`.verilog` writes either."""

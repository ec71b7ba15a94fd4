"""The board backend: the kernel model on a machine at the end of a byte stream that
speaks docs/bridge-protocol.md (an FPGA board's UART bridge, the board top under
Verilator, QEMU's UART later).

:mod:`.protocol` is the document's frames and commands, :mod:`.link` the host's end of the
stream (SEQ, retries), :mod:`.backend` the seam's ``Hardware`` over a link,
:mod:`.reference` a machine in pure Python over the golden model, and :mod:`.command` the
host-side half of ``mkclean run --backend board``. Nothing here knows any board.
"""

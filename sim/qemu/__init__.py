"""QEMU as a machine of this project: the firmware of firmware/ on QEMU's ``virt`` board.

- :mod:`.machine`: the tools (QEMU, the cross compiler), the firmware's build, QEMU's
  command lines and processes;
- :mod:`.backend`: the qemu backend of the seam, the board backend's host code on the
  firmware's bridge server;
- :mod:`.demo`: ``mkclean qemu --demo``, the mechanism in firmware, checked;
- :mod:`.masks`: where QEMU 7.2 is known to differ, each difference named once.

A backend: it stands on the seam and the board host, below the kernel model.
"""

"""mkclean realcheck: the host's Linux kernel as the kernel model's reference. A program of
memory syscalls and single-byte accesses runs on the host's real kernel (:mod:`.host`, the
C executor of executor.c) and on the kernel model, and the outcomes (results, fault counts,
the files' final contents) are compared.
"""

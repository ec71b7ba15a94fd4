"""Functional coverage models (cocotb-coverage): which behaviours a run exercised, as
bins, crosses of bins, and the holes left.

``cross``: the plumbing over cocotb-coverage that this model and the campaign's
(``mkclean.sim.cosim.coverage``) share; a leaf that imports nothing of the project.

``kernel``: the kernel model's fault paths and syscalls, per policy, A/D mode and kind of
mapping, sampled through the kernel's plain coverage hook (``Kernel.coverage``).

It stands above the kernel model, beside the workloads (neither imports the other): it
imports the kernel model and cocotb-coverage; the kernel imports neither it nor
cocotb-coverage.
"""

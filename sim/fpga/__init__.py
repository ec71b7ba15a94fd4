"""FPGA builds of the board top and of the MMU alone, from PyPI's YoWASP tools: bitstreams,
utilisation and the MMU clock's Fmax (:mod:`.build`, :mod:`.report`), and the ``mkclean
build`` command (:mod:`.command`).

A command-level tool over the gateware (hdl/): it imports the gateware and the input
checks, never the kernel model, the workloads, the seam or the co-simulation.
"""

"""Everything that runs on the host: the hardware seam (``hw``), its backends (``model``,
the golden MMU; ``cosim``, the RTL under Verilator), the kernel model (``kernel``), the
workloads (``workloads``), the kernel's functional coverage model (``coverage``, beside
the workloads) and the commands (``cli``, ``run``, ``bench``).

Imports point down that order, commands first, seam last; ``pyproject.toml``'s
import-linter contracts say so and ``make test`` checks them.
"""

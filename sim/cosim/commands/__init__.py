"""The simulator side of the commands that run on the RTL: cocotb test modules that
:func:`~mkclean.sim.cosim.jobs.run_job` starts in Verilator, each reading its job, doing
the command's work there and writing its result back.

- :mod:`.run`: ``mkclean run --backend rtl`` (host side: sim/run.py);
- :mod:`.verify`: ``mkclean verify`` (host side: sim/cosim/verify.py);
- :mod:`.bench_mmu`, :mod:`.bench_cosim`: ``mkclean bench``'s RTL figures (host side:
  sim/bench/).

They run only inside the simulator. Imports: cocotb, the rest of sim/cosim, the kernel
model and the workloads (``run``); nothing imports them but the simulator (by name) and
each other. Test-only cocotb modules live in tests/cosim_benches/.
"""

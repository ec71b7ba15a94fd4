"""Test-only cocotb modules: what tests/test_rtl_*.py run inside Verilator with
mkclean.sim.cosim.build.run or jobs.run_job, by their names (``cosim_benches.directed``).

The simulator's Python finds them because tests/ is on the host's sys.path
(tests/conftest.py), which cocotb_tools' runner passes on as PYTHONPATH. They import the
installed package (``mkclean``) by absolute names; nothing in it imports them.
"""

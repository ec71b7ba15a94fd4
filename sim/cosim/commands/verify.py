"""Simulator side of ``mkclean verify``: runs the campaign (:mod:`..campaign`) on the RTL
and golden pair, with its functional coverage (:mod:`..coverage`), and hands its result
back to the command (jobs.run_job): the coverage figures in it, cocotb-coverage's own
report written where the job says."""

import random
import time

import cocotb

from .. import campaign
from ..build import params_from_env
from ..coverage import CampaignCoverage
from ..jobs import JobProgress, job_config, write_result
from ..pair import Pair


@cocotb.test()
async def differential_campaign(dut):
    config = job_config()
    seed = config["seed"]
    params = params_from_env()
    coverage = CampaignCoverage(params["phys_size"])
    # Wait states come from their own generator so that the campaign's draws, and with
    # them the stimulus, do not depend on timing.
    pair = Pair(dut, params, latency=(0, 3), rng=random.Random(seed ^ 0x5EED),
                coverage=coverage)
    await pair.start()
    start = time.monotonic()
    result = await campaign.run(pair, seed, config["translations"], JobProgress(config),
                                fill=config.get("fill", True), against=config.get("against"),
                                masks_off=config.get("masks_off", ()))
    result["seed"] = seed
    result["phys_base"] = pair.phys_base
    result["cycles"] = pair.rtl.cycle
    result["seconds"] = round(time.monotonic() - start, 3)
    result["counters"] = pair.rtl.counters()
    result["coverage"] = coverage.result()
    if config.get("coverage_report"):
        coverage.export(config["coverage_report"])
    write_result(config, result)

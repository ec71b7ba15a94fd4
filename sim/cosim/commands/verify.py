"""Simulator side of ``mkclean verify``: runs the campaign (:mod:`..campaign`) on the RTL
and golden pair and hands its result back to the command (jobs.run_job)."""

import random
import time

import cocotb

from .. import campaign
from ..build import params_from_env
from ..jobs import JobProgress, job_config, write_result
from ..pair import Pair


@cocotb.test()
async def differential_campaign(dut):
    config = job_config()
    seed = config["seed"]
    # Wait states come from their own generator so that the campaign's draws, and with
    # them the stimulus, do not depend on timing.
    pair = Pair(dut, params_from_env(), latency=(0, 3), rng=random.Random(seed ^ 0x5EED))
    await pair.start()
    start = time.monotonic()
    result = await campaign.run(pair, seed, config["translations"], JobProgress(config))
    result["seed"] = seed
    result["cycles"] = pair.rtl.cycle
    result["seconds"] = round(time.monotonic() - start, 3)
    result["counters"] = pair.rtl.counters()
    write_result(config, result)

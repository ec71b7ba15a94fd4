"""cocotb entry of ``mkclean verify``: runs the campaign inside the simulator and hands
its result back to the command (runner.run_job)."""

import random
import time

import cocotb

from . import campaign
from .pair import Pair
from .runner import JobProgress, job_config, params_from_env, write_result


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

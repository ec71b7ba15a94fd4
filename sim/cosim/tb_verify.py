"""cocotb entry of ``mkclean verify``: runs the campaign inside the simulator and writes
its result as JSON where the command asked (MKCLEAN_VERIFY)."""

import json
import os
import random
import time

import cocotb

from . import campaign
from .pair import Pair
from .runner import params_from_env


@cocotb.test()
async def differential_campaign(dut):
    config = json.loads(os.environ["MKCLEAN_VERIFY"])
    seed = config["seed"]
    # Wait states come from their own generator so that the campaign's draws, and with
    # them the stimulus, do not depend on timing.
    pair = Pair(dut, params_from_env(), latency=(0, 3), rng=random.Random(seed ^ 0x5EED))
    await pair.start()
    progress_path = config.get("progress")
    last = [0.0]

    def progress(done):
        now = time.monotonic()
        if progress_path and now - last[0] > 0.2:
            last[0] = now
            with open(progress_path + ".tmp", "w") as f:
                f.write(str(done))
            os.replace(progress_path + ".tmp", progress_path)

    start = time.monotonic()
    result = await campaign.run(pair, seed, config["translations"], progress)
    result["seed"] = seed
    result["cycles"] = pair.rtl.cycle
    result["seconds"] = round(time.monotonic() - start, 3)
    result["counters"] = pair.rtl.counters()
    with open(config["out"], "w") as f:
        json.dump(result, f, indent=2)

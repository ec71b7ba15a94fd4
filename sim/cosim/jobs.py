"""Jobs: a command's work done inside the simulator.

The command (on the host) calls :func:`run_job` with the cocotb module that does the
work and the job's configuration, which goes to the simulator in MKCLEAN_JOB; inside,
the module reads it with :func:`job_config`, reports progress with :class:`JobProgress`
and hands its result back with :func:`write_result`. The command shows a progress bar
from the reports and gets the result back as a dict.

Both sides live here because they are one protocol. Imports: :mod:`.build` (to run the
simulation), the standard library; nothing of cocotb (the simulator-side functions only
read the environment and write files).
"""

import json
import os
import tempfile
import threading
import time
from pathlib import Path

from . import build
# What run_job raises, for its callers: SimulatorDied when the simulator process died,
# ToolError for any other failure to build or run.
from .build import SimulatorDied, ToolError

__all__ = ["run_job", "job_config", "JobProgress", "write_result", "SimulatorDied",
           "ToolError"]


def run_job(test_module, config, params=None, progress=None, env=None, waves=None):
    """Run ``test_module`` with ``config``; returns the dict it wrote with
    :func:`write_result`. ``progress(n)`` is called with the counts it reports; ``env``
    adds to the simulator's environment; ``waves`` (:class:`~.build.Waves`) traces the
    run.

    Raises :class:`SimulatorDied` (with ``done``, the last count reported) when the
    simulator process ends before the job does, :class:`ToolError` when the job did not
    finish for any other reason."""
    with tempfile.TemporaryDirectory(prefix="mkclean-job-") as tmp:
        out = Path(tmp) / "result.json"
        progress_path = Path(tmp) / "progress"
        job = {**config, "out": str(out), "progress": str(progress_path)}
        done = threading.Event()
        if progress:
            def poll():
                while not done.wait(0.25):
                    count = _reported(progress_path)
                    if count is not None:
                        progress(count)
            threading.Thread(target=poll, daemon=True).start()
        try:
            results = build.run(test_module, params, waves=waves,
                                env={**(env or {}), "MKCLEAN_JOB": json.dumps(job)})
        except SimulatorDied as e:
            e.done = _reported(progress_path)
            raise
        finally:
            done.set()
        if not out.exists():
            failed = [r for r in results if not r.passed]
            raise ToolError(f"{test_module} did not finish: "
                            + (failed[0].message if failed else "it wrote no result"))
        return json.loads(out.read_text())


def _reported(path):
    """The last count a job reported, or None."""
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


def job_config():
    """Inside the simulator: the job's configuration."""
    return json.loads(os.environ["MKCLEAN_JOB"])


class JobProgress:
    """Inside the simulator: report a count to the command, at most five times a second."""

    def __init__(self, config):
        self.path = config.get("progress")
        self.last = 0.0

    def __call__(self, count, force=False):
        now = time.monotonic()
        if self.path and (force or now - self.last > 0.2):
            self.last = now
            with open(self.path + ".tmp", "w") as f:
                f.write(str(count))
            os.replace(self.path + ".tmp", self.path)


def write_result(config, result):
    """Inside the simulator: the job's result, for :func:`run_job` to return."""
    with open(config["out"], "w") as f:
        json.dump(result, f, indent=2)

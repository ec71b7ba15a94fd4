"""The picture of a run: faults, pages written back and dirty pages against accesses."""

import matplotlib

matplotlib.use("Agg")            # files only: no display on CI machines
import matplotlib.pyplot as plt  # noqa: E402


def plot_run(result, path):
    """Write a PNG of ``result["timeline"]`` (a run's JSON) to ``path``."""
    timeline = result.get("timeline") or []
    x = [s["accesses"] for s in timeline]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    top.plot(x, [s["faults"] for s in timeline], label="page faults (cumulative)")
    top.plot(x, [s["writeback_pages"] for s in timeline], label="pages written back")
    top.plot(x, [s["sfences"] for s in timeline], label="sfence.vma", alpha=0.6)
    top.set_ylabel("events")
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    bottom.plot(x, [s["dirty_real"] for s in timeline], label="dirty pages (real)")
    bottom.plot(x, [s["dirty_known"] for s in timeline], "--",
                label="dirty pages the kernel knows of")
    bottom.set_ylabel("pages")
    bottom.set_xlabel("accesses")
    bottom.legend(loc="upper left")
    bottom.grid(alpha=0.3)
    fig.suptitle(f"{result.get('workload')} on {result.get('backend')}: policy "
                 f"{result.get('policy')}, {result.get('ad')}, seed {result.get('seed')}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

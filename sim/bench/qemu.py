"""``mkclean bench``'s QEMU figures: the bridge link to the firmware on QEMU (a request's
round trip, bytes a second each way) and the kernel model on QEMU's MMU beside the golden
backend, the same workload and seed in one run (these machines are shared and noisy)."""

import statistics
import time

from ..kernel import Kernel
from ..qemu.backend import make_qemu
from ..workloads import make_workload

#: The run measured on both backends: small, since QEMU's UART takes bytes slowly.
WORKLOAD, SEED, PHYS = "db", 1, 8 << 20


def _timed(f, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _link(hw, quick):
    base, n = hw.phys_base, 5 if quick else 20
    word = _timed(lambda: hw.read(base, 8), n)
    read = _timed(lambda: hw.read(base, 8000), n)
    write = _timed(lambda: hw.write(base, bytes(4096)), max(2, n // 4))
    return {"qemu_round_trip_ms": round(word * 1e3, 2),
            "qemu_read_bytes_per_s": round(8000 / read),
            "qemu_write_bytes_per_s": round(4096 / write)}


def _workload(backend_hw, accesses):
    k = Kernel(hw=backend_hw) if backend_hw is not None else Kernel(phys_size=PHYS)
    try:
        t = time.perf_counter()
        r = make_workload(WORKLOAD, k, SEED, accesses).run()
        return r, time.perf_counter() - t
    finally:
        k.close()


def qemu_bench(quick: bool) -> dict:
    accesses = 300 if quick else 2000
    hw = make_qemu(phys_size=PHYS)
    try:
        figures = _link(hw, quick)
        on_qemu, qemu_s = _workload(hw, accesses)
        requests = hw.link.sent
    finally:
        hw.close()
    on_golden, golden_s = _workload(None, accesses)
    figures.update({
        "qemu_workload": f"{WORKLOAD} seed {SEED}, {accesses} accesses, {PHYS >> 20} MiB",
        "qemu_accesses_per_s": round(accesses / qemu_s),
        "golden_accesses_per_s": round(accesses / golden_s),
        "qemu_requests": requests,
        "qemu_lost_writes": on_qemu["lost_writes"],
        "same_faults": on_qemu["faults"] == on_golden["faults"],
    })
    return figures


def format_qemu_bench(d) -> str:
    return "\n".join([
        "QEMU (the firmware's bridge server on QEMU's UART)",
        f"  round trip of a 1-word READ   {d['qemu_round_trip_ms']:>10} ms",
        f"  READ  (from QEMU)             {d['qemu_read_bytes_per_s']:>10,} bytes/s",
        f"  WRITE (to QEMU)               {d['qemu_write_bytes_per_s']:>10,} bytes/s",
        f"  {d['qemu_workload']}: qemu {d['qemu_accesses_per_s']:,} accesses/s "
        f"({d['qemu_requests']:,} requests), golden {d['golden_accesses_per_s']:,} "
        f"accesses/s; the same faults: {'yes' if d['same_faults'] else 'NO'}, lost writes "
        f"{d['qemu_lost_writes']}",
    ])

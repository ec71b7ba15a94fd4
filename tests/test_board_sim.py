"""The board top under Verilator, driven over its UART by the board backend (`mkclean run
--backend board-sim`): the host code of a board on a simulated one. It reaches the golden
backend's outcome (the same traps in the same order, the same files), also through a wire
that drops, cuts, corrupts and garbles bytes both ways; a board that falls silent is one
error naming the port."""

import hashlib
import os

import pytest

from mkclean.sim.board.link import LinkError
from mkclean.sim.cosim.board_sim import make_board_sim
from mkclean.sim.kernel import Kernel
from mkclean.sim.workloads import make_workload

PHYS = 1 << 20
#: Small runs: every kernel page copy crosses the simulated UART at 40 cycles a byte, so a
#: random run takes minutes; MKCLEAN_BOARD_SIM_LONG=1 adds it.
RUNS = [("clean_store", 1, 12, {"pages": 3})]
if os.environ.get("MKCLEAN_BOARD_SIM_LONG") == "1":
    RUNS.append(("random", 2, 150, {"file_pages": 4, "files": 2, "procs": 2, "max_procs": 2,
                                    "writeback_every": 40, "check_every": 50}))
#: Damage on the wire, by chunk (a socket send or receive: about a frame): every action
#: of the board reference's Faults, both ways.
DAMAGE = {"incoming": {2: "lose_byte", 5: "corrupt", 8: "garbage", 11: "cut", 14: "drop"},
          "outgoing": {3: "corrupt", 7: "cut", 10: "drop", 13: "lose_byte", 16: "garbage"}}


def outcome(workload, seed, accesses, options, hw=None):
    k = Kernel(backend="golden", phys_size=PHYS, trace=True, hw=hw)
    try:
        r = make_workload(workload, k, seed, accesses, **options).run()
        files = {f.name: hashlib.sha256(f.on_disk(0, f.size)).hexdigest()
                 for f in k.files.values()}
        return {"traps": k.trace, "files": files, "lost_writes": r["lost_writes"],
                "mismatches": r["mismatches"]}
    finally:
        k.close()
        if hw is not None:
            hw.close()


@pytest.mark.parametrize("workload,seed,accesses,options", RUNS, ids=[r[0] for r in RUNS])
def test_board_sim_reaches_the_golden_outcome(workload, seed, accesses, options):
    want = outcome(workload, seed, accesses, options)
    got = outcome(workload, seed, accesses, options, make_board_sim(phys_size=PHYS))
    assert got == want
    assert want["lost_writes"] == 0 and want["traps"]


def test_a_damaged_wire_changes_nothing_but_the_retries():
    """Chunks on the wire, either way, lose a byte, are cut, corrupted, dropped or come
    after garbage: the bridge and the host recover, nothing runs twice and no bad frame
    writes (the outcome is the golden one)."""
    workload, seed, accesses, options = RUNS[0]
    want = outcome(workload, seed, accesses, options)
    hw = make_board_sim(phys_size=PHYS, timeout=5.0, faults=DAMAGE)
    link = hw.link
    got = outcome(workload, seed, accesses, options, hw)
    assert got == want
    stats = link.stats()
    assert stats["retries"] >= 5 and stats["dropped_frames"] > 0, stats


def test_a_silent_board_is_one_error_naming_the_port():
    hw = make_board_sim(phys_size=PHYS, timeout=2.0, faults={"outgoing": {"6": "silent"}})
    url = hw.link.url
    k = Kernel(hw=hw, phys_size=PHYS)
    try:
        with pytest.raises(LinkError) as error:
            make_workload("clean_store", k, 1, 12, pages=3).run()
    finally:
        hw.close()              # first: the kernel's own closing must not wait on the link
        k.close()
    message = str(error.value)
    assert url in message and "\n" not in message

"""The kernel's actions as it tells the hardware (seam ``Hardware.kernel_event``): on the
golden backend, through a recording Hardware; on the rtl backend, in a trace, as pulses
on the testbench's debug port between the faulting store's batch and its retry, with the
MMU's cycles those of an untraced run."""

import bisect
import json

import pytest
import pywellen

from cosim_benches.kernel_events import FLOOD
from mkclean.sim.cosim import build
from mkclean.sim.cosim.batch_driver import KERNEL_EVENTS_AT_ONCE
from mkclean.sim.hw.seam import KernelEvent as E
from mkclean.sim.kernel import (MAP_FIXED, MAP_SHARED, MS_SYNC, PAGE_SIZE, PROT_READ,
                                PROT_WRITE, Kernel)
from mkclean.sim.model.backend import make_golden
from mkclean.sim.workloads import WORKLOADS

RW = PROT_READ | PROT_WRITE
TOP = "mkclean_batch_tb"
PERIOD_PS = 2 * build.CLOCK_HALF_PERIOD_NS * 1000


class Recording:
    """The golden backend, keeping every kernel event and counting the sfence.vma it
    is asked for."""

    def __init__(self):
        self.hw = make_golden(phys_size=4 << 20)
        self.events = []
        self.sfences = 0

    def __getattr__(self, name):
        return getattr(self.hw, name)

    def kernel_event(self, event, addr=0):
        self.events.append((E(event), addr))

    def sfence_vma(self, vaddr=None, asid=None):
        self.sfences += 1
        self.hw.sfence_vma(vaddr, asid)


@pytest.fixture
def recorded():
    hw = Recording()
    k = Kernel(hw=hw)
    yield k, hw
    k.close()


def test_store_to_a_clean_shared_page_then_msync(recorded):
    """The story: the store's trap, do_wp_page and set_page_dirty (and the flush of the
    upgraded PTE); msync's page_mkclean, its flush and the page's writeback."""
    k, hw = recorded
    f = k.create_file("f", PAGE_SIZE)
    p = k.spawn()
    va = p.mmap(PAGE_SIZE, RW, MAP_SHARED, file=f)
    p.load(va, 8)                               # mapped read-only and clean
    paddr = k.page(f, 0).paddr
    hw.events.clear()
    p.store(va + 8, b"dirty")
    assert hw.events == [(E.TRAP, va + 8), (E.DO_WP_PAGE, va + 8),
                         (E.SET_PAGE_DIRTY, paddr), (E.SFENCE_VMA, va)]
    hw.events.clear()
    p.msync(va, PAGE_SIZE, MS_SYNC)
    assert hw.events == [(E.SYS_MSYNC, va), (E.PAGE_MKCLEAN, paddr), (E.SFENCE_VMA, va),
                         (E.WRITEBACK, paddr)]


def test_a_fault_on_a_missing_pte_is_do_fault(recorded):
    k, hw = recorded
    f = k.create_file("f", PAGE_SIZE)
    p = k.spawn()
    va = p.mmap(PAGE_SIZE, RW, MAP_SHARED, file=f)
    hw.events.clear()
    p.store(va + 16, b"x")
    assert hw.events[:2] == [(E.TRAP, va + 16), (E.DO_FAULT, va + 16)]
    assert (E.SET_PAGE_DIRTY, k.page(f, 0).paddr) in hw.events


def test_each_syscall_says_what_it_was_given(recorded):
    k, hw = recorded
    f = k.create_file("f", 4 * PAGE_SIZE)
    p = k.spawn()
    at = 0x4000_0000
    calls = [
        (lambda: p.mmap(2 * PAGE_SIZE, RW, MAP_SHARED | MAP_FIXED, file=f, addr=at),
         E.SYS_MMAP, at),
        (lambda: p.mprotect(at, PAGE_SIZE, PROT_READ), E.SYS_MPROTECT, at),
        (lambda: p.msync(at, PAGE_SIZE, MS_SYNC), E.SYS_MSYNC, at),
        (lambda: p.mlock(at + PAGE_SIZE, PAGE_SIZE), E.SYS_MLOCK, at + PAGE_SIZE),
        (lambda: p.munlock(at + PAGE_SIZE, PAGE_SIZE), E.SYS_MUNLOCK, at + PAGE_SIZE),
        (lambda: p.write(f, 100, b"abc"), E.SYS_WRITE, 100),
        (lambda: p.read(f, 200, 3), E.SYS_READ, 200),
        (lambda: p.ftruncate(f, 3 * PAGE_SIZE), E.SYS_FTRUNCATE, 3 * PAGE_SIZE),
        (lambda: p.munmap(at, PAGE_SIZE), E.SYS_MUNMAP, at),
        (lambda: p.fork().exit(), E.SYS_FORK, 0),
        (lambda: p.exit(), E.SYS_EXIT, 0),
    ]
    for call, event, addr in calls:
        hw.events.clear()
        call()
        assert hw.events[0] == (event, addr), (event, hw.events[:3])


def test_every_sfence_is_an_event():
    """tlbflush.sfence_vma is the one place the kernel's flushes go through: a workload's
    every sfence.vma shows as an SFENCE_VMA event."""
    hw = Recording()
    with Kernel(hw=hw) as k:
        WORKLOADS["random"](k, 1, 3000).run()
    flushes = [e for e in hw.events if e[0] == E.SFENCE_VMA]
    assert hw.sfences > 50
    assert len(flushes) == hw.sfences


# -- on the RTL, in a trace ----------------------------------------------------------------------

def changes(waveform, names):
    """The value changes of traced signals of the top: name -> [(time in ps, value)].
    (pywellen streams a signal's changes once: read them all here.)"""
    found = {v.full_name: v for v in waveform.all_vars()}
    out = {}
    for name in names:
        steps = out[name] = []
        waveform.stream_changes(lambda t, signal, value: steps.append((t, value)),
                                [found[f"{TOP}.{name}"]])
    return out


def value_at(steps, t):
    """The value of a signal given by :func:`changes` at time ``t``."""
    return steps[bisect.bisect_right([s[0] for s in steps], t) - 1][1]


def pulses(event, addr):
    """Every kernel event in a trace, from the changes of ``kernel_event`` and
    ``kernel_addr``: (time, event, addr), each held one picosecond."""
    times = sorted({t for t, _ in event} | {t for t, _ in addr})
    out = []
    for t, end in zip(times, times[1:] + [times[-1]]):
        e = value_at(event, t)
        if e:
            out += [(t + i, E(e), value_at(addr, t)) for i in range(end - t)]
    return out


def burst(found, first):
    """The events shown in one hand-over: from ``first`` on, one a picosecond."""
    at = found.index(first)
    out = [found[at]]
    while at + 1 < len(found) and found[at + 1][0] == out[-1][0] + 1:
        at += 1
        out.append(found[at])
    return out


def run_story(tmp_path, monkeypatch, traced):
    name = "traced" if traced else "untraced"
    out = tmp_path / f"{name}.json"
    if not traced:
        monkeypatch.setenv("WAVES", "0")      # untraced even under WAVES=1
    # What `mkclean run --backend rtl` builds: one traced simulator for the suite.
    results = build.run("cosim_benches.kernel_events",
                        {"phys_size": 64 << 20, "batch_depth": build.RTL_BATCH_DEPTH},
                        env={"MKCLEAN_KERNEL_EVENTS_OUT": str(out)},
                        waves=build.Waves(tmp_path / "waves", around=None) if traced
                        else None)
    assert [(r.name, r.passed) for r in results] == [("kernel_story", True),
                                                     ("kernel_event_flood", True)], results
    return json.loads(out.read_text())


def test_rtl_trace_tells_the_story(tmp_path, monkeypatch):
    traced = run_story(tmp_path, monkeypatch, True)
    untraced = run_story(tmp_path, monkeypatch, False)
    # The debug port's writes fit between a falling and a rising edge: the MMU's
    # cycles, batches and walks are those of an untraced run.
    assert traced["counters"] == untraced["counters"]
    assert traced["counters"]["cycles"] > 0
    w = pywellen.Waveform(str(tmp_path / "waves" / "trace.fst"))
    assert str(w.timescale) == "1ps", w.timescale       # times below are in ps
    signals = changes(w, ["kernel_event", "kernel_addr", "batch_token", "cnt_page_faults"])
    event, faults = signals["kernel_event"], signals["cnt_page_faults"]
    found = pulses(event, signals["kernel_addr"])
    va, store, paddr = traced["va"], traced["store"], traced["paddr"]
    trap = next(p for p in found if p[1:] == (E.TRAP, store))
    t = trap[0]
    story = burst(found, trap)
    assert [p[1:] for p in story] == [(E.TRAP, store), (E.DO_WP_PAGE, store),
                                      (E.SET_PAGE_DIRTY, paddr), (E.SFENCE_VMA, va)]
    assert [p[0] for p in story] == list(range(t, t + 4))      # each held 1 ps
    assert value_at(event, t + 4) == E.NONE                     # NONE after the last
    # Every hand-over's events start at a falling edge and end before the rising edge.
    for p in found:
        assert p[0] % PERIOD_PS < PERIOD_PS // 2, p
        assert value_at(event, p[0] - p[0] % PERIOD_PS + PERIOD_PS // 2) == E.NONE, p
    # Between the store's batch, which faulted, and its retry, started right after.
    token = [c for c in signals["batch_token"] if c[0] > 0]
    starts = [c[0] for c, before in zip(token, [(0, 0)] + token) if c[1] != before[1]]
    before = [s for s in starts if s < t]
    after = [s for s in starts if s > t]
    assert len(before) == traced["store_batch"], (starts, t)
    assert after[0] == t + len(story)
    assert value_at(faults, t) == value_at(faults, before[-1]) + 1
    # msync, in the next hand-over after the retry: no fault in between.
    sync = burst(found, next(p for p in found if p[1] == E.SYS_MSYNC))
    assert [p[1:] for p in sync] == [(E.SYS_MSYNC, va), (E.PAGE_MKCLEAN, paddr),
                                     (E.SFENCE_VMA, va), (E.WRITEBACK, paddr)]
    assert value_at(faults, sync[0][0]) == value_at(faults, t)
    assert after[0] < sync[0][0]
    # The flood: as many as fit, then MORE with the count of the rest, then NONE, all
    # before the rising edge.
    flood = burst(found, next(p for p in found if p[1:] == (E.WRITEBACK, 0)))
    shown = KERNEL_EVENTS_AT_ONCE
    assert [p[1:] for p in flood[:shown]] == [(E.WRITEBACK, i << 12) for i in range(shown)]
    assert [p[1:] for p in flood[shown:]] == [(E.MORE, FLOOD - shown)]
    assert flood[-1][0] % PERIOD_PS < PERIOD_PS // 2

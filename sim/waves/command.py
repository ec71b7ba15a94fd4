"""``mkclean waves``: a window of a trace drawn as a PNG, its signals decoded.

The trace is read by :mod:`.trace`, its signals picked and decoded by :mod:`.catalogue`,
the picture drawn by :mod:`.draw`. ``--json`` prints what was drawn (the window, each
signal's decoded values at each change, the kernel's events) for a script. Exit status:
0, 2 for bad input (a missing, truncated or foreign trace, an unknown group, a window
outside the trace), with one line naming the problem.
"""

import json
import sys
from pathlib import Path

from ..argcheck import BadInput, integer

USAGE_ERROR = 2
#: Cycles drawn each side of ``--at`` unless ``--window`` says.
DEFAULT_WINDOW = 20
#: The groups drawn unless ``--signals`` says: a screenful that tells a translation's
#: story (the TLB's entries and the counters are many rows, and asked for by name).
DEFAULT_GROUPS = ("request", "response", "walker", "bus", "batch", "kernel")
#: The kernel's debug port (sim/cosim/build.py): drawn as one row of events, each named
#: with its address.
EVENT_VAR, ADDR_VAR = "kernel_event", "kernel_addr"


def add_arguments(parser):
    parser.add_argument("file", nargs="?", metavar="FILE", help="the trace (FST or VCD)")
    parser.add_argument("--at", metavar="CYCLE|EVENT",
                        help="the cycle to centre the window on, or a kernel event's name "
                             "(DO_WP_PAGE: its first occurrence) (default: the first kernel "
                             "event, else the first fault, else the trace's middle)")
    parser.add_argument("--window", default=str(DEFAULT_WINDOW), metavar="N",
                        help=f"cycles drawn each side of --at (default: {DEFAULT_WINDOW})")
    parser.add_argument("--signals", metavar="GROUP,...",
                        help=f"the groups of signals to draw (default: "
                             f"{','.join(DEFAULT_GROUPS)})")
    parser.add_argument("-o", "--output", metavar="OUT.png", help="the PNG to write (required)")
    parser.add_argument("--json", action="store_true",
                        help="print what was drawn as JSON: the window, each signal's "
                             "decoded value at each change, the kernel's events")
    parser.epilog = ("groups: " + ", ".join(_groups()) + "\n\nexample:\n"
                     "  mkclean waves build/waves/run/trace.fst --at 1200 -o fault.png\n\n"
                     "Exit status: 0, 2 for bad input (a missing, truncated or foreign "
                     "trace,\nan unknown group, a window outside the trace).")


def _groups():
    from .catalogue import GROUPS
    return GROUPS


def main(args):
    from .trace import TraceError
    try:
        picture = _parse_and_read(args)
    except (BadInput, TraceError) as e:
        print(f"mkclean waves: {e}", file=sys.stderr)
        return USAGE_ERROR
    from .draw import draw
    try:
        draw(picture["rows"], picture["first_cycle"], picture["last_cycle"], args.output,
             picture["title"], mark=picture["at"])
    except OSError as e:
        print(f"mkclean waves: -o {args.output!r} cannot be written: {e.strerror}",
              file=sys.stderr)
        return USAGE_ERROR
    if args.json:
        json.dump(picture["json"], sys.stdout, indent=1)
        print()
    return 0


def _parse_and_read(args):
    """Check every argument, read the trace; the rows to draw and the JSON of them."""
    from ..hw.seam import KernelEvent
    from .catalogue import GROUPS, probes
    from .trace import Trace
    if args.file is None:
        raise BadInput("no trace given: mkclean waves FILE -o OUT.png")
    if args.output is None:
        raise BadInput("-o OUT.png is required: where the picture goes")
    if Path(args.output).is_dir():
        raise BadInput(f"-o {args.output!r} is a folder, not a file")
    if not Path(args.output).parent.is_dir():
        raise BadInput(f"-o {args.output!r}: no folder {str(Path(args.output).parent)!r}")
    window = integer(args.window, "--window", minimum=0)
    if args.signals is None:
        groups, asked = DEFAULT_GROUPS, False
    else:
        groups = tuple(dict.fromkeys(g.strip() for g in args.signals.split(",") if g.strip()))
        unknown = [g for g in groups if g not in GROUPS]
        if unknown or not groups:
            raise BadInput(f"--signals: unknown group {(unknown or [args.signals])[0]!r}: "
                           f"choose from {', '.join(GROUPS)}")
        asked = True
    at_event = None
    if args.at is not None and args.at.upper() in KernelEvent.__members__:
        at_event, at = KernelEvent[args.at.upper()], None
    elif args.at is not None and not args.at.lstrip("-").replace("_", "").isdigit():
        raise BadInput(f"--at {args.at!r} is neither a cycle nor a kernel event (one of "
                       f"{', '.join(KernelEvent.__members__)})")
    else:
        at = None if args.at is None else integer(args.at, "--at")

    trace = Trace(args.file)
    first, last = trace.cycles
    if at_event is not None:
        at = _first_event(trace, at_event)
        if at is None:
            raise BadInput(f"--at {at_event.name}: {args.file} holds no such kernel event")
    if at is not None and not first <= at <= last:
        raise BadInput(f"--at {at} is outside the trace, which holds cycles {first} to {last}")
    present = probes(trace.widths)
    chosen = [p for p in present if p.group in groups]
    absent = [g for g in groups if not any(p.group == g for p in present)]
    if asked and absent:
        raise BadInput(f"{args.file} has no signals of group {absent[0]!r} (it has "
                       f"{', '.join(dict.fromkeys(p.group for p in present)) or 'none'})")
    if not chosen:
        raise BadInput(f"{args.file} has none of the signals mkclean knows "
                       f"(sim/waves/catalogue.py): is it a trace of the batch top?")
    if at is None:
        at = _default_at(trace, present)
    lo, hi = max(first, at - window), min(last, at + window)
    changes = trace.changes([p.path for p in chosen], lo, hi)
    rows, signals, events = _rows(trace, chosen, changes)
    title = f"{args.file}: cycles {lo} to {hi}, around cycle {at}"
    return {"rows": rows, "first_cycle": lo, "last_cycle": hi, "at": at, "title": title,
            "json": {"file": str(args.file), "trace_cycles": [first, last],
                     "first_cycle": lo, "last_cycle": hi, "at": at,
                     "period_ps": trace.period, "signals": signals, "events": events}}


def _rows(trace, chosen, changes):
    """The rows to draw, the signals' JSON and the kernel's events (the event var and
    its address var make one row of events)."""
    from .draw import Row
    offset = trace.time_of(0)

    def x_of(time):
        return (time - offset) / trace.period

    rows, signals = [], []
    event_probe = next((p for p in chosen if p.path.endswith("." + EVENT_VAR)), None)
    addr_probe = next((p for p in chosen if p.path.endswith("." + ADDR_VAR)), None)
    for probe in chosen:
        decoded = [(t, v, probe.decode(v)) for t, v in changes[probe.path]]
        signals.append({"group": probe.group, "label": probe.label, "path": probe.path,
                        "width": probe.width,
                        "changes": [{"cycle": trace.cycle_of(t), "time_ps": t, "value": v,
                                     "text": text} for t, v, text in decoded]})
        if probe in (event_probe, addr_probe):
            continue
        rows.append(Row(probe.group, probe.label, "bit" if probe.width == 1 else "bus",
                        [(x_of(t), v, text) for t, v, text in decoded]))
    events = []
    if event_probe is not None:
        events = _events(trace, changes, event_probe, addr_probe)
        at = next((i for i, r in enumerate(rows) if r.group == event_probe.group), len(rows))
        rows.insert(at, Row(event_probe.group, "kernel events", "events",
                            [(x_of(e["time_ps"]), e["value"], e["text"]) for e in events]))
    return rows, signals, events


def _events(trace, changes, event_probe, addr_probe):
    """Each instant the event var is not NONE (0): the kernel did something there. An
    event shows at a change of the event or of the address: the same event twice in a
    row, at two addresses, changes only the address."""
    kinds = changes[event_probe.path]
    addrs = changes[addr_probe.path] if addr_probe is not None else [(kinds[0][0], None)]
    times = sorted({t for t, _ in kinds} | {t for t, _ in addrs})
    out, k, a = [], 0, 0
    for t in times:
        while k + 1 < len(kinds) and kinds[k + 1][0] <= t:
            k += 1
        while a + 1 < len(addrs) and addrs[a + 1][0] <= t:
            a += 1
        kind, addr = kinds[k][1], addrs[a][1]
        if not kind:
            continue
        name = event_probe.decode(kind)
        text = name if addr is None else f"{name} {addr_probe.decode(addr)}"
        out.append({"cycle": trace.cycle_of(t), "time_ps": t, "value": kind, "event": name,
                    "addr": addr, "text": text})
    return out


def _first_event(trace, event):
    """The cycle of the first ``event`` on the kernel's debug port, or None."""
    first, last = trace.cycles
    path = next((p for p in trace.widths if p.endswith("." + EVENT_VAR)), None)
    if path is None:
        return None
    return next((trace.cycle_of(t) for t, v in trace.changes([path], first, last)[path]
                 if v == event), None)


def _default_at(trace, present):
    """The first kernel event, else the first fault the MMU answers, else the middle."""
    first, last = trace.cycles
    by_path = {p.path: p for p in present}
    event = next((p for p in by_path if p.endswith("." + EVENT_VAR)), None)
    fault = next((p for p in by_path if p.endswith(".resp__payload.fault")), None)
    valid = next((p for p in by_path if p.endswith(".resp__valid")), None)
    if event is not None:
        for t, v in trace.changes([event], first, last)[event]:
            if v:
                return trace.cycle_of(t)
    if fault is not None and valid is not None:
        seen = trace.changes([fault, valid], first, last)
        both = _first_time_both(seen[fault], seen[valid])
        if both is not None:
            return trace.cycle_of(both)
    return (first + last) // 2


def _first_time_both(a, b):
    """The first time both of two 1-bit signals' changes ((time, value), time order)
    are 1, or None."""
    merged = sorted([(t, 0, v) for t, v in a] + [(t, 1, v) for t, v in b])
    now = [None, None]
    for i, (t, which, v) in enumerate(merged):
        now[which] = v
        # All changes at one time before judging it.
        if (i + 1 == len(merged) or merged[i + 1][0] != t) and now[0] and now[1]:
            return t
    return None

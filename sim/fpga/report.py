"""What a build reports: nextpnr's ``--report`` JSON read for utilisation and the MMU
clock's Fmax (:func:`read_nextpnr`), the bitstream checked for its device
(:func:`bitstream_idcode`), and the readable report (:func:`format_report`)."""

import json
from pathlib import Path

#: nextpnr-ecp5's cell types for what the report counts: a LUT4 (with the carry chains'
#: halves: TRELLIS_COMB is a LUT4 site of a slice), a flip-flop, a 18 Kbit block RAM.
CELLS = {"lut4": "TRELLIS_COMB", "ff": "TRELLIS_FF", "bram": "DP16KD"}

#: The ECP5 JTAG IDCODE an 85F bitstream names in its VERIFY_ID command (0xE2), by
#: device: ecppack writes it, and the FPGA refuses a bitstream for another part.
IDCODES = {"LFE5U-85F": 0x41113043, "LFE5UM-85F": 0x01113043, "LFE5UM5G-85F": 0x81113043}
VERIFY_ID = 0xE2


def read_nextpnr(path, clock=None):
    """Utilisation and Fmax from a nextpnr ``--report`` file.

    Parameters
    ----------
    path : Path
        The report.
    clock : str or None
        A part of the MMU clock's net name; ``None`` takes the report's one clock (or the
        slowest, when there are several).

    Returns
    -------
    dict
        ``lut4``, ``ff``, ``bram`` (used), ``*_available``, ``fmax_mhz`` (achieved,
        rounded to 0.01), ``clock`` (its net), ``constraint_mhz`` and ``timing_met``,
        and ``critical_path`` (the slowest clock's: from, to, logic levels, ns).
    """
    report = json.loads(Path(path).read_text())
    util = report.get("utilization", {})
    figures = {}
    for key, cell in CELLS.items():
        entry = util.get(cell, {"used": 0, "available": 0})
        figures[key] = entry["used"]
        figures[key + "_available"] = entry["available"]
    clocks = report.get("fmax", {})
    if not clocks:
        raise ValueError(f"{path}: nextpnr reported no clock")
    chosen = [name for name in clocks if clock and clock in name] or list(clocks)
    name = min(chosen, key=lambda n: clocks[n]["achieved"])
    fmax = clocks[name]
    figures.update(clock=name, fmax_mhz=round(fmax["achieved"], 2),
                   constraint_mhz=round(fmax["constraint"], 2),
                   timing_met=fmax["achieved"] >= fmax["constraint"])
    figures["critical_path"] = _critical_path(report, name)
    return figures


def _critical_path(report, clock):
    """The critical path of ``clock``: where it starts and ends, its logic levels and
    its delay in ns (or ``None`` when the report has none)."""
    # "from"/"to" name the clock edges: "posedge $glbnet$cd_sync.clk".
    paths = [p for p in report.get("critical_paths", [])
             if clock in p.get("from", "") or clock in p.get("to", "")]
    if not paths:
        return None
    steps = paths[0].get("path", [])
    # A carry chain's hops inside a slice take no time: not a level of logic.
    cells = [s for s in steps if s.get("type") == "logic" and s.get("delay", 0) > 0]

    def end(step, side):
        return step.get(side, {}).get("cell", "?") if step else "?"
    return {"from": end(steps[0] if steps else None, "from"),
            "to": end(steps[-1] if steps else None, "to"),
            "logic_levels": len(cells),
            "ns": round(sum(s.get("delay", 0) for s in steps), 3)}


def bitstream_idcode(path):
    """The IDCODE a bitstream's VERIFY_ID command names, or ``None`` when it names none.

    An ECP5 bitstream is a preamble (``FF FF BD B3``) and commands of one byte and three
    bytes of flags; VERIFY_ID is followed by the 32-bit IDCODE, big-endian. It comes
    within the first commands, so the first few hundred bytes hold it."""
    data = Path(path).read_bytes()[:4096]
    start = data.find(b"\xff\xff\xbd\xb3")
    if start < 0:
        return None
    at = data.find(bytes([VERIFY_ID, 0, 0, 0]), start)
    if at < 0:
        return None
    return int.from_bytes(data[at + 4:at + 8], "big")


def _mhz(value):
    return f"{value:.1f} MHz"


def format_report(r):
    """The readable report of a board build (and its sweep, when there is one)."""
    timing = ("met" if r["timing_met"] else
              f"NOT met: the bitstream is not safe at {r['clk_mhz']:g} MHz")
    lines = [
        f"{r['board']}: {r['title']}",
        f"  bitstream        {r['bitstream']} ({r['bitstream_bytes']:,} bytes, "
        f"IDCODE 0x{r['idcode']:08x})",
        f"  MMU              {r['tlb_entries']}-entry TLB, {r['walk_cache_entries']}-entry "
        f"walk cache, {r['phys_size'] // 1024} KiB of block RAM as memory",
        f"  clock            {r['clk_mhz']:g} MHz ({r['clock_source']})",
        f"  Fmax             {_mhz(r['fmax_mhz'])} on {r['clock']}: timing {timing}",
        f"  LUT4             {r['lut4']:>7,} of {r['lut4_available']:,} "
        f"({100 * r['lut4'] / r['lut4_available']:.1f}%)",
        f"  FF               {r['ff']:>7,} of {r['ff_available']:,} "
        f"({100 * r['ff'] / r['ff_available']:.1f}%)",
        f"  block RAM        {r['bram']:>7,} of {r['bram_available']:,} DP16KD",
        f"  build            {r['seconds']:.0f} s"
        + (" (cached: nothing changed since)" if r.get("cached") else ""),
    ]
    path = r.get("critical_path")
    if path:
        lines.append(f"  critical path    {path['from']} -> {path['to']}: "
                     f"{path['logic_levels']} logic levels, {path['ns']} ns")
    return "\n".join(lines)


def format_sweep(sweep, target_mhz):
    """The out-of-context sweep: the MMU alone at each TLB size, side by side."""
    head = "".join(f"{str(s['tlb_entries']) + ' entries':>14}" for s in sweep)

    def row(name, fmt):
        return f"  {name:<26}" + "".join(f"{fmt(s):>14}" for s in sweep)
    return "\n".join([
        f"The MMU alone (out of context, LFE5U-85F, nextpnr --freq {target_mhz:g}; "
        f"target {target_mhz:g} MHz at 16 entries)",
        f"  {'TLB':<26}{head}",
        row("LUT4", lambda s: f"{s['lut4']:,}"),
        row("FF", lambda s: f"{s['ff']:,}"),
        row("block RAM", lambda s: f"{s['bram']}"),
        row("Fmax" + (f" (mean of {sweep[0]['seeds']} seeds)"
                      if sweep[0].get("seeds", 1) > 1 else ""), lambda s: _mhz(s["fmax_mhz"])),
        *([row("Fmax, slowest to fastest",
               lambda s: f"{s['fmax_min_mhz']:.0f}-{s['fmax_max_mhz']:.0f} MHz")]
          if sweep[0].get("seeds", 1) > 1 else []),
        row("meets target", lambda s: "yes" if s["fmax_mhz"] >= target_mhz else "no"),
        *([row("seeds without rip-up", lambda s: ", ".join(
            str(n) for n in s.get("seeds_without_ripup") or []) or "-")]
          if any(s.get("seeds_without_ripup") for s in sweep) else []),
        row("logic levels", lambda s: str((s.get("critical_path") or {}).get("logic_levels", "?"))),
        row("build seconds", lambda s: f"{s['seconds']:.0f}"
            + (" (cached)" if s.get("cached") else "")),
    ])

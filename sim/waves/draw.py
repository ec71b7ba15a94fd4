"""A window of a trace as a picture (matplotlib's Agg canvas, no pyplot: no display, no
global state), for a bug report or a README.

One row a signal under a header row a group: a 1-bit signal as a digital line, a wider
one as a bus of stretches with its decoded value written in each (cut short with ``…``
when the stretch is too narrow, left out when even that does not fit), the kernel's
events as labelled markers at their sub-cycle times. The x axis counts cycles (cycle
``c`` from ``c`` to ``c + 1``: from a falling edge of the clock to the next).

Drawing costs a few artists a row, not one a cycle: a row's stretches, or its digital
line, are one polyline, and the only per-stretch artists are the value labels that fit,
of which a row holds at most its width in pixels over a label's.
"""

from dataclasses import dataclass, field

#: Figure width and the room on the left for the row labels, in inches; dots per inch.
WIDTH_IN, LABELS_IN, RIGHT_IN, DPI = 16.0, 2.0, 0.3, 100
#: Inches a row, and for the title and the axis below the rows.
ROW_IN, FRAME_IN = 0.3, 1.0
#: Value labels: font size (points) and the width of a character of the monospace font
#: in ems (DejaVu Sans Mono's), which is what lets a label be fitted without measuring.
FONT_PT, CHAR_EM = 7, 0.602
#: Half the height of a row's drawing, in rows; a bus's slanted edge, in pixels.
HALF, SLANT_PX = 0.32, 3
#: Windows up to this many cycles get a grid line at every cycle.
GRID_CYCLES = 200


@dataclass
class Row:
    """One row of the picture.

    Attributes
    ----------
    group, label : str
        The group the row is drawn under and the row's name.
    kind : str
        ``"bit"`` (a digital line), ``"bus"`` (stretches holding their decoded value) or
        ``"events"`` (a marker and its label at each event).
    changes : list[tuple[float, int | None, str]]
        (x in cycles, value, decoded text) in x order, from the window's start; for
        ``"events"``, one an event (the value is not drawn).
    """
    group: str
    label: str
    kind: str
    changes: list = field(default_factory=list)


def draw(rows, first_cycle, last_cycle, out, title, mark=None):
    """Draw ``rows`` over the cycles ``first_cycle`` to ``last_cycle`` into the PNG ``out``.

    ``mark`` (a cycle) is shaded: the cycle the window was asked around. Returns the
    matplotlib Figure.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    # The rows top to bottom, a header row before each group's first.
    lines, group = [], None
    for row in rows:
        if row.group != group:
            group = row.group
            lines.append(group)
        lines.append(row)
    height = FRAME_IN + ROW_IN * max(len(lines), 1)
    fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((LABELS_IN / WIDTH_IN, 0.55 / height,
                       (WIDTH_IN - LABELS_IN - RIGHT_IN) / WIDTH_IN, (height - FRAME_IN) / height))
    x0, x1 = first_cycle, last_cycle + 1
    ax.set_xlim(x0, x1)
    ax.set_ylim(len(lines) - 0.5, -0.5)
    px_per_cycle = (WIDTH_IN - LABELS_IN - RIGHT_IN) * DPI / (x1 - x0)
    char_px = FONT_PT * DPI / 72 * CHAR_EM
    slant = min(SLANT_PX / px_per_cycle, 0.25)

    if mark is not None:
        ax.axvspan(mark, mark + 1, color="#fff3b0", zorder=0)
        # In a long window the cycle is under a pixel wide: a line says where it is.
        ax.axvline(mark + 0.5, color="#e0a800", linewidth=1.0, alpha=0.6, zorder=0.6)
    if x1 - x0 <= GRID_CYCLES:
        ax.vlines(range(x0, x1 + 1), -0.5, len(lines) - 0.5, colors="#e4e4e4",
                  linewidths=0.5, zorder=0.5)

    texts, unknown = [], []
    for y, line in enumerate(lines):
        if isinstance(line, str):
            ax.axhline(y - 0.5, color="#999999", linewidth=0.6)
            continue
        stretches = _stretches(line.changes, x1)
        if line.kind == "bit":
            _digital(ax, y, stretches)
        elif line.kind == "bus":
            _bus(ax, y, stretches, slant)
            for start, end, value, text in stretches:
                if value is None:
                    unknown.append(((start, y - HALF), (end, y - HALF), (end, y + HALF),
                                    (start, y + HALF)))
                fitted = _fit(text, (end - start) * px_per_cycle - 2 * SLANT_PX - 2, char_px)
                if fitted:
                    texts.append(((start + end) / 2, y, fitted))
        else:
            _events(ax, y, line.changes, x1, px_per_cycle, char_px)
    if unknown:
        ax.add_collection(PolyCollection(unknown, facecolors="#f6c6c6", edgecolors="none",
                                         zorder=0.8))
    for x, y, text in texts:
        ax.text(x, y, text, ha="center", va="center", fontsize=FONT_PT,
                family="monospace", clip_on=True)

    ax.set_yticks(range(len(lines)))
    labels = ax.set_yticklabels([line if isinstance(line, str) else line.label
                                 for line in lines], fontsize=8)
    for label, line in zip(labels, lines):
        if isinstance(line, str):
            label.set_fontweight("bold")
    ax.tick_params(axis="y", length=0)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=20, integer=True))
    ax.tick_params(axis="x", labelsize=8)
    ax.set_xlabel("cycle (from a falling edge of clk: it rises mid-cycle)", fontsize=8)
    ax.set_title(title, fontsize=10, loc="left")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.savefig(out, format="png")
    return fig


def _stretches(changes, end):
    """(start, end, value, text) of each stretch a value holds, to the window's end."""
    out = []
    for i, (x, value, text) in enumerate(changes):
        stop = changes[i + 1][0] if i + 1 < len(changes) else end
        if stop > x:
            out.append((x, stop, value, text))
    return out


def _bus(ax, y, stretches, slant):
    """A bus row as one polyline: each stretch a long hexagon (its edges slanted where
    the value changes), the hexagons apart by gaps (NaN) the line does not cross."""
    import numpy as np
    if not stretches:
        return
    start = np.array([s[0] for s in stretches])
    end = np.array([s[1] for s in stretches])
    d = np.minimum(slant, (end - start) / 2)
    gap = np.full_like(start, np.nan)
    xs = np.stack([start, start + d, end - d, end, end - d, start + d, start, gap], axis=1)
    ys = np.array([y, y - HALF, y - HALF, y, y + HALF, y + HALF, y, np.nan])
    ax.plot(xs.ravel(), np.tile(ys, len(stretches)), color="#2a5d8f", linewidth=0.7)


def _digital(ax, y, stretches):
    """A 1-bit row as one polyline: high, low, or mid-way (red) where unknown."""
    xs, ys, unknown = [], [], []
    for start, end, value, _ in stretches:
        level = y if value is None else (y - HALF if value else y + HALF)
        xs += [start, end]
        ys += [level, level]
        if value is None:
            unknown.append((start, end))
    ax.plot(xs, ys, color="#1d7a3a", linewidth=1.0, solid_joinstyle="miter")
    if unknown:
        from matplotlib.collections import LineCollection
        ax.add_collection(LineCollection([((a, y), (b, y)) for a, b in unknown],
                                         colors="#c0392b", linewidths=1.6))


def _events(ax, y, events, end, px_per_cycle, char_px):
    """The events as markers; a label each, the events closer than a label's width
    sharing one (``TRAP +2``: two more), cut short where the next label begins."""
    xs = [x for x, _, _ in events]
    if not xs:
        return
    ax.vlines(xs, y - HALF, y + HALF, colors="#b03a2e", linewidths=1.0)
    ax.plot(xs, [y - HALF] * len(xs), linestyle="none", marker="v", markersize=4,
            color="#b03a2e")
    clusters = []     # [x, the first event's text, how many more]
    for x, _, text in events:
        # Room for the cluster's label and its " +N" before another begins.
        label_px = (len(clusters[-1][1]) + 5) * char_px if clusters else 0
        if clusters and (x - clusters[-1][0]) * px_per_cycle < label_px:
            clusters[-1][2] += 1
        else:
            clusters.append([x, text, 0])
    for i, (x, text, more) in enumerate(clusters):
        label = text + (f" +{more}" if more else "")
        room = ((clusters[i + 1][0] if i + 1 < len(clusters) else end) - x) * px_per_cycle
        fitted = _fit(label, room - 6, char_px)
        if fitted:
            ax.text(x, y, " " + fitted, ha="left", va="center", fontsize=FONT_PT,
                    family="monospace", color="#b03a2e", clip_on=True)


def _fit(text, room_px, char_px):
    """``text``, or its start and ``…`` if it is too long for ``room_px``; "" if fewer
    than three characters of it would fit."""
    chars = int(room_px // char_px)
    if len(text) <= chars:
        return text
    if chars < 4:
        return ""
    return text[:chars - 1] + "…"

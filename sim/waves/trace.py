"""The one trace reader of the project: an FST or VCD file, read with pywellen.

A :class:`Trace` knows its vars and their widths, its clock (from the ``clk`` var: the
period, and which cycle a time falls in) and the cycles it holds, and gives the value
changes of chosen vars within a window of cycles. Times are in ps throughout, whatever
the file's timescale; cycle ``c`` is the time from one falling edge of ``clk`` to the
next, ``[c * period, (c + 1) * period)`` for the testbench's clock, which rises half a
period into each cycle.

Anything wrong with the file (missing, a folder, empty, truncated, not a trace, no
clock) raises :class:`TraceError` with one line naming the problem.
"""

from fractions import Fraction
from functools import cached_property
from pathlib import Path

#: the name of the clock var the cycles are counted on
CLOCK = "clk"


class TraceError(Exception):
    """A trace file that cannot be read; the message is one line naming the problem."""


def _value(raw):
    """A value as pywellen gives it, as an int, or None when some bit is unknown.

    pywellen gives an int for a 2-state value (Verilator's) and a string of bits for a
    4-state one (a VCD may hold ``x`` and ``z``)."""
    if isinstance(raw, int) or raw is None:
        return raw
    if isinstance(raw, str):
        return int(raw, 2) if raw and set(raw) <= {"0", "1"} else None
    return None     # a real var: not drawn as a value of ours


class Trace:
    """An FST or VCD trace, opened once; raises :class:`TraceError` if it cannot be.

    Attributes
    ----------
    path : Path
    widths : dict[str, int]
        Every var, by its full name (``mkclean_batch_tb.u.mmu.ptw.state``), with its
        width in bits.
    period : int
        ps per clock cycle, from the first two rising edges of ``clk``. This, ``cycles``
        and the conversions read the clock when first asked (TraceError if the trace
        has no ``clk`` or too little of it).
    cycles : tuple[int, int]
        The first and the last cycle the trace holds (the last is the one of the last
        rising edge of ``clk``: the trace's final instant may open a cycle it has no
        more of).
    """

    def __init__(self, path):
        self.path = Path(path)
        # pywellen panics (a BaseException, with a Rust backtrace on stderr) on a file
        # that is not there: look first.
        if not self.path.exists():
            raise TraceError(f"{self.path}: no such file")
        if not self.path.is_file():
            raise TraceError(f"{self.path} is not a file")
        if self.path.stat().st_size == 0:
            raise TraceError(f"{self.path} is empty, not a trace")
        import pywellen     # a compiled extension: only for the commands that read traces
        try:
            with _rust_quiet():
                self._wave = pywellen.Waveform(str(self.path))
                variables = self._wave.all_vars()
        except BaseException as e:
            _reraise_unless_reader_failed(e)
            raise TraceError(f"{self.path} cannot be read as a trace (FST or VCD): "
                             f"{_one_line(e)}") from None
        self._vars = {var.full_name: var for var in variables}
        self.widths = {name: var.bitwidth for name, var in self._vars.items()}
        self._to_ps = _ps_per_unit(self._wave.timescale, self.path)
        self._streamed = {}     # signal -> [(ps, value)], see _stream

    # The clock is found when first asked for: reading only the vars (the GTKWave save
    # file's writer) need not stream every edge of a long run's clock.

    @property
    def period(self):
        return self._clock[0]

    @property
    def cycles(self):
        return self._clock[2]

    @property
    def clock(self):
        """The full name of the clock var the cycles are counted on (the top's ``clk``)."""
        candidates = [n for n in self._vars
                      if n.rsplit(".", 1)[-1] == CLOCK and self._vars[n].bitwidth == 1]
        if not candidates:
            raise TraceError(f"{self.path} has no {CLOCK!r} signal to count cycles on")
        return min(candidates, key=lambda n: (n.count("."), n))

    @cached_property
    def _clock(self):
        """(period, phase, (first cycle, last cycle)), from the edges of ``clk``."""
        clock = self.clock
        edges = self._stream([clock])[clock]
        rises = [t for (t, v), (_, before) in zip(edges[1:], edges) if v == 1 and before == 0]
        if len(rises) < 2:
            raise TraceError(f"{self.path}: {clock} has fewer than two rising edges, "
                             "no clock period to count cycles with")
        period = rises[1] - rises[0]
        # A cycle runs from a falling edge to the next: the rising edge is half-way in.
        phase = (rises[0] - period // 2) % period
        first = (edges[0][0] - phase) // period
        return period, phase, (first, max(first, (rises[-1] - phase) // period))

    def cycle_of(self, time):
        """The cycle the time (ps) falls in."""
        return (time - self._clock[1]) // self.period

    def time_of(self, cycle):
        """When the cycle starts (ps): its falling edge of ``clk``."""
        return cycle * self.period + self._clock[1]

    def changes(self, paths, first_cycle, last_cycle):
        """The values of the vars ``paths`` from the start of ``first_cycle`` to the end of
        ``last_cycle``.

        Returns
        -------
        dict[str, list[tuple[int, int | None]]]
            For each path, (time in ps, value) pairs in time order: first the value in
            force when the window starts (at its start; None if the trace has none yet
            there), then one pair a change within the window. A value is None where some
            bit of it is unknown (``x``/``z``).
        """
        unknown = [p for p in paths if p not in self._vars]
        if unknown:
            raise TraceError(f"{self.path} has no signal {unknown[0]!r}")
        start, end = self.time_of(first_cycle), self.time_of(last_cycle + 1)
        out = {}
        for path, values in self._stream(paths).items():
            before = [v for t, v in values if t <= start]
            window = [(start, before[-1] if before else None)]
            for t, v in values:
                if start < t < end:
                    window.append((t, v))
            out[path] = window
        return out

    def _stream(self, paths):
        """Every change of the vars ``paths`` in the whole trace: path -> [(ps, value)],
        one pair a time at which the value is known (the last of a time wins)."""
        # pywellen's signal ids compare by identity; their text names the signal (vars
        # aliasing one signal share it). A Waveform streams a signal's changes once
        # only (a second stream_changes gives none), so what was streamed is kept.
        signal_of = {path: str(self._vars[path].signal_id) for path in paths}
        wanted = {signal_of[p]: self._vars[p] for p in paths
                  if signal_of[p] not in self._streamed}
        if wanted:
            raw = {signal: [] for signal in wanted}

            def record(time, signal, value):
                raw[str(signal)].append((time, value))

            try:
                with _rust_quiet():
                    self._wave.stream_changes(record, list(wanted.values()))
            except BaseException as e:
                _reraise_unless_reader_failed(e)
                raise TraceError(f"{self.path} is truncated or damaged: "
                                 f"{_one_line(e)}") from None
            for signal, changes in raw.items():
                values = []
                for t, v in changes:
                    t, v = int(t * self._to_ps), _value(v)
                    if values and values[-1][0] == t:
                        values[-1] = (t, v)
                    else:
                        values.append((t, v))
                self._streamed[signal] = values
        return {path: self._streamed[signal_of[path]] for path in paths}


def _ps_per_unit(timescale, path):
    """How many ps one time unit of the file is (a VCD without a timescale: 1 ps)."""
    if timescale is None:
        return 1
    scale = Fraction(timescale.factor) * Fraction(10) ** (timescale.unit.to_exponent() + 12)
    if scale < 1:
        raise TraceError(f"{path}: its timescale ({timescale.factor} {timescale.unit}) is "
                         "finer than the ps this reader counts in")
    return int(scale)


def _reraise_unless_reader_failed(error):
    """Let through what is not pywellen giving up on a file: an interrupt, an exit. Its
    Rust code gives up with pyo3's PanicException, a BaseException that cannot be
    imported by name (a truncated FST trips an assertion of the reader)."""
    if not isinstance(error, Exception) and type(error).__name__ != "PanicException":
        raise error


class _rust_quiet:
    """Hold back what the Rust reader writes to the stderr file descriptor while it
    reads: a panic prints its message and a backtrace note there before it becomes a
    Python exception, which says the same in one line."""

    def __enter__(self):
        import os
        import sys
        import tempfile
        sys.stderr.flush()
        self._held = tempfile.TemporaryFile()
        self._saved = os.dup(2)
        os.dup2(self._held.fileno(), 2)

    def __exit__(self, *exc):
        import os
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._held.close()
        return False


def _one_line(error):
    text = " ".join(str(error).split())
    return text or type(error).__name__

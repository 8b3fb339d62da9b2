"""Progress of a long run (a replay's rows, a scenario's event time) for a person watching.

The model is pure: `progress_line` and `summary_line` turn done/total units and the elapsed
wall time, given as parameters, into one line of text, e.g.

    rows 1 234/8 760 (14 %) · 412 rows/s · ETA 0:18

`ProgressReporter` is the thin I/O shell: on a terminal it redraws that line in place (\\r)
at most a few times a second; otherwise it stays silent until the end and then prints one
summary line, so logs and CI output get a single line instead of thousands of redraws.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TextIO

# A run this far from its end has no useful ETA to show.
_MAX_CLOCK_S: Final = 1000 * 3600
# Larger counts and rates are not real ones; capped, they print as numbers, not "inf".
_MAX_COUNT: Final = 1e15
_SEP: Final = " · "
# Clears from the cursor to the end of the line: a shorter line leaves no tail behind.
_CLEAR_EOL: Final = "\x1b[K"


@dataclass(frozen=True, slots=True)
class Units:
    """What is counted: `name` ("rows"), and whether the units are seconds shown as a clock
    (event time: "event time 1:00:00/4:00:00", rate "600 s/s")."""

    name: str
    seconds: bool = False


ROWS: Final = Units("rows")
EVENT_TIME: Final = Units("event time", seconds=True)


def _clean(value: float) -> float:
    """Negative, NaN or infinite counts and times count as 0, absurdly large ones as 1e15."""
    return min(value, _MAX_COUNT) if math.isfinite(value) and value > 0 else 0.0


def _count(value: float, units: Units) -> str:
    if units.seconds:
        return clock(value)
    return f"{int(value):,}".replace(",", " ")


def clock(seconds: float) -> str:
    """H:MM:SS, or M:SS under an hour; ">999 h" beyond."""
    seconds = _clean(seconds)
    if seconds >= _MAX_CLOCK_S:
        return ">999 h"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def rate(done: float, elapsed_s: float) -> float:
    """Units per second so far; 0 before any time has passed."""
    done, elapsed_s = _clean(done), _clean(elapsed_s)
    return min(done / elapsed_s, _MAX_COUNT) if elapsed_s > 0 else 0.0


def percent(done: float, total: float) -> int:
    """Whole percent done, 0..100; a run of nothing is complete."""
    done, total = _clean(done), _clean(total)
    if total <= 0:
        return 100
    return int(min(100.0, 100 * done / total))


def eta_s(done: float, total: float, elapsed_s: float) -> float | None:
    """Seconds left at the rate so far (never negative), or None while the rate is unknown."""
    left = max(0.0, _clean(total) - _clean(done))
    if left == 0:
        return 0.0
    speed = rate(done, elapsed_s)
    return left / speed if speed > 0 else None


def _rate_text(done: float, elapsed_s: float, units: Units) -> str:
    speed = rate(done, elapsed_s)
    unit = "s" if units.seconds else units.name
    if speed == 0:
        return f"– {unit}/s"
    if speed < 0.01:
        return f"<0.01 {unit}/s"
    return f"{speed:,.0f} {unit}/s".replace(",", " ") if speed >= 10 else f"{speed:.2f} {unit}/s"


def progress_line(units: Units, done: float, total: float, elapsed_s: float) -> str:
    """One line of progress: done/total, percent, rate and ETA."""
    eta = eta_s(done, total, elapsed_s)
    return _SEP.join(
        [
            f"{units.name} {_count(_clean(done), units)}/{_count(_clean(total), units)}"
            f" ({percent(done, total)} %)",
            _rate_text(done, elapsed_s, units),
            f"ETA {'?' if eta is None else clock(eta)}",
        ]
    )


def summary_line(units: Units, done: float, total: float, elapsed_s: float) -> str:
    """The line printed at the end: done/total, the time it took and the mean rate."""
    return _SEP.join(
        [
            f"{units.name} {_count(_clean(done), units)}/{_count(_clean(total), units)}",
            f"in {clock(elapsed_s)}",
            _rate_text(done, elapsed_s, units),
        ]
    )


class ProgressReporter:
    """Shows progress on `stream`: redrawn in place on a terminal (at most once per
    `min_interval_s`), one summary line at `finish` either way. `now` is the wall clock
    (monotonic seconds), a parameter so tests control it."""

    def __init__(
        self,
        stream: TextIO,
        units: Units,
        total: float,
        *,
        now: Callable[[], float] = time.monotonic,
        min_interval_s: float = 0.25,
    ) -> None:
        self._stream = stream
        self._units = units
        self._total = total
        self._now = now
        self._min_interval_s = min_interval_s
        self._started = now()
        self._last_draw: float | None = None
        self._tty = _isatty(stream)

    def update(self, done: float) -> None:
        if not self._tty:
            return
        at = self._now()
        if self._last_draw is not None and at - self._last_draw < self._min_interval_s:
            return
        self._last_draw = at
        line = progress_line(self._units, done, self._total, at - self._started)
        self._stream.write(f"\r{line}{_CLEAR_EOL}")
        self._stream.flush()

    def finish(self, done: float) -> None:
        line = summary_line(self._units, done, self._total, self._now() - self._started)
        self._stream.write(f"\r{line}{_CLEAR_EOL}\n" if self._tty else f"{line}\n")
        self._stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream is not a terminal
        return False

"""Progress lines: the pure formatter (never a negative ETA, no division by zero at t = 0 or
for a total of 0) and the reporter, which redraws on a terminal and is silent elsewhere
until one summary line at the end."""

from __future__ import annotations

import io
import re

from hypothesis import given
from hypothesis import strategies as st

from schemas.runtime.progress import (
    EVENT_TIME,
    ROWS,
    ProgressReporter,
    clock,
    eta_s,
    percent,
    progress_line,
    summary_line,
)


def test_the_line_shows_done_total_percent_rate_and_eta() -> None:
    assert progress_line(ROWS, 1234, 8760, 3.0) == (
        "rows 1 234/8 760 (14 %) · 411 rows/s · ETA 0:18"
    )
    assert progress_line(EVENT_TIME, 3600, 14400, 6.0) == (
        "event time 1:00:00/4:00:00 (25 %) · 600 s/s · ETA 0:18"
    )
    assert summary_line(ROWS, 744, 744, 125.0) == "rows 744/744 · in 2:05 · 5.95 rows/s"


def test_the_edges_start_nothing_and_overshoot() -> None:
    assert progress_line(ROWS, 0, 100, 0.0) == "rows 0/100 (0 %) · – rows/s · ETA ?"
    assert progress_line(ROWS, 0, 0, 0.0) == "rows 0/0 (100 %) · – rows/s · ETA 0:00"
    assert progress_line(ROWS, 120, 100, 2.0) == "rows 120/100 (100 %) · 60 rows/s · ETA 0:00"
    assert clock(7 * 3600 + 5) == "7:00:05" and clock(4e6) == ">999 h" and clock(-3) == "0:00"


numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10**12))


@given(done=numbers, total=numbers, elapsed=numbers)
def test_any_numbers_give_a_line_and_never_a_negative_eta(
    done: float, total: float, elapsed: float
) -> None:
    line = progress_line(ROWS, done, total, elapsed)
    summary = summary_line(EVENT_TIME, done, total, elapsed)
    assert "\n" not in line and "-" not in line.replace("– ", "") and "nan" not in line
    assert "-" not in summary and "nan" not in summary and "inf" not in summary
    eta = eta_s(done, total, elapsed)
    assert eta is None or eta >= 0
    assert 0 <= percent(done, total) <= 100


class FakeStream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def run(stream: FakeStream) -> None:
    now = FakeClock()
    reporter = ProgressReporter(stream, ROWS, 100, now=now, min_interval_s=0.25)
    for done in range(0, 101, 10):  # ten updates over 1 s: at most 5 draws (0, .25, .5, ...)
        now.t += 0.1
        reporter.update(done)
    reporter.finish(100)


def test_on_a_terminal_it_redraws_one_line_a_few_times_a_second() -> None:
    stream = FakeStream(tty=True)
    run(stream)
    out = stream.getvalue()
    draws = out.split("\r")[1:]
    assert 2 <= len(draws) - 1 <= 5, draws  # throttled redraws, then the summary
    assert all(d.endswith("\x1b[K") for d in draws[:-1]) and "\n" not in "".join(draws[:-1])
    assert re.fullmatch(r"rows 100/100 · in 0:01 · 9\d rows/s\x1b\[K\n", draws[-1])


def test_elsewhere_it_prints_only_the_summary_line() -> None:
    stream = FakeStream(tty=False)
    run(stream)
    assert re.fullmatch(r"rows 100/100 · in 0:01 · 9\d rows/s\n", stream.getvalue())


def test_a_stream_without_isatty_is_not_a_terminal() -> None:
    class Closed(io.StringIO):
        def isatty(self) -> bool:
            raise ValueError("I/O operation on closed file")

    stream = Closed()
    reporter = ProgressReporter(stream, ROWS, 1)
    reporter.update(1)
    reporter.finish(1)
    assert stream.getvalue().startswith("rows 1/1 · in ")

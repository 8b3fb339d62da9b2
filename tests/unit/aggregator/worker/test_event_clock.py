"""The alert logic's clock: wall or scaled event time, its [clock] settings and ENVNET_CLOCK,
and the alerting side judging lateness by it."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.config import load_aggregator_config
from aggregator.fleet import Fleet, NodeInfo
from aggregator.worker.alerting import Alerting
from aggregator.worker.event_clock import ClockSettings, EventClock, event_ms, parse_clock_env
from aggregator.worker.process import RecordedMetrics
from schemas.messages import ReadingValues
from schemas.runtime.configfile import ConfigError

ORIGIN = 1_780_243_200_000  # 2026-06-01T00:00Z
ANCHOR = 1_796_000_000_000
SCALED = ClockSettings(origin_ms=ORIGIN, anchor_wall_ms=ANCHOR, rate=600.0)
MS = st.integers(0, 4_102_444_800_000)


def test_absent_is_the_wall_clock() -> None:
    clock = EventClock(wall=lambda: 1_234_567)
    assert not clock.scaled
    assert clock.now_ms() == 1_234_567


def test_scaled_event_time_runs_rate_times_faster_from_the_origin() -> None:
    walls = iter([ANCHOR, ANCHOR + 1000, ANCHOR + 60_000, ANCHOR - 1])
    clock = EventClock(SCALED, wall=lambda: next(walls))
    assert clock.scaled
    assert clock.now_ms() == ORIGIN
    assert clock.now_ms() == ORIGIN + 600_000  # one wall second: ten event minutes
    assert clock.now_ms() == ORIGIN + 36_000_000  # one wall minute: ten event hours
    assert clock.now_ms() == ORIGIN - 600  # before the anchor: before the origin, floored


def test_a_fractional_rate_floors_to_the_millisecond() -> None:
    slow = ClockSettings(origin_ms=ORIGIN, anchor_wall_ms=ANCHOR, rate=0.3)
    assert event_ms(slow, ANCHOR + 1) == ORIGIN
    assert event_ms(slow, ANCHOR + 10) == ORIGIN + 3
    assert event_ms(slow, ANCHOR - 1) == ORIGIN - 1


@given(MS, MS, MS, st.floats(0.01, 10_000))
def test_event_time_is_monotonic_in_wall_time(
    origin: int, anchor: int, wall: int, rate: float
) -> None:
    settings = ClockSettings(origin_ms=origin, anchor_wall_ms=anchor, rate=rate)
    assert event_ms(settings, wall) <= event_ms(settings, wall + 1)
    assert abs(event_ms(settings, wall) - (origin + rate * (wall - anchor))) <= 1 + 1e-9 * abs(
        rate * (wall - anchor)
    )


@given(MS)
def test_rate_one_at_its_own_anchor_is_the_wall_clock(wall: int) -> None:
    assert event_ms(ClockSettings(origin_ms=ANCHOR, anchor_wall_ms=ANCHOR), wall) == wall


# -- configuration ----------------------------------------------------------------------------


def load(tmp_path: Path, toml: str, environ: dict[str, str] | None = None) -> ClockSettings:
    path = tmp_path / "agg.toml"
    path.write_text(toml)
    return load_aggregator_config(path, environ=environ or {}).clock


def test_the_clock_section_is_read(tmp_path: Path) -> None:
    toml = f"[clock]\norigin_ms = {ORIGIN}\nanchor_wall_ms = {ANCHOR}\nrate = 600.0\n"
    assert load(tmp_path, toml) == SCALED
    assert load(tmp_path, "") == ClockSettings()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[clock]\nrate = 0.0\n", "Expected `float` > 0.0 - at `\\$.clock.rate`"),
        ("[clock]\nrate = -2.0\n", "at `\\$.clock.rate`"),
        ("[clock]\nrate = inf\n", "positive finite"),
        ("[clock]\nrate = nan\n", "at `\\$.clock.rate`"),
        (f"[clock]\norigin_ms = {ORIGIN}\n", "give both or neither"),
        (f"[clock]\nanchor_wall_ms = {ANCHOR}\n", "give both or neither"),
        ("[clock]\nrate = 600.0\n", "rate needs origin_ms and anchor_wall_ms"),
        ('[clock]\norigin_ms = "2026-06-01"\n', "at `\\$.clock.origin_ms`"),
        (f"[clock]\norigin = {ORIGIN}\n", "unknown field `origin`"),
    ],
)
def test_a_bad_clock_section_is_a_clear_error(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        load(tmp_path, toml)
    assert str(tmp_path / "agg.toml") in str(raised.value)


def test_envnet_clock_overrides_the_sections_keys(tmp_path: Path) -> None:
    env = {"ENVNET_CLOCK": f" origin_ms={ORIGIN}, anchor_wall_ms = {ANCHOR} ,rate=600 "}
    assert load(tmp_path, "", env) == SCALED
    toml = f"[clock]\norigin_ms = 1\nanchor_wall_ms = {ANCHOR}\nrate = 2.0\n"
    assert load(tmp_path, toml, {"ENVNET_CLOCK": f"origin_ms={ORIGIN},rate=600"}) == SCALED


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("origin_ms", "expected key=value"),
        ("origin=1", "expected key=value with keys origin_ms, anchor_wall_ms, rate"),
        ("origin_ms=soon", "origin_ms must be a number, got 'soon'"),
        ("origin_ms=1.5", "origin_ms must be a number"),
        ("rate=fast", "rate must be a number"),
    ],
)
def test_a_bad_envnet_clock_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, "", {"ENVNET_CLOCK": text})


def test_an_incomplete_envnet_clock_is_judged_like_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="give both or neither"):
        load(tmp_path, "", {"ENVNET_CLOCK": f"origin_ms={ORIGIN}"})
    assert parse_clock_env("") == {}


# -- the alerting side judges lateness on its clock -------------------------------------------

FLEET = Fleet({"n1": NodeInfo(site="Test", odour_grade="II-new")})


def h2s(ts: int) -> ReadingValues:
    return ReadingValues(
        ts=ts, quantity="h2s", value=250.0, unit="ug/m3", period_s=60, stat="mean", sensor="s"
    )


def lanes(clock: EventClock) -> list[bool]:
    """The late flags of the alert transitions a stream at the origin gives, on `clock`."""
    transitions: list[bool] = []
    alerting = Alerting(
        load_aggregator_config(None, environ={}).alerts,
        FLEET,
        RecordedMetrics(),  # type: ignore[arg-type]
        lambda lines: None,
        lambda t: transitions.append(t.alert.late),
        clock,
    )
    for i in range(5):
        alerting.stored(FLEET.get("n1"), [h2s(ORIGIN + i * 60_000)], backlog=False)  # type: ignore[arg-type]
    return transitions


def test_a_stream_on_the_scaled_clock_is_live_and_on_the_wall_clock_late() -> None:
    # One wall second after the anchor, event time is 10 minutes after the origin: the
    # readings ended 5 to 9 event minutes ago, under late_after_s (900).
    scaled = lanes(EventClock(SCALED, wall=lambda: ANCHOR + 1_000))
    assert scaled and not any(scaled)
    wall = lanes(EventClock(wall=lambda: ANCHOR + 1_000))
    assert wall and all(wall)

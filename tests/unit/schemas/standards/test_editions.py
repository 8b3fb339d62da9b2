"""The GB 3095 / HJ 633 edition follows the window's date (issue 9, item 4).

GB 3095-2026 and HJ 633-2026 replaced the 2012 editions on 2026-03-01 (docs/standards.md
§0.1). By default (`air_edition = "auto"`) a window is judged by the edition in force at its
start, the switch being 2026-03-01 00:00 China Standard Time = 2026-02-28 16:00 UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.config import AlertsSection, load_aggregator_config
from schemas.messages import Reading
from schemas.standards import editions
from tests.unit.aggregator.engine.rules.test_rules import (
    AIR,
    HOUR,
    closing,
    engine,
    hours_of,
    only,
    run,
    utc_ms,
)
from tests.unit.envnet.commands.test_standards import run as run_cli
from tests.unit.envnet.commands.test_standards import run_json

DEPLOY = Path(__file__).resolve().parents[4] / "deploy" / "config"
MS_2000 = 946_684_800_000
MS_2100 = 4_102_444_800_000


# -- the instant of the switch --------------------------------------------------------------


def test_the_switch_is_2026_03_01_midnight_beijing_time() -> None:
    assert editions.FIRST_MS_2026 == utc_ms("2026-03-01T00:00") == 1_772_294_400_000
    assert datetime.fromtimestamp(editions.FIRST_MS_2026 / 1000, UTC) == datetime(
        2026, 2, 28, 16, tzinfo=UTC
    )
    assert editions.edition_at(editions.FIRST_MS_2026 - 1) == "2012"
    assert editions.edition_at(editions.FIRST_MS_2026) == "2026"


def test_last_window_of_february_28_is_2012_and_first_of_march_1_is_2026() -> None:
    last_hour = utc_ms("2026-02-28T23:00")
    first_hour = utc_ms("2026-03-01T00:00")
    assert editions.edition_at(last_hour) == "2012"
    assert editions.edition_at(first_hour) == "2026"
    # The natural days, which start at local midnight.
    assert editions.edition_at(utc_ms("2026-02-28T00:00")) == "2012"
    assert editions.edition_at(utc_ms("2026-03-01T00:00")) == "2026"


def test_a_window_straddling_the_switch_takes_the_edition_of_its_start() -> None:
    # An 8-h sliding window 2026-02-28 20:00 - 2026-03-01 04:00 CST starts under 2012.
    assert editions.resolve("auto", utc_ms("2026-02-28T20:00")) == "2012"


def test_a_setting_forces_one_edition_for_all_dates() -> None:
    t2013 = utc_ms("2013-03-05T00:00")
    t2027 = utc_ms("2027-03-05T00:00")
    assert [editions.resolve("2026", t) for t in (t2013, t2027)] == ["2026", "2026"]
    assert [editions.resolve("2012", t) for t in (t2013, t2027)] == ["2012", "2012"]
    assert [editions.resolve("auto", t) for t in (t2013, t2027)] == ["2012", "2026"]


@given(st.integers(MS_2000, MS_2100), st.integers(MS_2000, MS_2100))
def test_the_edition_is_a_monotone_function_of_the_instant(a: int, b: int) -> None:
    early, late = sorted((a, b))
    assert int(editions.edition_at(early)) <= int(editions.edition_at(late))
    # The instant and its Beijing date agree on the edition.
    assert editions.edition_at(a) == editions.edition_on(editions.beijing_date(a))


@given(st.dates(date(2000, 1, 1), date(2099, 12, 31)), st.integers(0, 40_000))
def test_the_edition_is_a_monotone_function_of_the_date(day: date, later_by: int) -> None:
    later = min(day + timedelta(days=later_by), date(2099, 12, 31))
    assert int(editions.edition_on(day)) <= int(editions.edition_on(later))


# -- the rules at the boundary --------------------------------------------------------------


def pm25_day(local_day: str, value: float) -> list[Reading]:
    start = utc_ms(f"{local_day}T00:00")
    return [*hours_of("pm2_5", value, start, 24), *closing("pm2_5", start + 24 * HOUR)]


def test_pm25_daily_76_in_march_2013_exceeds_the_2012_limit_of_75() -> None:
    # GB 3095-2012 Table 1: PM2.5 24-h Grade II 75 µg/m³ (docs/standards.md §1.1).
    got = run(engine(), AIR, pm25_day("2013-03-05", 76))
    (obs,) = only(got, "air.pm2_5.24h")
    assert obs.exceeded and obs.limit == 75
    assert (obs.rule.standard, obs.rule.clause) == ("GB 3095-2012", "Table 1")
    assert "GB 3095-2012" in obs.message
    # HJ 633-2012 Table 1: 76 in [75, 115] -> 100 + 50/40 x 1 = 101.25, rounded up: 102.
    (daily,) = [a for a in got.aqi if a.report == "day"]
    assert daily.result.edition == "2012" and daily.result.aqi == 102


def test_the_default_is_auto_and_the_shipped_config_says_so() -> None:
    assert AlertsSection().air_edition == "auto"
    shipped = load_aggregator_config(DEPLOY / "agg.toml", environ={})
    assert shipped.alerts.air_edition == "auto"


def test_forcing_2026_judges_2013_by_the_2026_limit() -> None:
    (obs,) = only(run(engine(air_edition="2026"), AIR, pm25_day("2013-03-05", 76)), "air.pm2_5.24h")
    assert obs.limit == 60 and obs.rule.standard == "GB 3095-2026"


@pytest.mark.parametrize(
    ("local_day", "limit", "standard", "exceeded"),
    [
        ("2026-02-28", 75, "GB 3095-2012", False),  # GB 3095-2012 Table 1: 70 <= 75
        ("2026-03-01", 60, "GB 3095-2026", True),  # GB 3095-2026 Table 1 (transition): 70 > 60
    ],
)
def test_daily_limit_on_either_side_of_the_switch(
    local_day: str, limit: float, standard: str, exceeded: bool
) -> None:
    (obs,) = only(run(engine(), AIR, pm25_day(local_day, 70)), "air.pm2_5.24h")
    assert (obs.limit, obs.rule.standard, obs.exceeded) == (limit, standard, exceeded)


def test_hourly_aqi_starts_with_the_first_hour_of_march_1() -> None:
    # HJ 633-2012's real-time AQI needs 24-h sliding PM means, which envnet does not compute:
    # the last hour of February 28 has none; the first of March 1 is HJ 633-2026's.
    last = utc_ms("2026-02-28T23:00")
    readings = [*hours_of("pm2_5", 150, last, 2), *closing("pm2_5", last + 2 * HOUR)]
    hourly = [a for a in run(engine(), AIR, readings).aqi if a.report == "hour"]
    assert [(a.start_ms, a.result.edition) for a in hourly] == [(last + HOUR, "2026")]
    (obs,) = only(run(engine(), AIR, readings), "aqi.hour")
    assert obs.rule.standard == "HJ 633-2026" and "HJ 633-2026" in obs.message


def test_daily_aqi_on_either_side_of_the_switch() -> None:
    e = engine()
    days = [*pm25_day("2026-02-28", 76)[:-1], *pm25_day("2026-03-01", 76)]
    daily = [a for a in run(e, AIR, days).aqi if a.report == "day"]
    # 2012: 102 (above); 2026: 76 in [60, 115] -> 100 + 50/55 x 16 = 114.5 -> 115.
    assert [(a.result.edition, a.result.aqi) for a in daily] == [("2012", 102), ("2026", 115)]


# -- the standards CLI says which edition it used -------------------------------------------


def test_cli_picks_the_edition_in_force_on_the_date(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["standards", "aqi", "--period", "day", "--pm2_5", "76"]
    old = run_json([*argv, "--date", "2026-02-28"], capsys)
    new = run_json([*argv, "--date", "2026-03-01"], capsys)
    assert (old["edition"], old["aqi"], old["edition_basis"]) == (
        "2012",
        102,
        "in force on 2026-02-28",
    )
    assert (new["edition"], new["aqi"], new["edition_basis"]) == (
        "2026",
        115,
        "in force on 2026-03-01",
    )
    forced = run_json([*argv, "--date", "2013-03-05", "--edition", "2026"], capsys)
    assert (forced["edition"], forced["edition_basis"]) == ("2026", "forced by --edition")


def test_cli_text_names_the_edition_and_refuses_a_bad_date(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["standards", "aqi", "--period", "day", "--pm2_5", "76"]
    code, out, _ = run_cli([*argv, "--date", "2013-03-05"], capsys)
    assert code == 0
    assert out.splitlines()[0] == "HJ 633-2012 daily AQI (edition in force on 2013-03-05)"
    code, _, err = run_cli([*argv, "--date", "2026-02-30"], capsys)
    assert code == 2 and "is not a date" in err and err.count("\n") == 1

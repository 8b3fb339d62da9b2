"""The standards engine, checked against hand-worked examples from the standards tables.

Event times are China Standard Time wall-clock instants; `now` is the end of the data, so
nothing is late unless a test says so.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from aggregator.config import AlertsSection
from aggregator.engine.evaluator import Evaluation, Evaluator
from aggregator.engine.observations import Observation
from aggregator.engine.rules.point import BloomLevel, BloomSettings, OdourSettings
from aggregator.fleet import NodeInfo
from schemas.messages import Reading
from schemas.quantities import SPECS, Quantity

HOUR = 3_600_000
AIR = NodeInfo(site="x", node="n", air_zone=2)


def utc_ms(local_iso: str) -> int:
    """Epoch ms of a China Standard Time wall-clock instant."""
    return int(datetime.fromisoformat(local_iso + "+08:00").astimezone(UTC).timestamp() * 1000)


def engine(**changes: object) -> Evaluator:
    return Evaluator.of(msgspec.structs.replace(AlertsSection(), **changes))


def r(q: Quantity, value: float, ts: int, period_s: int = 300, sensor: str = "s") -> Reading:
    spec = SPECS[q]
    return Reading(
        ts=ts, quantity=q, value=value, unit=spec.unit, period_s=period_s,
        stat=spec.default_stat, sensor=sensor,
    )  # fmt: skip


def hours_of(
    q: Quantity, value: float, start: int, hours: int, every_s: int = 300
) -> list[Reading]:
    step = every_s * 1000
    return [r(q, value, start + i * step, every_s) for i in range(hours * HOUR // step)]


def run(e: Evaluator, info: NodeInfo, readings: list[Reading], backlog: bool = False) -> Evaluation:
    """Feed readings in 1-hour batches, as a node would, and collect everything."""
    out = Evaluation()
    now = max(x.ts + x.period_s * 1000 for x in readings)
    for start in range(0, len(readings), 12):
        got = e.evaluate(info, readings[start : start + 12], backlog, now)
        out.observations += got.observations
        out.windows += got.windows
        out.aqi += got.aqi
        out.water += got.water
    return out


def only(evaluation: Evaluation, rule: str) -> list[Observation]:
    return [o for o in evaluation.observations if o.rule.id == rule]


def closing(q: Quantity, at: int) -> list[Reading]:
    return [r(q, 0.0, at)]


# -- air limits (GB 3095-2026 Table 1) ------------------------------------------------------


def test_o3_hourly_mean_against_grade_ii_transition_limit() -> None:
    t = utc_ms("2026-07-01T14:00")
    (obs,) = only(
        run(engine(), AIR, [*hours_of("o3", 210, t, 1), *closing("o3", t + HOUR)]), "air.o3.1h"
    )
    assert obs.exceeded and obs.limit == 200 and obs.value == pytest.approx(210.0)
    assert obs.rule.standard == "GB 3095-2026" and obs.rule.clause == "Table 1 (transition)"
    assert obs.window_start_ms == t and not obs.late


def test_grade_i_zone_uses_grade_i_limit() -> None:
    t = utc_ms("2026-07-01T14:00")
    info = NodeInfo(site="x", node="n", air_zone=1)
    (obs,) = only(
        run(engine(), info, [*hours_of("o3", 180, t, 1), *closing("o3", t + HOUR)]), "air.o3.1h"
    )
    assert obs.exceeded and obs.limit == 160


def test_so2_phase_follows_the_local_date() -> None:
    # SO2 1-h Grade II: 500 in the transition phase (to 2030-12-31), 150 from 2031-01-01.
    for start, limit in (("2030-12-31T23:00", 500), ("2031-01-01T00:00", 150)):
        t = utc_ms(start)
        (obs,) = only(
            run(engine(), AIR, [*hours_of("so2", 200, t, 1), *closing("so2", t + HOUR)]),
            "air.so2.1h",
        )
        assert obs.limit == limit and obs.exceeded == (limit < 200)


def test_an_hour_with_less_than_45_minutes_is_not_evaluated() -> None:
    t = utc_ms("2026-07-01T14:00")
    readings = [r("o3", 300, t + i * 300_000) for i in range(8)]  # 40 minutes
    assert only(run(engine(), AIR, [*readings, *closing("o3", t + HOUR)]), "air.o3.1h") == []
    readings = [r("o3", 300, t + i * 300_000) for i in range(9)]  # 45 minutes
    assert len(only(run(engine(), AIR, [*readings, *closing("o3", t + HOUR)]), "air.o3.1h")) == 1


def test_daily_mean_needs_20_hours() -> None:
    # PM2.5 24-h Grade II (transition): 60 µg/m³. 20 valid hours at 70 -> valid, exceeded.
    day = utc_ms("2026-07-02T00:00")
    for hours, expected in ((19, 0), (20, 1)):
        readings = [*hours_of("pm2_5", 70, day, hours), *closing("pm2_5", day + 24 * HOUR)]
        found = only(run(engine(), AIR, readings), "air.pm2_5.24h")
        assert len(found) == expected
    (obs,) = found
    assert obs.value == pytest.approx(70) and obs.limit == 60 and obs.rule.window_s == 86400


def test_mda8_against_the_o3_8h_limit() -> None:
    # 8 hours at 170 inside the day, the rest at 60: MDA8 = 170 > 160 (Grade II).
    day = utc_ms("2026-07-02T00:00")
    readings = [
        *hours_of("o3", 60, day, 10),
        *hours_of("o3", 170, day + 10 * HOUR, 8),
        *hours_of("o3", 60, day + 18 * HOUR, 6),
        *closing("o3", day + 24 * HOUR),
    ]
    (obs,) = only(run(engine(), AIR, readings), "air.o3.mda8")
    assert obs.exceeded and obs.value == pytest.approx(170) and obs.limit == 160


def test_edition_2012_is_selectable() -> None:
    # GB 3095-2012 PM2.5 24-h Grade II is 75: a daily mean of 70 is within it.
    day = utc_ms("2026-07-02T00:00")
    readings = [*hours_of("pm2_5", 70, day, 24), *closing("pm2_5", day + 24 * HOUR)]
    (obs,) = only(run(engine(air_edition="2012"), AIR, readings), "air.pm2_5.24h")
    assert obs.limit == 75 and not obs.exceeded and obs.rule.standard == "GB 3095-2012"


# -- AQI (HJ 633-2026) ----------------------------------------------------------------------


def test_hourly_aqi_reads_pm_1h_on_the_daily_breakpoints() -> None:
    # PM2.5 1-h 75 on the 24-h breakpoints: (150-100)/(115-60)·(75-60)+100 = 113.6 -> 114.
    t = utc_ms("2026-07-01T14:00")
    got = run(engine(), AIR, [*hours_of("pm2_5", 75, t, 1), *closing("pm2_5", t + HOUR)])
    (record,) = [a for a in got.aqi if a.report == "hour"]
    assert record.result.aqi == 114 and record.result.primary == ("pm2_5",)
    (obs,) = only(got, "aqi.hour")
    assert obs.exceeded and obs.rule.kind == "aqi" and obs.limit == 100
    assert "Lightly polluted" in obs.message


def test_daily_aqi_is_stored_but_pages_only_when_configured() -> None:
    day = utc_ms("2026-07-02T00:00")
    readings = [*hours_of("pm2_5", 150, day, 24), *closing("pm2_5", day + 24 * HOUR)]
    got = run(engine(), AIR, readings)
    (daily,) = [a for a in got.aqi if a.report == "day"]
    assert daily.result.aqi == 200  # PM2.5 24-h 150 is the IAQI-200 breakpoint
    assert only(got, "aqi.day") == []
    paging = run(engine(aqi_alert_reports=("hour", "day")), AIR, readings)
    assert [o.value for o in only(paging, "aqi.day")] == [200]


def test_limit_exceedance_and_aqi_category_are_separate() -> None:
    # From 2031 (final limits) a daily PM2.5 of 55 exceeds Grade II (50), while its IAQI (~90)
    # is "good": a limit alert without an AQI-category alert (docs/standards.md §0.3).
    day = utc_ms("2031-03-02T00:00")
    readings = [*hours_of("pm2_5", 55, day, 24), *closing("pm2_5", day + 24 * HOUR)]
    got = run(engine(aqi_alert_reports=("day",)), AIR, readings)
    (limit,) = only(got, "air.pm2_5.24h")
    (aqi,) = only(got, "aqi.day")
    assert limit.exceeded and limit.limit == 50
    assert not aqi.exceeded and aqi.value <= 100


# -- noise (GB 3096-2008) -------------------------------------------------------------------


def test_night_lamax_is_night_limit_plus_15() -> None:
    info = NodeInfo(site="x", node="n", noise_zone="2")
    night = utc_ms("2026-07-01T23:30")
    (obs,) = only(run(engine(), info, [r("lamax", 66, night, 60)]), "noise.lamax.night")
    assert obs.exceeded and obs.limit == 65
    day = utc_ms("2026-07-01T12:00")
    (obs,) = only(run(engine(), info, [r("lamax", 80, day, 60)]), "noise.lamax.night")
    assert not obs.exceeded and obs.is_cleared


def test_day_and_night_levels_by_zone() -> None:
    # Zone 4a: day 70, night 55. 72 dB all day, 58 dB all night -> Ld 72 > 70, Ln 58 > 55.
    info = NodeInfo(site="x", node="n", noise_zone="4a")
    day = utc_ms("2026-07-02T06:00")
    readings = [
        *hours_of("laeq", 72, day, 16),
        *hours_of("laeq", 58, day + 16 * HOUR, 8),
        *closing("laeq", day + 24 * HOUR),
    ]
    got = run(engine(), info, readings)
    (ld,) = only(got, "noise.ld")
    (ln,) = only(got, "noise.ln")
    assert ld.exceeded and ld.limit == 70 and ld.value == pytest.approx(72)
    assert ln.exceeded and ln.limit == 55 and ln.value == pytest.approx(58)
    hourly = only(got, "noise.laeq.1h")
    assert len(hourly) == 24 and {o.limit for o in hourly} == {70, 55}


def test_ld_is_an_energy_mean() -> None:
    # Half the day at 70 and half at 50: 10·lg((10^7 + 10^5)/2) = 67.03 dB, not 60.
    info = NodeInfo(site="x", node="n", noise_zone="4a")
    day = utc_ms("2026-07-02T06:00")
    readings = [
        *hours_of("laeq", 70, day, 8),
        *hours_of("laeq", 50, day + 8 * HOUR, 8),
        *closing("laeq", day + 16 * HOUR),
    ]
    (ld,) = only(run(engine(), info, readings), "noise.ld")
    assert ld.value == pytest.approx(67.03, abs=0.01)


# -- odour, water, blooms -------------------------------------------------------------------


def test_odour_limits_by_grade_in_canonical_units() -> None:
    t = utc_ms("2026-07-01T12:00")
    for grade, limit in (("II-new", 60.0), ("II-existing", 100.0)):
        info = NodeInfo(site="x", node="n", odour_grade=grade)  # type: ignore[arg-type]
        (obs,) = only(run(engine(), info, [r("h2s", 80, t, 60)]), "odour.h2s")
        assert obs.limit == limit and obs.exceeded == (limit < 80)


def test_odour_window_can_be_the_hourly_mean() -> None:
    info = NodeInfo(site="x", node="n", odour_grade="II-new")
    t = utc_ms("2026-07-01T12:00")
    # A 5-minute spike to 200 in an hour otherwise at 20: the mean (35) is within 60.
    readings = [r("h2s", 200 if i == 0 else 20, t + i * 300_000) for i in range(12)]
    got = run(
        engine(odour=OdourSettings(window="1h")), info, [*readings, *closing("h2s", t + HOUR)]
    )
    (obs,) = only(got, "odour.h2s")
    assert obs.value == pytest.approx(35) and not obs.exceeded and obs.rule.window_s == 3600


def test_water_single_factor_and_site_class() -> None:
    # Taihu (lake) at target Class III: TP 0.06 is Class IV (lake TP III 0.05), multiple 0.2.
    info = NodeInfo(site="x", node="n", water_body="lake", water_target=3)
    t = utc_ms("2026-07-01T12:00")
    got = run(
        engine(), info, [r("tp", 0.06, t, 3600), r("do", 7.0, t, 3600), r("chl_a", 12, t, 3600)]
    )
    (tp,) = only(got, "water.tp.class")
    assert tp.exceeded and tp.limit == 0.05 and "1.20x" not in tp.message and "0.20x" in tp.message
    site = only(got, "water.site.class")[-1]
    assert site.exceeded and site.value == 4 and site.limit == 3 and "TLI" in site.message
    record = got.water[-1]
    assert record.evaluation.water_class == 4 and record.trophic is not None


def test_water_hysteresis_on_the_do_minimum() -> None:
    # DO Class III is >= 5 mg/L; back at 5.1 it is inside the class but not yet cleared
    # (5 x 1.05 = 5.25).
    info = NodeInfo(site="x", node="n", water_body="river", water_target=3)
    t = utc_ms("2026-07-01T12:00")
    low, edge, good = (
        only(run(engine(), info, [r("do", v, t, 3600)]), "water.do.class")[0]
        for v in (4.5, 5.1, 5.5)
    )
    assert low.exceeded and not edge.exceeded and not edge.is_cleared and good.is_cleared


def test_bloom_levels_and_configured_phycocyanin() -> None:
    info = NodeInfo(site="x", node="n", water_body="lake", water_target=3)
    t = utc_ms("2026-07-01T12:00")
    got = run(engine(), info, [r("chl_a", 60, t, 3600)])
    assert {o.rule.id for o in got.observations if o.exceeded} >= {
        "bloom.chl_a.who_low",
        "bloom.chl_a.who_moderate",
    }
    bloom = BloomSettings(phycocyanin=[BloomLevel(name="watch", ug_l=30)])
    (pc,) = only(
        run(engine(bloom=bloom), info, [r("phycocyanin", 35, t, 3600)]), "bloom.phycocyanin.watch"
    )
    assert pc.exceeded and "UNVERIFIED" in pc.rule.clause and "not a published" in pc.rule.standard
    assert (
        only(run(engine(), info, [r("phycocyanin", 35, t, 3600)]), "bloom.phycocyanin.watch") == []
    )


# -- late, suspect, skipped -----------------------------------------------------------------


def test_backlog_and_old_data_are_late() -> None:
    t = utc_ms("2026-07-01T14:00")
    readings = [*hours_of("o3", 210, t, 1), *closing("o3", t + HOUR)]
    (backlog,) = only(run(engine(), AIR, readings, backlog=True), "air.o3.1h")
    assert backlog.late
    e = engine()
    (old,) = only(e.evaluate(AIR, readings, False, t + 3 * HOUR), "air.o3.1h")
    assert old.late  # the window ended two hours before the aggregator's clock


def test_late_reading_revises_a_window_and_is_marked_late() -> None:
    t = utc_ms("2026-07-01T14:00")
    e = engine()
    first = [r("o3", 150, t + i * 300_000) for i in range(10)]  # 50 min at 150
    e.evaluate(AIR, [*first, r("o3", 0, t + HOUR)], False, t + HOUR)
    late = e.evaluate(AIR, [r("o3", 900, t + 10 * 300_000)], False, t + HOUR)
    (obs,) = only(late, "air.o3.1h")
    assert obs.late and obs.exceeded  # (10x150 + 900)/11 = 218 > 200


def test_exceedance_from_a_stuck_sensor_is_suspect() -> None:
    t = utc_ms("2026-07-01T00:00")
    e = engine()
    # 1-min readings frozen at one value: the gas flatline check needs 60 readings and 1 h.
    stuck = [*hours_of("o3", 250.0, t, 3, every_s=60), *closing("o3", t + 3 * HOUR)]
    got = run(e, AIR, stuck)
    flagged = [o for o in got.observations if o.rule.id == "air.o3.1h" and o.suspect]
    assert flagged, "exceedances measured by a flatlined sensor are suspect"
    assert any(o.rule.kind == "health" and o.exceeded for o in got.observations)


def test_nodes_without_classification_are_skipped_and_counted() -> None:
    e = engine()
    t = utc_ms("2026-07-01T12:00")
    bare = NodeInfo(site="x", node="n")
    run(e, bare, [*hours_of("o3", 80, t, 1), *closing("o3", t + HOUR), r("h2s", 10, t, 60)])
    assert e.skipped.get("no_air_zone", 0) >= 1 and e.skipped.get("no_odour_grade", 0) == 1


# -- windows closed in the node's clock; readings from the future ---------------------------


def test_the_last_day_is_closed_and_judged_when_its_node_says_it_is_done() -> None:
    day = utc_ms("2026-07-01T00:00")
    e = engine()
    readings = hours_of("pm2_5", 120, day, 24, every_s=3600)  # a 24-h analyser, all day
    got = run(e, AIR, readings)
    assert [w for w in got.windows if w.kind == "24h"] == []  # no later reading closes it
    until = e.clocks.drained("n")
    assert until == day + 24 * HOUR
    closed = e.close(AIR, until, until + 1000)
    (daily,) = [w for w in closed.windows if w.kind == "24h"]
    assert daily.valid and daily.value == 120 and not daily.revision
    (obs,) = only(closed, "air.pm2_5.24h")
    assert obs.exceeded and not obs.late  # judged at once: live
    assert [a.report for a in closed.aqi] == ["hour", "day"]
    assert e.close(AIR, until, until + 2000).windows == []  # closed once


def test_a_quiet_node_s_windows_close_lateness_after_their_end_by_its_clock() -> None:
    day = utc_ms("2026-07-01T00:00")
    e = engine()
    wall = day + 24 * HOUR + 5_000  # the last hourly reading arrives 5 s after it ended
    for h in range(24):
        e.evaluate(AIR, [r("pm2_5", 120, day + h * HOUR, 3600)], False, wall - (23 - h) * HOUR)
    lateness = 300_000
    assert [u for _, u in e.clocks.due(wall + lateness - 1)] == [day + 23 * HOUR]
    assert e.close(AIR, day + 23 * HOUR, wall + lateness - 1).windows == []
    ((_, until),) = e.clocks.due(wall + lateness)
    got = e.close(AIR, until, wall + lateness)
    assert {w.kind for w in got.windows} == {"1h", "24h"}
    assert not any(o.late for o in got.observations)  # within late_after_s: live


def test_readings_far_ahead_of_the_clock_are_counted_and_not_judged_at_all() -> None:
    now = utc_ms("2026-07-01T12:00")
    e = engine()
    ahead = now + 2 * HOUR  # more than max_future_s (1 h) ahead: a clock fault
    got = e.evaluate(AIR, [r("pm2_5", 900, ahead), r("h2s", 5000, ahead, 60)], False, now)
    odour = NodeInfo(site="x", node="n", odour_grade="II-new")
    got2 = e.evaluate(odour, [r("h2s", 5000, ahead, 60)], False, now)
    assert got.observations == [] and got2.observations == [] and got.windows == []
    assert e.future_readings == 3
    assert e.clocks.newest_ms("n") is None  # nor do they move the node's clock


def test_health_from_old_data_is_late() -> None:
    t = utc_ms("2013-03-01T00:00")
    e = engine()
    stuck = hours_of("o3", 250.0, t, 3, every_s=60)
    got = e.evaluate(AIR, stuck, False, utc_ms("2026-07-01T00:00"))
    health = [o for o in got.observations if o.rule.kind == "health"]
    assert health and all(o.late for o in health)

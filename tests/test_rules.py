"""The first standards rules, checked against hand-worked examples from the standards tables."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aggregator.fleet import NodeInfo
from aggregator.rules import Evaluator, LocalTime, Observation
from aggregator.standards import gb3095, gb3838
from schemas.messages import Reading
from schemas.quantities import SPECS, Quantity

LOCAL = LocalTime(utc_offset_h=8, day_starts_h=6, night_starts_h=22)


def utc_ms(local_iso: str) -> int:
    """Epoch ms of a China Standard Time wall-clock instant."""
    return int(datetime.fromisoformat(local_iso + "+08:00").astimezone(UTC).timestamp() * 1000)


def r(q: Quantity, value: float, ts: int, period_s: int = 60) -> Reading:
    spec = SPECS[q]
    return Reading(
        ts=ts,
        quantity=q,
        value=value,
        unit=spec.unit,
        period_s=period_s,
        stat=spec.default_stat,
        sensor="s",
    )


def hour_of(q: Quantity, value: float, start: int) -> list[Reading]:
    return [r(q, value, start + m * 60_000) for m in range(60)] + [r(q, 0.0, start + 3_600_000)]


def only(observations: list[Observation], rule: str) -> list[Observation]:
    return [o for o in observations if o.rule.id == rule]


def test_o3_hourly_mean_against_grade_ii_transition_limit() -> None:
    evaluator = Evaluator("2026", LOCAL)
    info = NodeInfo(site="x", node="n", air_zone=2)
    (obs,) = only(
        evaluator.evaluate(info, hour_of("o3", 210.0, utc_ms("2026-07-01T14:00")), False),
        "air.o3.1h",
    )
    assert obs.exceeded and obs.limit == 200 and obs.value == pytest.approx(210.0)
    assert obs.rule.standard == "GB 3095-2026" and obs.rule.clause == "Table 1 (transition)"


def test_grade_i_zone_uses_grade_i_limit() -> None:
    evaluator = Evaluator("2026", LOCAL)
    info = NodeInfo(site="x", node="n", air_zone=1)
    (obs,) = only(
        evaluator.evaluate(info, hour_of("o3", 180.0, utc_ms("2026-07-01T14:00")), False),
        "air.o3.1h",
    )
    assert obs.exceeded and obs.limit == 160


def test_so2_phase_follows_the_local_date() -> None:
    # 2030-12-31 23:00 local is the last transition hour (SO2 1-h Grade II 500); from
    # 2031-01-01 the final Grade II limit is 150 (GB 3095-2026 Table 1).
    assert gb3095.phase_for("2026", datetime(2030, 12, 31).date()) == "2026-transition"
    evaluator = Evaluator("2026", LOCAL)
    info = NodeInfo(site="x", node="n", air_zone=2)
    late_2030 = only(
        evaluator.evaluate(info, hour_of("so2", 300.0, utc_ms("2030-12-31T23:00")), False),
        "air.so2.1h",
    )
    assert [o.limit for o in late_2030] == [500]
    assert not late_2030[0].exceeded
    early_2031 = only(
        evaluator.evaluate(info, hour_of("so2", 300.0, utc_ms("2031-01-01T00:00")), False),
        "air.so2.1h",
    )
    assert [o.limit for o in early_2031] == [150] and early_2031[0].exceeded


def test_an_hour_with_less_than_45_minutes_is_not_evaluated() -> None:
    evaluator = Evaluator("2026", LOCAL)
    info = NodeInfo(site="x", node="n", air_zone=2)
    start = utc_ms("2026-07-01T14:00")
    readings = [r("no2", 500.0, start + m * 60_000) for m in range(44)]
    readings.append(r("no2", 0.0, start + 3_600_000))
    assert only(evaluator.evaluate(info, readings, False), "air.no2.1h") == []


def test_edition_2012_is_selectable() -> None:
    assert gb3095.limit("2012", "pm2_5", "24h", 2) == 75
    assert gb3095.limit("2026-transition", "pm2_5", "24h", 2) == 60
    assert gb3095.limit("2026-final", "pm2_5", "24h", 2) == 50
    assert gb3095.limit("2026-final", "pm2_5", "1h", 2) is None


def test_night_lamax_is_night_limit_plus_15() -> None:
    evaluator = Evaluator("2026", LOCAL)
    info = NodeInfo(site="x", node="n", noise_zone="2")  # night limit 50 -> 65
    (night,) = evaluator.evaluate(info, [r("lamax", 66.0, utc_ms("2026-07-01T23:30"))], False)
    assert night.exceeded and night.limit == 65
    (day,) = evaluator.evaluate(info, [r("lamax", 90.0, utc_ms("2026-07-01T12:00"))], False)
    assert not day.exceeded  # the burst rule applies at night only
    (dawn,) = evaluator.evaluate(info, [r("lamax", 66.0, utc_ms("2026-07-02T05:59"))], False)
    assert dawn.exceeded


def test_hourly_laeq_uses_day_or_night_limit_of_zone_4a() -> None:
    evaluator = Evaluator("2026", LOCAL)
    info = NodeInfo(site="x", node="n", noise_zone="4a")
    (obs,) = evaluator.evaluate(info, hour_of("laeq", 58.0, utc_ms("2026-07-01T23:00")), False)
    assert obs.exceeded and obs.limit == 55  # 4a night
    (obs,) = evaluator.evaluate(info, hour_of("laeq", 58.0, utc_ms("2026-07-02T10:00")), False)
    assert not obs.exceeded and obs.limit == 70  # 4a day


def test_odour_limits_by_grade_in_canonical_units() -> None:
    evaluator = Evaluator("2026", LOCAL)
    new = NodeInfo(site="x", node="n", odour_grade="II-new")
    existing = NodeInfo(site="x", node="n", odour_grade="II-existing")
    ts = utc_ms("2026-07-01T10:00")
    (a,) = evaluator.evaluate(new, [r("h2s", 80.0, ts)], False)
    (b,) = evaluator.evaluate(existing, [r("h2s", 80.0, ts)], False)
    assert (a.exceeded, a.limit) == (True, 60.0)  # 0.06 mg/m3
    assert (b.exceeded, b.limit) == (False, 100.0)  # 0.10 mg/m3
    (c,) = evaluator.evaluate(new, [r("odour", 25.0, ts)], False)
    assert (c.exceeded, c.limit) == (True, 20)


def test_water_single_factor_classes() -> None:
    assert gb3838.classify("tp", 0.06, "lake", 3).water_class == 4
    assert gb3838.classify("tp", 0.06, "river", 3).water_class == 2
    do = gb3838.classify("do", 4.5, "lake", 3)
    assert do.water_class == 4 and do.multiple == pytest.approx(0.1)
    assert gb3838.classify("ph", 9.5, "lake", 3).water_class == gb3838.WORSE_THAN_V
    assert gb3838.classify("nh3_n", 2.5, "river", 3).water_class == 6
    assert gb3838.classify("nh3_n", 1.5, "river", 3).multiple == pytest.approx(0.5)
    assert gb3838.classify("codmn", 4.0, "lake", 2).water_class == 2  # equal to limit: meets
    assert gb3838.class_name(6) == "劣V"


def test_water_rule_alerts_when_worse_than_target() -> None:
    evaluator = Evaluator("2026", LOCAL)
    lake = NodeInfo(site="x", node="n", water_body="lake", water_target=3)
    ts = utc_ms("2026-07-01T10:00")
    (obs,) = evaluator.evaluate(lake, [r("tp", 0.06, ts, 600)], False)
    assert obs.exceeded and obs.limit == 0.05 and "Class IV" in obs.message
    (obs,) = evaluator.evaluate(lake, [r("tn", 0.9, ts, 600)], False)
    assert not obs.exceeded
    river = NodeInfo(site="x", node="n", water_body="river", water_target=3)
    assert evaluator.evaluate(river, [r("tn", 3.0, ts, 600)], False) == []  # TN: lakes only


def test_bloom_levels() -> None:
    evaluator = Evaluator("2026", LOCAL)
    info = NodeInfo(site="x", node="n")
    observations = evaluator.evaluate(info, [r("chl_a", 12.0, utc_ms("2026-07-01T10:00"))], False)
    assert {o.rule.id: o.exceeded for o in observations} == {
        "bloom.chl_a.who_low": True,
        "bloom.chl_a.who_moderate": False,
    }


def test_nodes_without_classification_are_skipped_and_counted() -> None:
    evaluator = Evaluator("2026", LOCAL)
    info = NodeInfo(site="x", node="n")
    ts = utc_ms("2026-07-01T10:00")
    readings = [r("h2s", 500.0, ts), r("lamax", 100.0, ts), r("do", 1.0, ts), r("o3", 900.0, ts)]
    assert evaluator.evaluate(info, readings, False) == []
    assert evaluator.skipped == {
        "no_odour_grade": 1,
        "no_noise_zone": 1,
        "no_water_class": 1,
        "no_air_zone": 1,
    }


def test_late_flag_is_carried() -> None:
    evaluator = Evaluator("2026", LOCAL)
    info = NodeInfo(site="x", node="n", odour_grade="I")
    (obs,) = evaluator.evaluate(info, [r("nh3", 2000.0, utc_ms("2026-07-01T10:00"))], True)
    assert obs.late and obs.exceeded

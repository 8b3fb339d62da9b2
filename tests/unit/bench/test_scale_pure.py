"""bench/scale.py's pure parts: the seeded live load and the alert comparison."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench._alert_events import ALERTS_QUERY, AlertEvent, compare, parse_alerts
from bench._scale_load import (
    EXCEED_NO2,
    FIRST_MINUTE,
    HOUR_MS,
    MINUTES,
    NO2,
    LivePlan,
    due_wall_ms,
    expected_sums,
    journal_id,
    origin_for,
    payload,
    values,
)
from bench._scale_report import MB, Outcome, last_line
from bench._scale_run import CatchupResult, ChaosResult, Cost, LiveResult, NodeCheck
from bench._shapes import SAMPLE
from bench.scale import DRAIN_S, build_parser, deadlines
from schemas import codec
from schemas.standards import gb3095

ORIGIN = origin_for(1_796_367_000_000)


def test_origin_is_minute_fourteen_of_an_hour_in_the_past() -> None:
    now = 1_796_367_000_000
    assert ORIGIN % HOUR_MS == FIRST_MINUTE * 60_000
    assert now - HOUR_MS > ORIGIN


def test_payload_decodes_with_the_contract_and_carries_seq_and_journal() -> None:
    plan = LivePlan(nodes=50, origin_ms=ORIGIN)
    message = codec.READINGS.decode(payload(plan, 7, 3, exceeds=False, sent_ms=ORIGIN + 240_000))
    assert message.node == "n00007"
    assert message.seq == 4
    assert message.journal == journal_id("n00007")
    assert [r.quantity for r in message.readings] == [q.quantity for q in SAMPLE]
    assert {r.ts for r in message.readings} == {ORIGIN + 3 * 60_000}
    assert tuple(r.value for r in message.readings) == values(plan, 7, 3, exceeds=False)


def test_seeded_exceeders_are_a_tenth_and_the_same_for_the_same_seed() -> None:
    plan = LivePlan(nodes=1000, origin_ms=ORIGIN, seed=5)
    assert len(plan.exceeders()) == 100
    assert plan.exceeders() == LivePlan(nodes=1000, origin_ms=ORIGIN, seed=5).exceeders()
    assert plan.exceeders() != LivePlan(nodes=1000, origin_ms=ORIGIN, seed=6).exceeders()


def test_exceeders_are_over_the_no2_hour_limit_and_others_well_under() -> None:
    plan = LivePlan(nodes=20, origin_ms=ORIGIN)
    limits = [gb3095.limit(phase, "no2", "1h", 2) for phase in ("2012", "2026-transition")]
    limit = max(x for x in limits if x is not None)
    hot = [values(plan, 3, m, exceeds=True)[NO2] for m in range(plan.minutes)]
    cold = [values(plan, 3, m, exceeds=False)[NO2] for m in range(plan.minutes)]
    assert min(hot) > limit and limit < EXCEED_NO2
    assert max(cold) < limit / 2
    assert len(set(cold)) > 3  # never a flat line


def test_due_times_follow_the_event_clock_and_spread_nodes_within_a_minute() -> None:
    plan = LivePlan(nodes=100, origin_ms=ORIGIN)
    anchor = 1_000_000
    assert due_wall_ms(plan, 0, 0, anchor, rate=60.0) == anchor + 1000
    assert due_wall_ms(plan, 50, 0, anchor, rate=60.0) == anchor + 1500
    assert due_wall_ms(plan, 0, 9, anchor, rate=6.0) == anchor + 100_000


def test_expected_sums_add_every_value_sent() -> None:
    plan = LivePlan(nodes=3, origin_ms=ORIGIN, minutes=2)
    hot = plan.exceeders()
    sums = expected_sums(plan)
    for g in range(3):
        node = plan.node_id(g)
        assert sums[node] == sum(values(plan, g, 0, g in hot)) + sum(values(plan, g, 1, g in hot))


def _answer(rows: dict[tuple[str, str], list[list[object]]]) -> dict[str, object]:
    series = [
        {"name": "alerts", "tags": {"node": n, "rule": r}, "columns": ["time", "state", "event"],
         "values": values}
        for (n, r), values in rows.items()
    ]  # fmt: skip
    return {"results": [{"statement_id": 0, "series": series}]}


def test_parse_keeps_event_time_points_only() -> None:
    answer = _answer({
        ("n1", "air.no2.1h"): [[10, "firing", "fired"], [20, "firing", "renotified"]],
        ("n2", "aqi.hour"): [[30, "resolved", "resolved"], [40, "firing", "acknowledged"]],
    })  # fmt: skip
    assert parse_alerts(answer) == [
        AlertEvent("n1", "air.no2.1h", "fired", "firing", 10),
        AlertEvent("n2", "aqi.hour", "resolved", "resolved", 30),
    ]
    assert "alerts" in ALERTS_QUERY


def test_compare_finds_missing_extra_and_doubled() -> None:
    a = AlertEvent("n1", "air.no2.1h", "fired", "firing", 10)
    b = AlertEvent("n2", "air.no2.1h", "fired", "firing", 10)
    c = AlertEvent("n3", "aqi.hour", "fired", "firing", 10)
    assert compare([a, b], [b, a]).equal
    diff = compare([a, b], [b, c, c])
    assert diff.missing == (a,)
    assert diff.extra == (c, c)
    assert not compare([a], [a, a]).equal


def _live(replicas: int, alerts: list[AlertEvent], lost: int = 0) -> LiveResult:
    return LiveResult(
        replicas=replicas, replicas_real=True, batches=10, copies=12, acked=10, reconnects=0,
        stored=60 - lost, check=NodeCheck(lost, 0, 0), alerts=alerts,
        cost=Cost(agg_rss_peak=300 * MB), wall_s=1.0, chaos=None, complete=lost == 0,
    )  # fmt: skip


def test_last_line_reports_measured_values_and_unequal_alerts() -> None:
    plan = LivePlan(nodes=2000, origin_ms=ORIGIN)
    a = AlertEvent("n1", "air.no2.1h", "fired", "firing", 10)
    b = AlertEvent("n2", "air.no2.1h", "fired", "firing", 10)
    chaos = replace(_live(3, [a], lost=4), chaos=ChaosResult(4, 0, ()))
    catchup = CatchupResult(1000, 100, 100, 42.04, complete=True, replicas_real=True)
    outcome = Outcome(plan, 12.0, "nats", (_live(1, [a, b]), _live(3, [a, b])), chaos, catchup)
    assert last_line(outcome) == (
        "nodes=2000 replicas=3 lost=4 duplicated=0 alerts_equal=no catchup_s=42.0 "
        "broker_kill_lost=4 replica_kill_lost=0 rss_mb_per_1k_nodes=150.0"
    )


def test_no_alerts_at_all_is_not_equal_alerts() -> None:
    plan = LivePlan(nodes=1000, origin_ms=ORIGIN)
    outcome = Outcome(plan, 12.0, "nats", (_live(1, []), _live(2, [])), None, None)
    assert not outcome.alerts_equal
    assert "alerts_equal=no" in last_line(outcome)
    assert "catchup_s=n/a" in last_line(outcome)


def test_the_default_deadline_leaves_a_live_run_its_publishing_time_and_more() -> None:
    args = build_parser().parse_args([])
    rate = args.msgs_per_s * 60.0 / args.nodes  # 1.68 event s per wall s at the defaults
    live, catchup = deadlines(args.deadline, rate)
    publishing = MINUTES * 60.0 / rate  # 1,714 s
    assert live == pytest.approx(publishing + DRAIN_S) and catchup == DRAIN_S
    assert deadlines(2700.0, rate) == (2700.0, 2700.0)

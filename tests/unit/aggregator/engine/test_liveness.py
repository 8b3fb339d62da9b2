"""Deadman alerts: nodes offline by status or silence, quantities silent while their node
lives, arrival time (not event time) deciding whether a node talks, and snapshots."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.engine.liveness import (
    Liveness,
    LivenessSettings,
    LivenessSnapshotError,
    history_verdict,
)
from aggregator.engine.observations import Observation
from schemas.messages import ALERT_SCHEMA, Alert, Reading
from schemas.quantities import SPECS, Quantity

W0 = 1_790_000_000_000  # aggregator wall clock
E0 = 1_780_000_000_000  # node event time (a node draining a backlog sends older ts)
S = 1000
MIN = 60_000


def r(q: Quantity, ts: int, period_s: int = 60) -> Reading:
    spec = SPECS[q]
    return Reading(
        ts=ts, quantity=q, value=1.0, unit=spec.unit, period_s=period_s,
        stat=spec.default_stat, sensor="s",
    )  # fmt: skip


def feed(lv: Liveness, node: str, quantities: list[Quantity], minutes: range) -> None:
    """One message per minute, live: event time and arrival advance together."""
    for m in minutes:
        lv.seen_batch(node, [r(q, E0 + m * MIN) for q in quantities], W0 + m * MIN)


def states(obs: list[Observation]) -> list[tuple[str, str, bool]]:
    return [(o.node, o.rule.id, o.exceeded) for o in obs]


def test_a_node_never_heard_from_has_no_alerts() -> None:
    lv = Liveness()
    lv.status("ghost", online=False, at_ms=W0, reason="lost")  # a retained will
    assert lv.check(W0 + 86_400_000) == []
    assert lv.observations(W0) == []


def test_node_offline_after_more_than_the_silence_limit_and_back_on_data() -> None:
    lv = Liveness()
    lv.seen("n", r("pm2_5", E0), W0)
    assert lv.check(W0 + 300 * S) == []  # exactly the limit: not yet "more than"
    (fired,) = lv.check(W0 + 300 * S + 1)
    assert (fired.rule.id, fired.exceeded, fired.limit) == ("liveness.node", True, 300.0)
    assert fired.rule.kind == "liveness" and not fired.late and fired.at_ms == W0 + 300 * S + 1
    assert lv.check(W0 + 400 * S) == []  # no repeats while it stays offline
    assert lv.offline_nodes() == ["n"]
    lv.seen("n", r("pm2_5", E0 + 10 * MIN), W0 + 600 * S)
    (resolved,) = lv.check(W0 + 601 * S)
    assert (resolved.rule.id, resolved.exceeded, resolved.is_cleared) == (
        "liveness.node",
        False,
        True,
    )


def test_node_offline_by_status_until_an_online_status() -> None:
    lv = Liveness()
    lv.seen("n", r("pm2_5", E0), W0)
    lv.status("n", online=False, at_ms=W0 + S, reason="lost")
    (fired,) = lv.check(W0 + 2 * S)
    assert fired.exceeded and fired.message == "status offline (lost)"
    lv.status("n", online=True, at_ms=W0 + 30 * S)
    assert states(lv.check(W0 + 31 * S)) == [("n", "liveness.node", False)]


def test_readings_after_an_offline_status_resolve_it() -> None:
    lv = Liveness()
    lv.seen("n", r("pm2_5", E0), W0)
    lv.status("n", online=False, at_ms=W0 + S, reason="shutdown")
    assert states(lv.check(W0 + 2 * S)) == [("n", "liveness.node", True)]
    lv.seen("n", r("pm2_5", E0 + MIN), W0 + 3 * S)
    assert states(lv.check(W0 + 4 * S)) == [("n", "liveness.node", False)]


def test_a_backlog_drain_is_talking_even_with_hours_old_event_times() -> None:
    lv = Liveness()
    # Back after a 6-hour outage, the node drains its journal: event times are hours old,
    # arrivals are now. Judging by event time would call it dead.
    for i in range(30):
        lv.seen_batch("n", [r("pm2_5", E0 + i * MIN)], W0 + i * 20 * S)
        assert lv.check(W0 + i * 20 * S + S) == []


def test_quantity_silent_while_the_node_lives_then_back() -> None:
    lv = Liveness()
    feed(lv, "n", ["pm2_5", "no2"], range(5))
    feed(lv, "n", ["no2"], range(5, 20))  # the PM sensor died after minute 4
    # pm2_5 last arrived at minute 4, 900 s before minute 19: silent after more than that.
    assert lv.check(W0 + 19 * MIN) == []
    (silent,) = lv.check(W0 + 19 * MIN + 1)
    assert (silent.rule.id, silent.exceeded, silent.rule.quantity) == (
        "liveness.pm2_5.silent",
        True,
        "pm2_5",
    )
    assert silent.rule.unit == "ug/m3"
    feed(lv, "n", ["pm2_5", "no2"], range(20, 21))
    assert states(lv.check(W0 + 20 * MIN + S)) == [("n", "liveness.pm2_5.silent", False)]


def test_only_quantities_seen_before_can_fall_silent() -> None:
    lv = Liveness()
    feed(lv, "n", ["no2"], range(60))
    assert lv.check(W0 + 60 * MIN) == []
    assert {o.rule.id for o in lv.observations(W0 + 60 * MIN)} == {
        "liveness.node",
        "liveness.no2.silent",
    }


def test_a_dead_sensor_is_found_during_a_backlog_drain_by_event_time() -> None:
    lv = Liveness()
    feed(lv, "n", ["pm2_5", "no2"], range(5))
    # Live data goes first after an outage: no2 is current, and the dead PM sensor's old
    # readings keep arriving from the journal, so by arrival alone pm2_5 looks alive.
    for i in range(20):
        at = W0 + (5 + i) * MIN
        lv.seen_batch("n", [r("no2", E0 + 120 * MIN + i * MIN)], at)
        lv.seen_batch("n", [r("pm2_5", E0 + 4 * MIN)], at)  # its last reading, resent
    assert states(lv.check(W0 + 25 * MIN)) == [("n", "liveness.pm2_5.silent", True)]


def test_a_healthy_sensor_draining_a_backlog_is_not_silent() -> None:
    lv = Liveness()
    for i in range(20):
        at = W0 + i * MIN
        lv.seen_batch(
            "n", [r("no2", E0 + 120 * MIN + i * MIN), r("pm2_5", E0 + 120 * MIN + i * MIN)], at
        )
        lv.seen_batch("n", [r("pm2_5", E0 + i * MIN), r("no2", E0 + i * MIN)], at)  # backlog
        assert lv.check(at + S) == []


def test_slow_quantities_get_several_periods_before_silence() -> None:
    lv = Liveness()
    lv.seen_batch("n", [r("tp", E0, period_s=3600), r("ph", E0)], W0)
    feed(lv, "n", ["ph"], range(1, 180))
    assert lv.check(W0 + 179 * MIN) == []  # 3 h of silence is the limit for hourly tp
    assert states(lv.check(W0 + 3 * 3_600_000 + S)) == [("n", "liveness.tp.silent", True)]


def test_a_node_reporting_hourly_gets_three_hours() -> None:
    lv = Liveness()
    lv.seen("n", r("tp", E0, period_s=3600), W0)
    assert lv.check(W0 + 3 * 3_600_000) == []
    assert states(lv.check(W0 + 3 * 3_600_000 + 1)) == [("n", "liveness.node", True)]


def test_heartbeats_keep_a_node_alive_and_its_quantities_fall_silent() -> None:
    lv = Liveness()
    feed(lv, "n", ["pm2_5"], range(1))
    for m in range(1, 20):
        lv.status("n", online=True, at_ms=W0 + m * MIN)  # status every 60 s, no readings
    assert states(lv.check(W0 + 19 * MIN)) == [("n", "liveness.pm2_5.silent", True)]


def test_without_heartbeats_only_readings_or_a_return_keep_a_node_alive() -> None:
    lv = Liveness(LivenessSettings(status_is_heartbeat=False))
    lv.status("n", online=True, at_ms=W0)  # known from its first online status
    for m in range(1, 10):
        lv.status("n", online=True, at_ms=W0 + m * MIN)
    assert states(lv.check(W0 + 9 * MIN)) == [("n", "liveness.node", True)]
    lv.status("n", online=False, at_ms=W0 + 10 * MIN, reason="lost")
    lv.status("n", online=True, at_ms=W0 + 11 * MIN)  # it came back
    assert states(lv.check(W0 + 11 * MIN + S)) == [("n", "liveness.node", False)]


def test_quantities_hold_while_the_node_is_offline_and_get_grace_on_return() -> None:
    lv = Liveness()
    feed(lv, "n", ["pm2_5", "no2"], range(5))
    assert states(lv.check(W0 + 60 * MIN)) == [("n", "liveness.node", True)]  # no quantities
    lv.seen_batch("n", [r("no2", E0 + 61 * MIN)], W0 + 61 * MIN)  # back; pm2_5 not yet
    assert states(lv.check(W0 + 61 * MIN + S)) == [("n", "liveness.node", False)]
    lv.seen_batch("n", [r("pm2_5", E0 + 61 * MIN)], W0 + 61 * MIN + 30 * S)
    assert lv.check(W0 + 62 * MIN) == []


def test_a_sensor_that_does_not_return_with_its_node_is_silent_one_limit_later() -> None:
    lv = Liveness()
    feed(lv, "n", ["pm2_5", "no2"], range(5))
    assert states(lv.check(W0 + 60 * MIN)) == [("n", "liveness.node", True)]
    feed(lv, "n", ["no2"], range(61, 62))
    back = W0 + 61 * MIN + S
    assert states(lv.check(back)) == [("n", "liveness.node", False)]
    feed(lv, "n", ["no2"], range(62, 77))
    assert lv.check(back + 900 * S) == []
    assert states(lv.check(back + 900 * S + 1)) == [("n", "liveness.pm2_5.silent", True)]


def test_grace_restarts_every_silence_clock() -> None:
    lv = Liveness()
    feed(lv, "n", ["pm2_5"], range(1))
    lv.grace(W0 + 3_600_000)  # e.g. intake was paused for an hour
    assert lv.check(W0 + 3_600_000 + 300 * S) == []
    assert states(lv.check(W0 + 3_600_000 + 300 * S + 1)) == [("n", "liveness.node", True)]


def test_grace_and_return_never_clear_what_is_already_firing() -> None:
    lv = Liveness()
    feed(lv, "n", ["pm2_5", "no2"], range(5))
    feed(lv, "n", ["no2"], range(5, 21))
    assert states(lv.check(W0 + 20 * MIN)) == [("n", "liveness.pm2_5.silent", True)]
    # The node drops out, comes back without its PM sensor: no resolve-and-refire flap.
    assert states(lv.check(W0 + 40 * MIN)) == [("n", "liveness.node", True)]
    feed(lv, "n", ["no2"], range(41, 42))
    assert states(lv.check(W0 + 41 * MIN + S)) == [("n", "liveness.node", False)]
    # The aggregator restarts while the node is silent again: it stays offline.
    assert states(lv.check(W0 + 50 * MIN)) == [("n", "liveness.node", True)]
    restored = Liveness.restore(lv.snapshot(), now_ms=W0 + 60 * MIN)
    assert restored.check(W0 + 60 * MIN + S) == []
    assert restored.offline_nodes() == ["n"]
    # Only the sensor's own live reading clears it.
    feed(restored, "n", ["pm2_5", "no2"], range(61, 62))
    assert sorted(states(restored.check(W0 + 61 * MIN + S))) == [
        ("n", "liveness.node", False),
        ("n", "liveness.pm2_5.silent", False),
    ]


def as_alert(o: Observation) -> Alert:
    rule = o.rule
    alert = Alert(
        schema=ALERT_SCHEMA, node=o.node, rule=rule.id, kind=rule.kind,
        state="firing" if o.exceeded else "resolved", severity=rule.severity,
        standard=rule.standard, clause=rule.clause, window_s=rule.window_s, value=o.value,
        limit=o.limit, since_ms=o.at_ms, updated_ms=o.at_ms, message=o.message,
        quantity=rule.quantity, unit=rule.unit,
    )  # fmt: skip
    return msgspec.json.decode(msgspec.json.encode(alert), type=Alert)


def test_observations_make_valid_alerts() -> None:
    lv = Liveness()
    feed(lv, "n", ["pm2_5", "no2"], range(5))
    feed(lv, "n", ["no2"], range(5, 30))
    lv.status("m", online=True, at_ms=W0)
    obs = lv.check(W0 + 30 * MIN) + lv.observations(W0 + 30 * MIN)
    assert {(o.node, o.rule.id) for o in obs if o.exceeded} == {
        ("n", "liveness.pm2_5.silent"),
        ("m", "liveness.node"),
    }
    for o in obs:
        assert as_alert(o).kind == "liveness"


@pytest.mark.parametrize(
    "kw",
    [{"node_silence_s": 0}, {"quantity_silence_s": -1}, {"silence_periods": 0.5}],
)
def test_bad_settings_are_refused(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        LivenessSettings(**kw)  # type: ignore[arg-type]


# An operation on a Liveness: a reading batch, a status, or a check, at a wall-clock offset.
ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("seen"),
            st.sampled_from(["a", "b"]),
            st.lists(st.sampled_from(["pm2_5", "no2", "tp"]), min_size=1, max_size=3),
            st.integers(-600, 600),  # event-time offset, minutes
            st.sampled_from([60, 3600]),
        ),
        st.tuples(st.just("status"), st.sampled_from(["a", "b", "c"]), st.booleans()),
        st.tuples(st.just("check")),
    ),
    max_size=40,
)


def play(lv: Liveness, steps: list[tuple[object, ...]], start_ms: int) -> list[Observation]:
    out: list[Observation] = []
    for i, step in enumerate(steps):
        now = start_ms + i * 97 * S
        if step[0] == "seen":
            _, node, qs, minute, period = step
            ts = E0 + int(minute) * MIN  # type: ignore[call-overload]
            lv.seen_batch(str(node), [r(q, ts, int(period)) for q in qs], now)  # type: ignore[attr-defined, call-overload]
        elif step[0] == "status":
            lv.status(str(step[1]), online=bool(step[2]), at_ms=now, reason="lost")
        else:
            out += lv.check(now)
    return out


@given(ops, ops)
def test_restore_round_trip(
    before: list[tuple[object, ...]], after: list[tuple[object, ...]]
) -> None:
    lv = Liveness()
    play(lv, before, W0)
    data = lv.snapshot()
    resumed = W0 + len(before) * 97 * S
    restored = Liveness.restore(data, now_ms=resumed)
    assert restored.snapshot() == data
    lv.grace(resumed)  # what restore does for the restart
    assert play(restored, after, resumed) == play(lv, after, resumed)
    assert restored.observations(resumed) == lv.observations(resumed)


@given(st.binary(max_size=200))
def test_corrupt_snapshot_raises_its_own_error(data: bytes) -> None:
    with pytest.raises(LivenessSnapshotError):
        Liveness.restore(data, now_ms=W0)


def test_truncated_or_foreign_snapshot_raises_its_own_error() -> None:
    lv = Liveness()
    feed(lv, "n", ["pm2_5"], range(3))
    data = lv.snapshot()
    with pytest.raises(LivenessSnapshotError):
        Liveness.restore(data[:-3], now_ms=W0)
    foreign = msgspec.msgpack.encode({"schema": "envnet.health-state/1", "nodes": {}})
    with pytest.raises(LivenessSnapshotError):
        Liveness.restore(foreign, now_ms=W0)


# -- history: replays judged in their own clock ---------------------------------------------

OLD = 1_362_067_200_000  # 2013-03-01 00:00 CST: a replay's original timestamps
HOUR = 3_600_000


def replayed(q: Quantity, ts: int) -> Reading:
    return msgspec.structs.replace(r(q, ts, 3600), flags=("replayed",))


def replay_rows(lv: Liveness, rows: range, missing_co: range = range(0)) -> None:
    """A replay at 3600x: one hourly row a second, flagged, its history verdict with it."""
    for h in rows:
        batch = [replayed("pm2_5", OLD + h * HOUR)]
        if h not in missing_co:
            batch.append(replayed("co", OLD + h * HOUR))
        verdict = history_verdict(batch, W0 + h * S, backlog=False, history_after_s=900)
        lv.seen_batch("n", batch, W0 + h * S, verdict)


def test_history_verdicts() -> None:
    now = W0
    current = [r("pm2_5", now - MIN)]
    old = [r("pm2_5", now - 2 * HOUR)]
    assert history_verdict(current, now, backlog=False, history_after_s=900) is False
    assert history_verdict(old, now, backlog=False, history_after_s=900) is True
    assert history_verdict([replayed("pm2_5", now)], now, backlog=False, history_after_s=900)
    # A live node's own backlog is old by nature: it tells nothing.
    assert history_verdict(old, now, backlog=True, history_after_s=900) is None
    assert history_verdict([replayed("pm2_5", OLD)], now, True, history_after_s=900) is True


def test_a_gap_in_replayed_history_is_not_a_silent_sensor_now() -> None:
    lv = Liveness()
    # Three days of 2013 with the CO analyser out for 33 hours, replayed well after any
    # grace: by event time CO is 33 h behind the node's newest reading.
    start = W0 + 3 * HOUR
    for h in range(72):
        batch = [replayed("pm2_5", OLD + h * HOUR)]
        if not 20 <= h < 53:
            batch.append(replayed("co", OLD + h * HOUR))
        lv.seen_batch("n", batch, start + h * S, True)
        assert lv.check(start + h * S) == [], h


def test_the_same_gap_in_a_live_node_is_found() -> None:
    """The control: current data with the same gap does make CO silent."""
    lv = Liveness()
    feed(lv, "n", ["pm2_5", "co"], range(5))
    feed(lv, "n", ["pm2_5"], range(5, 40))
    assert ("n", "liveness.co.silent", True) in states(lv.check(W0 + 40 * MIN))


def test_a_replay_that_shuts_down_cleanly_has_finished_not_failed() -> None:
    lv = Liveness()
    replay_rows(lv, range(48))
    lv.status("n", online=False, at_ms=W0 + 60 * S, reason="shutdown")
    assert lv.check(W0 + 61 * S) == []
    assert lv.check(W0 + 86_400_000) == []  # nor silent for a day after
    assert lv.offline_nodes() == []


def test_a_replay_that_dies_is_offline_until_it_shuts_down_cleanly() -> None:
    lv = Liveness()
    replay_rows(lv, range(48))
    lv.status("n", online=False, at_ms=W0 + 60 * S, reason="lost")  # killed: its will
    assert states(lv.check(W0 + 61 * S)) == [("n", "liveness.node", True)]
    lv.status("n", online=True, at_ms=W0 + 120 * S)  # restarted, then ends cleanly
    lv.status("n", online=False, at_ms=W0 + 130 * S, reason="shutdown")
    (resolved,) = lv.check(W0 + 131 * S)
    assert not resolved.exceeded and "replay finished" in resolved.message


def test_a_live_node_s_clean_shutdown_still_means_offline() -> None:
    lv = Liveness()
    feed(lv, "n", ["pm2_5"], range(3))
    lv.seen_batch("n", [r("pm2_5", W0 + 3 * MIN)], W0 + 4 * MIN, False)
    lv.status("n", online=False, at_ms=W0 + 5 * MIN, reason="shutdown")
    assert states(lv.check(W0 + 5 * MIN + S)) == [("n", "liveness.node", True)]


def test_a_snapshot_from_before_history_was_kept_restores() -> None:
    lv = Liveness()
    feed(lv, "n", ["pm2_5"], range(3))
    raw = msgspec.msgpack.decode(lv.snapshot())
    raw["nodes"] = {node: fields[:-1] for node, fields in raw["nodes"].items()}
    restored = Liveness.restore(msgspec.msgpack.encode(raw), now_ms=W0)
    assert restored.observations(W0) == lv.observations(W0)

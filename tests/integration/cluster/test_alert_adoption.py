"""Open alerts follow a node to a replica that does not share its state file
(aggregator.engine.adoption, docs/cluster/replicas.md), on real mosquitto and influxd with
real `envnet aggregator` processes.

One replica runs until four nodes have an open aqi.hour alert and stops. Then replicas 0/2
and 1/2 start as on two hosts: each with a state directory of its own, fresh, so no node's
new owner has a local track. Each adopts its nodes' open alerts from the stored `alerts`
points; the rest of the readings follow. The stored fired/resolved events must be exactly
one replica's (no second `fired` for a moved node, and its `resolved` written), no fired
event is published again, and the retained alert states end as the episodes say.

Nothing sleeps to wait for an event: every wait polls with a deadline.
"""

from __future__ import annotations

from pathlib import Path

from schemas import codec, topics
from simulators.local_stack import Influxd, Mosquitto
from tests.support.harness import MqttProbe, wait_for
from tests.support.replicas import (
    EPISODES,
    HOUR_MS,
    HOURS,
    Site,
    alert_rows,
    discard_session,
    expected_alerts,
    feeds,
    log_clean,
    metric,
    origin,
    other_alert_events,
    owners,
    start_replica,
)

RULE = "aqi.hour"


def retained_states(port: int, count: int) -> dict[str, tuple[str, int]]:
    """(state, since_ms) of the `count` retained aqi.hour alert states a new subscriber gets."""
    probe = MqttProbe(port, [f"{topics.PREFIX}/alerts/+/{RULE.replace('.', '/')}"]).start()
    try:
        wait_for(lambda: len(probe.on(lambda t: True)) >= count, 10, "retained alert states")
        states: dict[str, tuple[str, int]] = {}
        for payload in probe.on(lambda t: True):
            alert = codec.ALERT.decode(payload)
            states[alert.node] = (alert.state, alert.since_ms)
        return states
    finally:
        probe.stop()


def test_open_alerts_follow_their_nodes_to_replicas_on_other_hosts(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    t0 = origin()
    split = owners(2)
    influxd.query('CREATE DATABASE "adopt"')

    def host(name: str) -> Site:
        # One deployment (broker, database, client id), each host its own state directory.
        return Site(tmp_path / name, mosquitto.url, influxd.url, "adopt", "agg-adopt")

    # Hours 0-3 into one replica: hours 0-2 are judged, four episodes are open.
    open_at_move = {n: e[0] for n, e in EPISODES.items() if e is not None and e[0] <= 2}
    assert {i for i in (0, 1) for n in open_at_move if n in split[i]} == {0, 1}, split
    with feeds(mosquitto.port, t0) as fleet:
        solo = start_replica(host("old-host"), "0/1")
        try:
            fleet.publish_hours(list(EPISODES), range(1, 5))
            fleet.wait_acked(list(EPISODES))
            fired = sorted(
                (n, RULE, "fired", t0 + first * HOUR_MS, 200.0, False, False)
                for n, first in open_at_move.items()
            )
            wait_for(lambda: alert_rows(influxd.url, "adopt") == fired, 30, "four open alerts")
        finally:
            solo.stop()
        assert log_clean(solo)()
        # Nothing is sent while nobody runs: the old session has nothing to hand on.
        discard_session(mosquitto.port, "agg-adopt")

        events = MqttProbe(mosquitto.port, [topics.ALERT_EVENTS]).start()
        r0 = start_replica(host("host-a"), "0/2")
        try:
            r1 = start_replica(host("host-b"), "1/2")
            try:
                for index, replica in enumerate((r0, r1)):
                    mine = [n for n in open_at_move if n in split[index]]
                    assert metric(replica, "envnet_alerts_adopted_total", how="adopted") == len(
                        mine
                    )
                    assert "alert_tracks_adopted" in replica.log_path.read_text(encoding="utf-8")
                    assert (
                        metric(replica, "envnet_state_saves_total", what="alert_adoption_failed")
                        == 0
                    )
                # Republished at start: the adopted alerts' retained states say firing.
                states = retained_states(mosquitto.port, len(open_at_move))
                assert states == {
                    n: ("firing", t0 + first * HOUR_MS) for n, first in open_at_move.items()
                }
                fleet.publish_hours(list(EPISODES), range(5, HOURS + 1))
                fleet.wait_acked(list(EPISODES))
                wait_for(
                    lambda: alert_rows(influxd.url, "adopt") == expected_alerts(t0),
                    45,
                    "one replica's alerts across the move",
                )
                # The event stream: the new layout's events alone, no second fire. Each is
                # published after its retained state, so once all are seen, those are set.
                after_move = sorted(
                    (event, node)
                    for node, _, event, *_ in expected_alerts(t0)
                    if not (event == "fired" and node in open_at_move)
                )

                def published() -> list[tuple[str, str]]:
                    found = [codec.ALERT_EVENT.decode(p) for p in events.on(lambda t: True)]
                    return sorted((e.event, e.alert.node) for e in found)

                wait_for(lambda: published() == after_move, 30, "the new layout's events")
            finally:
                r1.stop()
        finally:
            r0.stop()
            events.stop()
        assert log_clean(r0)() and log_clean(r1)()
        assert published() == after_move  # nothing fired again up to the end
    assert other_alert_events(influxd.url, "adopt") == []
    # The retained states end as the episodes do: resolved, but the one still under way.
    episodes = {n: e for n, e in EPISODES.items() if e is not None}
    final = retained_states(mosquitto.port, len(episodes))
    assert final == {
        n: ("firing" if e[1] > HOURS - 2 else "resolved", t0 + e[0] * HOUR_MS)
        for n, e in episodes.items()
    }

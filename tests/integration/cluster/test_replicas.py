"""Partitioned aggregator replicas (docs/cluster/replicas.md) on real mosquitto and influxd,
each replica a real `envnet aggregator` process with ENVNET_REPLICA="i/N".

1. Two replicas split a fleet of 8 nodes (6 with PM2.5 episodes): every reading is stored
   exactly once, each replica stores and acks its own nodes only (while one is down, the
   other's nodes alone are acked, and the stopped one's persistent session keeps its
   nodes' readings), and the `alerts` points are the same, event by event, as one
   replica's on the same seeded input (and as the episodes say they must be).
2. Rolling restarts from one replica to two and from two to one, in the documented order,
   mid-episode: the readings the layout's gaps left unacked are sent again (as an edge does)
   and stored once; alerts fired before the change are resolved after it by the node's new
   owner.
3. A real edge agent whose owner is not running yet: its first batches reach no
   subscriber, and its own resend (edge/resend.py) delivers them once the owner is up.

Nothing sleeps to wait for an event: every wait polls with a deadline.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from aggregator.cluster.partition import Replica
from schemas import codec
from schemas.messages import ALERT_COMMAND_SCHEMA, AlertCommand
from simulators.local_stack import EnvnetAggregator, Influxd, Mosquitto
from tests.support.edge_harness import drain_and_stop, node_config, running_agent
from tests.support.harness import MqttProbe, wait_for
from tests.support.replicas import (
    EPISODES,
    HOURS,
    NODES,
    READINGS_PER_MESSAGE,
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
    stored_per_node,
)

ALL_HOURS = range(1, HOURS + 1)


@contextlib.contextmanager
def stopping(*aggs: EnvnetAggregator) -> Iterator[list[EnvnetAggregator]]:
    """Stops `aggs` and whatever the block appends to the list it is given (a replica
    restarted inside the block), so no test leaves an aggregator process running."""
    running = list(aggs)
    try:
        yield running
    finally:
        for agg in running:
            agg.stop()


def site(tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, name: str) -> Site:
    influxd.query(f'CREATE DATABASE "{name}"')
    return Site(tmp_path / name, mosquitto.url, influxd.url, name, f"agg-{name}")


def every_reading_once(influxd: Influxd, database: str) -> dict[str, int]:
    return stored_per_node(influxd.url, database)


def test_two_replicas_split_the_fleet_and_raise_the_same_alerts_as_one(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    t0 = origin()
    split = owners(2)
    assert len(split[0]) >= 2 and len(split[1]) >= 2, split  # the seeded ids split both ways
    full = {node: HOURS * READINGS_PER_MESSAGE for node in NODES}

    # One replica: the reference.
    single = site(tmp_path, mosquitto, influxd, "single")
    with feeds(mosquitto.port, t0) as fleet:
        one = start_replica(single, "0/1")
        with stopping(one):
            fleet.publish_hours(NODES, ALL_HOURS)
            fleet.wait_acked(NODES)
            wait_for(lambda: every_reading_once(influxd, "single") == full, 30, "stored")
            wait_for(
                lambda: alert_rows(influxd.url, "single") == expected_alerts(t0),
                30,
                "one replica's alerts",
            )
            assert metric(one, "envnet_readings_stored_total") == sum(full.values())
            assert metric(one, "envnet_replica_nodes") == len(NODES)
        assert log_clean(one)()
    discard_session(mosquitto.port, single.client_id)  # it would queue phase 2 for nobody

    # Two replicas on the same input.
    pair = site(tmp_path, mosquitto, influxd, "pair")
    with feeds(mosquitto.port, t0) as fleet:
        r0, r1 = start_replica(pair, "0/2"), start_replica(pair, "1/2")
        with stopping(r0, r1) as running:
            assert metric(r1, "envnet_replica_info", index="1", count="2") == 1
            assert metric(r0, "envnet_replica_nodes") == len(split[0])
            assert metric(r1, "envnet_replica_nodes") == len(split[1])
            # Replica 1 stops; its persistent session keeps its nodes' readings meanwhile.
            r1.stop()
            fleet.publish_hours(NODES, ALL_HOURS)
            fleet.wait_acked(split[0])
            # Replica 0 has handled everything it was sent: nothing of replica 1's nodes.
            wait_for(
                lambda: (
                    metric(r0, "envnet_readings_stored_total")
                    == len(split[0]) * HOURS * READINGS_PER_MESSAGE
                ),
                30,
                "replica 0's readings stored",
            )
            assert all(not fleet.acked(node) for node in split[1]), "replica 0 acked r1's nodes"
            assert set(every_reading_once(influxd, "pair")) == set(split[0])
            assert metric(r0, "envnet_replica_foreign_messages_total", kind="readings") == 0
            assert metric(r0, "envnet_acks_sent_total") >= 1
            r1 = start_replica(pair, "1/2", name="r1of2-again")
            running.append(r1)
            fleet.wait_acked(split[1])  # from its session, without a resend
            wait_for(lambda: every_reading_once(influxd, "pair") == full, 30, "stored")
            assert metric(r1, "envnet_readings_stored_total") == (
                len(split[1]) * HOURS * READINGS_PER_MESSAGE
            )
            assert metric(r0, "envnet_readings_stored_total") == (
                len(split[0]) * HOURS * READINGS_PER_MESSAGE
            )
            wait_for(
                lambda: alert_rows(influxd.url, "pair") == alert_rows(influxd.url, "single"),
                30,
                "the same alerts as one replica",
            )
            # An operator's ack reaches every replica; the node's owner alone acts on it.
            owner, other = (r1, r0) if "rep-gusu-2" in split[1] else (r0, r1)
            ack = AlertCommand(ALERT_COMMAND_SCHEMA, "ack", "rep-gusu-2", "aqi.hour", "ops")
            fleet.command(codec.ALERT_COMMAND.encode(ack))
            fleet.command(b"not a command")  # names no node: replica 0 alone counts it
            wait_for(
                lambda: metric(owner, "envnet_alert_commands_total", result="accepted") == 1,
                30,
                "the ack accepted by the owner",
            )
            wait_for(
                lambda: metric(r0, "envnet_alert_commands_total", result="invalid") == 1,
                30,
                "the bad command counted",
            )
            wait_for(
                lambda: other_alert_events(influxd.url, "pair") == ["acknowledged"],
                30,
                "one acknowledged point",
            )
            for result in ("accepted", "refused"):
                assert metric(other, "envnet_alert_commands_total", result=result) == 0
            # A status on a topic that names no valid node: replica 0 alone refuses it.
            fleet.client.publish("envnet/v1/nodes/Not.A.Node/status", b"{}", qos=1)
            wait_for(
                lambda: metric(r0, "envnet_refused_total", reason="bad_topic") == 1,
                30,
                "the bad status topic refused by replica 0",
            )
            assert metric(r1, "envnet_refused_total", reason="bad_topic") == 0
            assert metric(r1, "envnet_alert_commands_total", result="invalid") == 0
        assert log_clean(r0)() and log_clean(r1)()
    assert alert_rows(influxd.url, "pair") == expected_alerts(t0)


def test_a_rolling_restart_from_one_replica_to_two_keeps_readings_and_alerts_right(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    t0 = origin()
    split = owners(2)
    # Episodes that straddle the change on both sides: fired by the one replica, resolved
    # after it by the node's owner in the new layout (it must find the open alert).
    # (Fired by hour 2, judged before the change; resolved from hour 5, judged after it.)
    straddling = [n for n, e in EPISODES.items() if e is not None and e[0] <= 2 and e[1] >= 5]
    assert {i for i in (0, 1) for n in straddling if n in split[i]} == {0, 1}, split
    full = {node: HOURS * READINGS_PER_MESSAGE for node in NODES}
    roll = site(tmp_path, mosquitto, influxd, "roll")
    with feeds(mosquitto.port, t0) as fleet:
        solo = start_replica(roll, "0/1")
        with stopping(solo):
            fleet.publish_hours(NODES, range(1, 5))  # hours 0-3: episodes under way
            fleet.wait_acked(NODES)
            wait_for(lambda: len(alert_rows(influxd.url, "roll")) >= 4, 30, "alerts fired before")
        fired_before = alert_rows(influxd.url, "roll")
        # The documented order for 1 -> 2: restart replica 0 as 0/2 (it keeps its session,
        # drops the wildcard and replica 1's nodes), then start replica 1.
        fleet.publish_hours(NODES, range(5, 6))  # while nobody runs: queued for session 0
        r0 = start_replica(roll, "0/2")
        with stopping(r0):
            fleet.publish_hours(NODES, range(6, 7))  # replica 1's nodes: no subscriber yet
            fleet.wait_acked(split[0])
            r1 = start_replica(roll, "1/2")
            with stopping(r1):
                resent = fleet.resend_until_acked(split[1])
                assert resent >= len(split[1])  # hours 4 and 5 of each of its nodes
                fleet.publish_hours(NODES, range(7, HOURS + 1))
                fleet.wait_acked(NODES)
                wait_for(lambda: every_reading_once(influxd, "roll") == full, 30, "stored")
                wait_for(
                    lambda: alert_rows(influxd.url, "roll") == expected_alerts(t0),
                    30,
                    "the episodes' alerts across the change",
                )
                # Hour 4's queued copy of replica 1's nodes reached replica 0, which left
                # it alone: neither stored nor acked there.
                foreign = metric(r0, "envnet_replica_foreign_messages_total", kind="readings")
                assert foreign == len(split[1])
        assert log_clean(r0)() and log_clean(r1)()
    assert set(fired_before) < set(expected_alerts(t0))
    assert other_alert_events(influxd.url, "roll") == []


def test_a_rolling_restart_from_two_replicas_to_one_keeps_readings_and_alerts_right(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    t0 = origin()
    split = owners(2)
    full = {node: HOURS * READINGS_PER_MESSAGE for node in NODES}
    shrink = site(tmp_path, mosquitto, influxd, "shrink")
    with feeds(mosquitto.port, t0) as fleet:
        r0, r1 = start_replica(shrink, "0/2"), start_replica(shrink, "1/2")
        with stopping(r0, r1):
            fleet.publish_hours(NODES, range(1, 5))
            fleet.wait_acked(NODES)
            wait_for(lambda: len(alert_rows(influxd.url, "shrink")) >= 4, 30, "alerts fired before")
            # The documented order for 2 -> 1: stop replica 1 (its nodes are unowned for a
            # while), then restart replica 0 as 0/1.
            r1.stop()
            fleet.publish_hours(NODES, range(5, 6))  # replica 1's nodes: into its session
            fleet.wait_acked(split[0])
            r0.stop()
        discard_session(mosquitto.port, f"{shrink.client_id}-r1")  # step 4, done early here
        solo = start_replica(shrink, "0/1")
        with stopping(solo):
            resent = fleet.resend_until_acked(split[1])
            assert resent >= len(split[1])  # hour 4 of each: the discarded session had it
            fleet.publish_hours(NODES, range(6, HOURS + 1))
            fleet.wait_acked(NODES)
            wait_for(lambda: every_reading_once(influxd, "shrink") == full, 30, "stored")
            wait_for(
                lambda: alert_rows(influxd.url, "shrink") == expected_alerts(t0),
                30,
                "the episodes' alerts across the change",
            )
            assert metric(solo, "envnet_replica_nodes") == len(NODES)
            assert metric(solo, "envnet_mqtt_subscriptions") == 3
        assert log_clean(solo)()
    assert other_alert_events(influxd.url, "shrink") == []


def test_an_edge_resends_what_it_published_before_its_owner_subscribed(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    split = owners(2)
    node = split[1][0]
    edge = site(tmp_path, mosquitto, influxd, "edge")

    def stored() -> int:
        return every_reading_once(influxd, "edge").get(node, 0)

    config = node_config(node, mosquitto.url, tmp_path, ack_timeout_s=1.0)
    r0 = start_replica(edge, "0/2")
    with stopping(r0), running_agent(config, 1_796_000_000_000) as run:
        probe = MqttProbe(mosquitto.port, [f"envnet/v1/nodes/{node}/readings"]).start()
        # Replica 1 is not running and never ran: nobody reads this node's readings yet.
        wait_for(lambda: len(probe.on(lambda t: True)) >= 3, 30, "three publishes")
        assert stored() == 0 and run.agent.journal_depth > 0
        r1 = start_replica(edge, "1/2")
        with stopping(r1):
            wait_for(lambda: run.producer.count() >= 30, 45, "thirty readings sampled")
            drain_and_stop(run, 45, "the journal drained to replica 1")
            wait_for(lambda: stored() == run.producer.count(), 30, "every reading stored")
            # Read while both run (a stopped process has no metrics): replica 0 saw none.
            assert metric(r0, "envnet_readings_received_total") == 0
            assert metric(r0, "envnet_replica_nodes") == len(split[0])
            assert metric(r1, "envnet_readings_stored_total") == run.producer.count()
        probe.stop()
    seqs = [int(p.split(b'"seq":')[1].split(b",")[0]) for p in probe.on(lambda t: True)]
    assert len(seqs) > len(set(seqs)), "nothing was sent again"


def test_a_new_node_is_found_by_its_status_and_its_readings_reach_its_owner(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    """A node not in the inventory yet: its owner learns of it from its retained status and
    subscribes (its readings are refused, unknown_node, and stay in its journal); once the
    inventory lists it (hot reload), the edge's resends are stored, every reading once."""
    split = owners(2)
    node = next(n for n in (f"rep-new-{i}" for i in range(50)) if Replica(1, 2).owns(n))
    grown = site(tmp_path, mosquitto, influxd, "grown")

    def stored() -> int:
        return every_reading_once(influxd, "grown").get(node, 0)

    r0, r1 = start_replica(grown, "0/2"), start_replica(grown, "1/2")
    config = node_config(node, mosquitto.url, tmp_path, ack_timeout_s=1.0)
    with stopping(r0, r1), running_agent(config, 1_796_000_000_000) as run:
        wait_for(
            lambda: metric(r1, "envnet_mqtt_subscriptions") == 2 + len(split[1]) + 1,
            30,
            "replica 1 subscribed to the new node from its status",
        )
        agent = run.agent
        wait_for(
            lambda: agent.last_refusal is not None and agent.last_refusal.kind == "readings",
            30,
            "its readings refused (and told so) while it is not in the inventory",
        )
        assert metric(r1, "envnet_refused_total", reason="unknown_node") >= 1
        refused = run.producer.count()
        assert refused > 0 and stored() == 0
        fleet_path = grown.directory / "fleet.toml"
        fleet_path.write_text(
            fleet_path.read_text(encoding="utf-8") + f'[nodes.{node}]\nsite = "New"\n',
            encoding="utf-8",
        )
        wait_for(
            lambda: metric(r1, "envnet_replica_nodes") == len(split[1]) + 1,
            30,
            "the inventory reloaded",
        )
        # What was refused stayed in the journal, and its resends are stored now.
        wait_for(lambda: stored() >= refused, 45, "the refused readings stored")
        drain_and_stop(run, 30, "the journal drained to replica 1")
        wait_for(lambda: stored() == run.producer.count(), 30, "every reading stored")
        wait_for(lambda: metric(r0, "envnet_replica_nodes") == len(split[0]), 10, "r0 reloaded")
        assert metric(r0, "envnet_mqtt_subscriptions") == 2 + len(split[0])
        assert metric(r0, "envnet_refused_total", reason="unknown_node") == 0
        assert metric(r0, "envnet_replica_foreign_messages_total", kind="status") >= 1
        assert metric(r0, "envnet_readings_received_total") == 0

"""Edge agents on a real broker, with the real aggregator and influxd: journal until ack,
outages drained live-first, every reading stored exactly once."""

from __future__ import annotations

from pathlib import Path

from aggregator.fleet import Fleet, NodeInfo
from edge.journal import Journal
from schemas import codec
from simulators.local_stack import Influxd, Mosquitto
from tests.support.edge_harness import drain_and_stop, node_config, running_agent
from tests.support.harness import MqttProbe, aggregator_config, count, running_aggregator, wait_for

FLEET = Fleet({"edge-1": NodeInfo(site="Test")})
START = 1_796_000_000_000


def stored(influxd: Influxd) -> int:
    return count(influxd, "SELECT count(value) FROM readings WHERE node='edge-1'")


def test_journal_keeps_readings_until_the_aggregator_acks(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    config = node_config("edge-1", mosquitto.url, tmp_path, ack_timeout_s=1.0)
    with running_agent(config, START) as run:
        # No aggregator yet: readings are published but nobody acks, so they stay.
        wait_for(lambda: run.agent.published_batches >= 3, 20, "three published batches")
        assert run.agent.journal_depth >= 6
        with running_aggregator(aggregator_config(mosquitto, influxd.url, tmp_path), FLEET):
            # Batches sent before the aggregator subscribed were lost by the broker; the
            # node's resend after its ack timeout recovers them.
            wait_for(lambda: run.producer.count() >= 10, 30, "ten readings sampled")
            drain_and_stop(run, 30)
            wait_for(lambda: stored(influxd) == run.producer.count(), 20, "all readings stored")
    assert Journal(tmp_path / "edge-1.sqlite", 10**9, 10**9).depth() == 0


def test_broker_outage_is_drained_live_first_and_nothing_is_lost(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    config = node_config("edge-1", mosquitto.url, tmp_path, report_s=5)
    with (
        running_aggregator(aggregator_config(mosquitto, influxd.url, tmp_path), FLEET),
        running_agent(config, START, accel=20.0) as run,
    ):
        wait_for(lambda: stored(influxd) >= 4, 20, "first readings stored")
        mosquitto.stop()
        produced_before = run.producer.count()
        wait_for(lambda: run.producer.count() >= produced_before + 40, 30, "offline readings")
        mosquitto.start()
        probe = MqttProbe(mosquitto.port, ["envnet/v1/nodes/edge-1/readings"]).start()
        wait_for(lambda: run.agent.journal_depth == 0, 60, "backlog drained")
        run.halt()
        wait_for(lambda: stored(influxd) == run.producer.count(), 30, "every reading stored")
        probe.stop()
    flags = [codec.READINGS.decode(p).backlog for p in probe.on(lambda t: True)]
    assert True in flags, "no backlog was drained"
    last_backlog = len(flags) - 1 - flags[::-1].index(True)
    assert False in flags[:last_backlog], "live data waited behind the whole backlog"

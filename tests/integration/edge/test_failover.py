"""Edge failover between two independent mosquitto brokers (issue 13): the edge and the
aggregator both list [A, B]; A is SIGKILLed mid-stream, both move to B, and every reading
is stored exactly once with the journal drained. Then A comes back and, after return_home_s,
the edge (and the aggregator) are on A again, still losing nothing.

The two brokers share nothing (no bridge): a reading reaches the aggregator only while both
are on the same broker, so "stored == sampled" also proves the aggregator followed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from aggregator.config import AggregatorConfig
from aggregator.fleet import Fleet, NodeInfo
from edge.config import EdgeConfig
from edge.journal import Journal
from edge.link import MqttLink
from schemas import codec, topics
from simulators.local_stack import Influxd, Mosquitto
from tests.support.edge_harness import RunningAgent, node_config, running_agent
from tests.support.harness import (
    MqttProbe,
    RunningAggregator,
    aggregator_config,
    count,
    running_aggregator,
    wait_for,
)

pytestmark = pytest.mark.integration

FLEET = Fleet({"edge-1": NodeInfo(site="Test")})
START = 1_796_000_000_000


@pytest.fixture
def broker_b(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "mosquitto-b") as broker:
        yield broker


def stored(influxd: Influxd) -> int:
    return count(influxd, "SELECT count(value) FROM readings WHERE node='edge-1'")


def edge_config(urls: list[str], tmp_path: Path, return_home_s: float) -> EdgeConfig:
    config = node_config("edge-1", urls[0], tmp_path, report_s=5, ack_timeout_s=1.0)
    # Batches whose acks went to the other broker come back within 2 s, not after minutes.
    mqtt = msgspec.structs.replace(
        config.mqtt, url=None, urls=tuple(urls), return_home_s=return_home_s, ack_timeout_cap_s=2.0
    )
    return msgspec.structs.replace(config, mqtt=mqtt)


def agg_config(
    a: Mosquitto, b: Mosquitto, influxd: Influxd, tmp_path: Path, return_home_s: float
) -> AggregatorConfig:
    config = aggregator_config(a, influxd.url, tmp_path)
    mqtt = msgspec.structs.replace(
        config.mqtt,
        url=None,
        urls=(a.url, b.url),
        return_home_s=return_home_s,
        reconnect_initial_s=0.1,
        reconnect_cap_s=0.5,
    )
    return msgspec.structs.replace(config, mqtt=mqtt)


def link_of(run: RunningAgent) -> MqttLink:
    link = run.agent.link
    assert isinstance(link, MqttLink)
    return link


def on(link: MqttLink, broker: Mosquitto) -> bool:
    return link.connected and link.broker == broker.url


def switches(agg: RunningAggregator) -> tuple[float, float]:
    name = "envnet_mqtt_broker_switches"
    return agg.metric(name, connection="subscriber"), agg.metric(name, connection="publisher")


def finish_lossless(run: RunningAgent, influxd: Influxd, tmp_path: Path) -> None:
    wait_for(lambda: run.agent.journal_depth == 0, 40, "the journal drained")
    run.stop.set()
    run.thread.join(timeout=20)
    produced = run.producer.count()
    wait_for(lambda: stored(influxd) == produced, 20, f"all {produced} readings stored")
    assert stored(influxd) == produced
    assert Journal(tmp_path / "edge-1.sqlite", 10**9, 10**9).depth() == 0


def test_sigkilled_broker_fails_over_to_the_next_without_loss(
    mosquitto: Mosquitto, broker_b: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    a, b = mosquitto, broker_b
    config = edge_config([a.url, b.url], tmp_path, return_home_s=0)
    with (
        running_aggregator(agg_config(a, b, influxd, tmp_path, return_home_s=0), FLEET) as agg,
        running_agent(config, START, accel=20.0) as run,
    ):
        link = link_of(run)
        wait_for(lambda: stored(influxd) >= 4, 20, "first readings stored via A")
        assert on(link, a) and link.switches == 0
        a.kill()  # SIGKILL: no DISCONNECT, no goodbye
        produced_at_kill = run.producer.count()
        wait_for(lambda: on(link, b), 20, "the edge on broker B")
        assert link.switches == 1
        # Readings sampled after the kill reach InfluxDB through B: the aggregator moved too.
        wait_for(lambda: run.producer.count() >= produced_at_kill + 20, 20, "readings on B")
        wait_for(lambda: stored(influxd) > produced_at_kill, 30, "readings stored via B")
        finish_lossless(run, influxd, tmp_path)
        assert link.switches == 1  # return_home_s = 0: it stays on B
        # The aggregator's two connections each moved once (a gauge updated every 2 s).
        wait_for(lambda: switches(agg) == (1.0, 1.0), 10, "the aggregator's switches shown")


def test_returns_home_after_return_home_s_and_a_failed_return_falls_back(
    mosquitto: Mosquitto, broker_b: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    a, b = mosquitto, broker_b
    config = edge_config([a.url, b.url], tmp_path, return_home_s=3.0)
    with (
        running_aggregator(agg_config(a, b, influxd, tmp_path, return_home_s=3.0), FLEET) as agg,
        running_agent(config, START, accel=20.0) as run,
    ):
        link = link_of(run)
        wait_for(lambda: stored(influxd) >= 4, 20, "first readings stored via A")
        a.kill()
        wait_for(lambda: on(link, b), 20, "the edge on broker B")
        # A is still down when return_home_s has passed: the attempt fails, and the link is
        # back on B at once, without a switch counted.
        wait_for(lambda: link.home_attempts >= 1 and on(link, b), 20, "a failed return home")
        assert link.switches == 1
        stored_on_b = stored(influxd)
        wait_for(lambda: stored(influxd) > stored_on_b, 20, "readings stored via B")
        a.start()  # same port, empty: no sessions, no retained messages
        wait_for(lambda: on(link, a), 30, "the edge home on A")
        assert link.switches == 2
        # It left B with a clean DISCONNECT: B sent no will, its retained status is online.
        probe = MqttProbe(b.port, [topics.status("edge-1")]).start()
        try:
            wait_for(lambda: bool(probe.on(lambda t: True)), 10, "B's retained status")
            assert codec.STATUS.decode(probe.on(lambda t: True)[-1]).state == "online"
        finally:
            probe.stop()
        produced_home = run.producer.count()
        wait_for(lambda: stored(influxd) > produced_home, 30, "readings stored via A again")
        finish_lossless(run, influxd, tmp_path)
        # The aggregator's connections went to B and came home too.
        wait_for(lambda: switches(agg) == (2.0, 2.0), 10, "the aggregator home on A")

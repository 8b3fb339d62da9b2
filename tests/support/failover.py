"""Shared by the broker failover tests (edge/test_failover.py, cluster/): an edge and an
aggregator given several broker URLs, and the checks that nothing was lost."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import msgspec

from aggregator.config import AggregatorConfig
from aggregator.fleet import Fleet, NodeInfo
from edge.config import EdgeConfig
from edge.journal import Journal
from edge.link import MqttLink
from simulators.local_stack import Influxd
from tests.support.edge_harness import RunningAgent, drain_and_stop, node_config
from tests.support.harness import RunningAggregator, aggregator_config, count, wait_for

NODE = "edge-1"
FLEET = Fleet({NODE: NodeInfo(site="Test")})
START = 1_796_000_000_000


def stored(influxd: Influxd) -> int:
    return count(influxd, f"SELECT count(value) FROM readings WHERE node='{NODE}'")


def edge_config(urls: Sequence[str], tmp_path: Path, return_home_s: float) -> EdgeConfig:
    config = node_config(NODE, urls[0], tmp_path, report_s=5, ack_timeout_s=1.0)
    # Batches whose acks went to another broker come back within 2 s, not after minutes.
    mqtt = msgspec.structs.replace(
        config.mqtt, url=None, urls=tuple(urls), return_home_s=return_home_s, ack_timeout_cap_s=2.0
    )
    return msgspec.structs.replace(config, mqtt=mqtt)


def agg_config(
    urls: Sequence[str], influxd: Influxd, tmp_path: Path, return_home_s: float
) -> AggregatorConfig:
    """The brokers come in as ENVNET_MQTT_URL, a comma-separated list, as in a deployment."""
    config = aggregator_config(",".join(urls), influxd.url, tmp_path)
    assert [e.display for e in config.mqtt.endpoints()] == list(urls)
    mqtt = msgspec.structs.replace(
        config.mqtt, return_home_s=return_home_s, reconnect_initial_s=0.1, reconnect_cap_s=0.5
    )
    return msgspec.structs.replace(config, mqtt=mqtt)


def link_of(run: RunningAgent) -> MqttLink:
    link = run.agent.link
    assert isinstance(link, MqttLink)
    return link


def on(link: MqttLink, url: str) -> bool:
    return link.connected and link.broker == url


def switches(agg: RunningAggregator) -> tuple[float, float]:
    """The aggregator's moves to another broker: (subscriber, publisher)."""
    name = "envnet_mqtt_broker_switches"
    return agg.metric(name, connection="subscriber"), agg.metric(name, connection="publisher")


def finish_lossless(run: RunningAgent, influxd: Influxd, tmp_path: Path) -> None:
    """Journal drained (every batch acknowledged), agent stopped, and InfluxDB holds exactly
    the readings sampled."""
    drain_and_stop(run, 40)
    produced = run.producer.count()
    wait_for(lambda: stored(influxd) == produced, 20, f"all {produced} readings stored")
    assert stored(influxd) == produced
    assert Journal(tmp_path / f"{NODE}.sqlite", 10**9, 10**9).depth() == 0

"""The link cutter between real MQTT clients and a real mosquitto: a cut link is a lost
connection to the broker (the node's will is published), and a real edge agent journals
through the cut and drains its backlog once the link is restored."""

from __future__ import annotations

import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from aggregator.fleet import Fleet, NodeInfo
from schemas import codec, topics
from simulators.link_proxy import LinkProxy
from simulators.local_stack import Influxd, Mosquitto
from tests.support.edge_harness import drain_and_stop, node_config, running_agent
from tests.support.harness import MqttProbe, aggregator_config, count, running_aggregator, wait_for

START = 1_796_000_000_000
WILL = b"offline"


class WillClient:
    """A paho client with a last will that counts its connections."""

    def __init__(self, port: int) -> None:
        self.connects = 0
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id="will-client"
        )
        self.client.will_set("test/will", WILL, qos=1)
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.client.on_connect = self._on_connect
        self.client.connect("127.0.0.1", port, keepalive=60)
        self.client.loop_start()

    def _on_connect(self, *_: object) -> None:
        with self.lock:
            self.connects += 1

    def connections(self) -> int:
        with self.lock:
            return self.connects

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_cut_link_publishes_the_will_and_a_restored_one_reconnects(
    mosquitto: Mosquitto,
) -> None:
    probe = MqttProbe(mosquitto.port, ["test/will"]).start()
    with LinkProxy.for_url(mosquitto.url) as proxy:
        client = WillClient(proxy.port)
        try:
            wait_for(lambda: client.connections() == 1, 30, "the client connected")
            assert probe.on(lambda t: True) == []
            proxy.cut()
            # The keepalive is 60 s: a will within the deadline means the broker saw the
            # connection drop, not a keepalive expire.
            wait_for(lambda: probe.on(lambda t: True) == [WILL], 30, "the will published")
            refused = proxy.accepted
            wait_for(lambda: proxy.accepted > refused, 30, "a reconnect refused while cut")
            assert client.connections() == 1
            proxy.restore()
            wait_for(lambda: client.connections() == 2, 30, "the client reconnected")
        finally:
            client.close()
            probe.stop()


FLEET = Fleet({"edge-1": NodeInfo(site="Test")})


def stored(influxd: Influxd) -> int:
    return count(influxd, "SELECT count(value) FROM readings WHERE node='edge-1'")


def test_an_edge_agent_journals_through_a_cut_and_drains_after_restore(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    status = MqttProbe(mosquitto.port, [topics.status("edge-1")]).start()
    with (
        LinkProxy.for_url(mosquitto.url) as proxy,
        running_aggregator(aggregator_config(mosquitto, influxd.url, tmp_path), FLEET),
    ):
        config = node_config("edge-1", proxy.url_for(mosquitto.url), tmp_path, report_s=5)
        with running_agent(config, START, accel=20.0) as run:
            wait_for(lambda: stored(influxd) >= 4, 60, "first readings stored")
            proxy.cut()
            wait_for(lambda: offline(status), 60, "the node's will (offline) published")
            produced = run.producer.count()
            wait_for(lambda: run.producer.count() >= produced + 20, 60, "readings while cut")
            assert run.agent.journal_depth >= 20
            proxy.restore()
            drain_and_stop(run, 120, "backlog drained")
            wait_for(lambda: stored(influxd) == run.producer.count(), 60, "every reading stored")
    status.stop()


def offline(probe: MqttProbe) -> bool:
    states = [codec.STATUS.decode(p) for p in probe.on(lambda t: True)]
    return any(s.state == "offline" and s.reason == "lost" for s in states)

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

import pytest

from schemas import codec, topics
from simulators.local_stack import Influxd, Mosquitto
from tests.support.edge_harness import running_agent
from tests.support.failover import (
    FLEET,
    START,
    agg_config,
    edge_config,
    finish_lossless,
    link_of,
    on,
    stored,
    switches,
)
from tests.support.harness import MqttProbe, running_aggregator, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def broker_b(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "mosquitto-b") as broker:
        yield broker


def test_sigkilled_broker_fails_over_to_the_next_without_loss(
    mosquitto: Mosquitto, broker_b: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    a, b = mosquitto, broker_b
    config = edge_config([a.url, b.url], tmp_path, return_home_s=0)
    with (
        running_aggregator(
            agg_config([a.url, b.url], influxd, tmp_path, return_home_s=0), FLEET
        ) as agg,
        running_agent(config, START, accel=20.0) as run,
    ):
        link = link_of(run)
        wait_for(lambda: stored(influxd) >= 4, 20, "first readings stored via A")
        assert on(link, a.url) and link.switches == 0
        a.kill()  # SIGKILL: no DISCONNECT, no goodbye
        produced_at_kill = run.producer.count()
        wait_for(lambda: on(link, b.url), 20, "the edge on broker B")
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
        running_aggregator(
            agg_config([a.url, b.url], influxd, tmp_path, return_home_s=3.0), FLEET
        ) as agg,
        running_agent(config, START, accel=20.0) as run,
    ):
        link = link_of(run)
        wait_for(lambda: stored(influxd) >= 4, 20, "first readings stored via A")
        a.kill()
        wait_for(lambda: on(link, b.url), 20, "the edge on broker B")
        # A is still down when return_home_s has passed: the attempt fails, and the link is
        # back on B at once, without a switch counted.
        wait_for(lambda: link.home_attempts >= 1 and on(link, b.url), 20, "a failed return home")
        assert link.switches == 1
        stored_on_b = stored(influxd)
        wait_for(lambda: stored(influxd) > stored_on_b, 20, "readings stored via B")
        a.start()  # same port, empty: no sessions, no retained messages
        wait_for(lambda: on(link, a.url), 30, "the edge home on A")
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

"""MqttLink with several brokers, none listening: it tries each in order at once, then waits
its backoff before each further attempt. Real sockets to closed loopback ports (refused at
once), a clock the test moves; the working cases are tests/integration/edge/test_failover.py."""

from __future__ import annotations

import random

from edge.link import LinkSettings, MqttLink
from schemas.runtime.backoff import Backoff
from schemas.runtime.endpoints import parse_mqtt_urls
from simulators.local_stack import free_port


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_broker_is_tried_in_turn_then_backoff_applies() -> None:
    urls = [f"mqtt://127.0.0.1:{free_port()}" for _ in range(3)]
    clock = FakeClock()
    link = MqttLink(
        "n1",
        LinkSettings(parse_mqtt_urls(urls), "c1"),
        Backoff(1.0, 4.0, jitter=0.0, rng=random.Random(0)),
        monotonic=clock,
        sleep=lambda s: None,
    )
    tried = []
    for _ in range(3):  # the first round: one attempt per poll, no waiting
        tried.append(link.broker)
        assert link.poll(0.0) == []
        assert not link.connected
    assert tried == urls
    # The round failed: the next attempt (broker 0 again) waits 1 s, then 2 s, 4 s, 4 s.
    for wait in (1.0, 2.0, 4.0, 4.0):
        before = link.broker
        clock.now += wait - 0.01
        link.poll(0.0)
        assert link.broker == before  # not due yet: no attempt
        clock.now += 0.01
        link.poll(0.0)
        assert link.broker != before  # attempted and failed: on to the next
    assert link.switches == 0 and link.home_attempts == 0
    link.close(None)

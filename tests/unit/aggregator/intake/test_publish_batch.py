"""publish_batch without a broker: the aiomqtt hook it relies on, and its countdown (against a
real mosquitto: tests/integration/aggregator/test_publish_batch.py)."""

from __future__ import annotations

import asyncio

import aiomqtt
import paho.mqtt.client as mqtt

from aggregator.intake.publish_batch import _Countdown


def test_aiomqtt_sets_what_it_keeps_for_a_pending_publish_when_its_puback_comes() -> None:
    """Tripwire for an aiomqtt upgrade: its on_publish callback pops the message id from
    `_pending_publishes` and calls `.set()` on what it finds, and it publishes through
    `_client`, a paho client."""

    async def scenario() -> int:
        client = aiomqtt.Client("127.0.0.1", 1)
        assert isinstance(client._client, mqtt.Client)
        countdown = _Countdown()
        countdown.left = 2
        client._pending_publishes[7] = countdown
        client._pending_publishes[8] = countdown
        client._on_publish(client._client, None, 7, None, None)  # type: ignore[arg-type]
        assert not countdown.is_set()
        client._on_publish(client._client, None, 8, None, None)  # type: ignore[arg-type]
        assert countdown.is_set()
        return len(client._pending_publishes)

    assert asyncio.run(scenario()) == 0


def test_the_countdown_is_set_by_its_last_acknowledgement_only() -> None:
    async def scenario() -> list[bool]:
        countdown = _Countdown()
        countdown.left = 3
        seen = []
        for _ in range(3):
            seen.append(countdown.is_set())
            countdown.set()
        seen.append(countdown.is_set())
        return seen

    assert asyncio.run(scenario()) == [False, False, False, True]

"""Publish many QoS 1 messages and wait for all of their PUBACKs at once.

`aiomqtt.Client.publish` costs, per message, an `asyncio.Event`, an `asyncio.wait_for` (a task
of its own on Python 3.11), a walk over every pending call to count them, and a warning log
line once more than 10 are pending. An ack flush publishes one message per node (hundreds
under live load), so the aggregator spent about 8 % of its live-mode time there
(bench/README.md, "Live path profile"). Here a whole batch shares one countdown: the paho
publishes go out as before, and one future resolves when the broker has acknowledged them all.

This uses aiomqtt's private `_pending_publishes` (its `on_publish` callback calls `.set()` on
what it finds there for the message id), as BurstReadClient uses its other private hooks:
pyproject.toml pins aiomqtt to 2.5.x and tests/unit/aggregator/intake/test_publish_batch.py
checks the hook.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiomqtt
import paho.mqtt.client as mqtt


class _Countdown(asyncio.Event):
    """Stands in for aiomqtt's per-publish event: the last PUBACK of the batch sets it."""

    def __init__(self) -> None:
        super().__init__()
        self.left = 0

    def set(self) -> None:
        self.left -= 1
        if self.left <= 0:
            super().set()


async def publish_batch(
    client: aiomqtt.Client, messages: Sequence[tuple[str, bytes]], qos: int, timeout_s: float
) -> int:
    """Publish `messages` (topic, payload) and return how many the broker has acknowledged
    within `timeout_s` (all of them unless the connection failed meanwhile)."""
    paho = client._client
    pending = client._pending_publishes
    countdown = _Countdown()
    mids: list[int] = []
    confirmed = 0
    for topic, payload in messages:
        info = paho.publish(topic, payload, qos)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            continue  # disconnected: not sent (an unacked batch is resent by its node)
        if info.is_published():  # QoS 0
            confirmed += 1
            continue
        pending[info.mid] = countdown
        mids.append(info.mid)
    # No PUBACK can have been handled yet: nothing above let the event loop run.
    countdown.left = len(mids)
    if not mids:
        return confirmed
    try:
        await asyncio.wait_for(countdown.wait(), timeout_s)
    except TimeoutError:
        pass
    finally:
        for mid in mids:
            if pending.get(mid) is countdown:  # not yet acknowledged
                del pending[mid]
    return confirmed + len(mids) - max(countdown.left, 0)

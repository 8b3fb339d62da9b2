"""nats-server grants one MQTT session at most 65,535 / max_ack_pending QoS 1 filters (65 with
NatsCluster's 1,000) and refuses the rest with SUBACK 0x80. A partitioned replica subscribes
one filter per owned node, so it must see and count such refusals, not take them as granted:
this is why two replicas of 1,000 nodes stored an eighth of the readings (docs/cluster/scale.md).
"""

from __future__ import annotations

import asyncio

from aggregator.intake.mqtt_session import SessionSettings, Subscriber
from simulators.local_stack import NatsCluster


def test_a_session_past_natss_filter_limit_counts_only_what_was_granted(
    nats_cluster: NatsCluster,
) -> None:
    filters = [(f"envnet/v1/nodes/n{i:03d}/readings", 1) for i in range(70)]
    subacked: list[int] = []

    async def handler(topic: str, payload: bytes) -> None:
        return None

    async def scenario() -> None:
        subscriber = Subscriber(
            SessionSettings(nats_cluster.url(0), "limit-test"),
            filters,
            handler,
            read_buffer=100,
            pause_after_s=30,
            wait_resumable=asyncio.sleep,  # type: ignore[arg-type]
            on_subscribed=subacked.append,
        )
        task = asyncio.create_task(subscriber.run())
        try:
            await asyncio.wait_for(subscriber.subscribed.wait(), 120)
        finally:
            task.cancel()

    asyncio.run(scenario())
    # 50 in the first SUBSCRIBE, then 15 of the next 20: 65 x 1,000 in flight <= 65,535.
    assert subacked == [50, 65]

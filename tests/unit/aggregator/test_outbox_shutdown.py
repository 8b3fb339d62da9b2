"""Shutdown loses no alert transition or ack the outbox task had taken (service._close_outbox),
and what the webhooks and Alertmanager could not deliver in time is logged (_drain_sinks).

The publisher is a stand-in whose publish blocks until the test lets it go, so the outbox task
is caught mid-flush when the shutdown sequence runs: before the fix, the shutdown's own flush
found an empty outbox and the cancelled task lost what it had taken."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Final

import msgspec
import pytest

from aggregator.config import AggregatorConfig, load_aggregator_config
from aggregator.engine.lifecycle import Transition
from aggregator.fleet import Fleet, NodeInfo
from aggregator.intake.mqtt_session import Publisher
from aggregator.service import ACK_LINGER_S, AggregatorService
from aggregator.webhook import WebhookSettings, WebhookSink
from schemas import topics
from schemas.messages import ALERT_SCHEMA, Alert

FLEET: Final = Fleet({f"n{i}": NodeInfo(site=f"Site {i}") for i in range(1, 6)})
T0: Final = 1_800_000_000_000
ALERT: Final = Alert(
    ALERT_SCHEMA, "n1", "odour.h2s", "exceedance", "firing", "warning", "GB 14554-93",
    "Table 1", 60, 80.0, 60.0, T0, T0, "m",
)  # fmt: skip


def fired(node: str) -> Transition:
    return Transition("fired", msgspec.structs.replace(ALERT, node=node), T0)


def config() -> AggregatorConfig:
    return load_aggregator_config(
        None, {"ENVNET_MQTT_URL": "mqtt://127.0.0.1:1", "ENVNET_INFLUX_URL": "http://127.0.0.1:1"}
    )


class GatedPublisher(Publisher):
    """Records what is published; each `publish` waits for `gate` (set by the test)."""

    def __init__(self, cfg: AggregatorConfig) -> None:
        super().__init__(cfg.mqtt)
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()
        self.sent: list[tuple[str, bool]] = []
        self.grew = asyncio.Event()  # set at each publish
        self._ready.set()  # as if connected; `disconnect` undoes it

    def disconnect(self) -> None:
        self._ready.clear()

    def reconnect(self) -> None:
        self._ready.set()

    async def publish_all(self, messages: Sequence[tuple[str, bytes]], qos: int = 1) -> int:
        self.sent.extend((topic, False) for topic, _ in messages)
        self.grew.set()
        return len(messages)

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> bool:
        self.entered.set()
        await self.gate.wait()
        self.sent.append((topic, retain))
        self.grew.set()
        return True


def test_a_flush_in_progress_at_shutdown_publishes_everything_it_took() -> None:
    cfg = config()

    async def run() -> tuple[list[tuple[str, bool]], int]:
        service = AggregatorService(cfg, FLEET)
        publisher = service._publisher = GatedPublisher(cfg)
        hook = WebhookSink(WebhookSettings("http://127.0.0.1:9/hook"))
        service._webhooks = [hook]
        for node in ("n1", "n2", "n3", "n4"):
            service._outbox.alert(fired(node))
        service._outbox.acks[("n1", "")] = [7]
        outbox = asyncio.create_task(service._publish_outbox())
        # The outbox task has taken all four transitions and the ack, and waits on the first
        # publish; one more transition arrives meanwhile (for the last flush).
        await asyncio.wait_for(publisher.entered.wait(), 10)
        service._outbox.alert(fired("n5"))
        stopping = asyncio.create_task(service._close_outbox(outbox))
        publisher.gate.set()
        await asyncio.wait_for(stopping, 10)
        assert outbox.cancelled()
        return publisher.sent, hook.depth

    sent, offered = asyncio.run(run())
    retained = [topic for topic, retain in sent if retain]
    assert retained == [topics.alert(f"n{i}", "odour.h2s") for i in range(1, 6)]
    assert [topic for topic, _ in sent].count(topics.ALERT_EVENTS) == 5
    assert (topics.ack("n1"), False) in sent
    assert offered == 5  # every transition was offered to the webhook (a page each)


def test_a_stop_with_nothing_in_flight_sends_what_is_left() -> None:
    cfg = config()

    async def run() -> list[tuple[str, bool]]:
        service = AggregatorService(cfg, FLEET)
        publisher = service._publisher = GatedPublisher(cfg)
        publisher.gate.set()
        outbox = asyncio.create_task(service._publish_outbox())
        service._outbox.alert(fired("n1"))
        await asyncio.wait_for(service._close_outbox(outbox), 10)
        return publisher.sent

    sent = asyncio.run(run())
    assert (topics.alert("n1", "odour.h2s"), True) in sent
    assert (topics.ALERT_EVENTS, False) in sent


def test_the_outbox_holds_acks_and_alerts_while_the_publisher_is_not_connected() -> None:
    # Flushed into a closed connection, acks would be dropped (each node then waits for its
    # ack timeout to send again) and alert events lost: the outbox waits for the publisher.
    cfg = config()

    async def run() -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
        service = AggregatorService(cfg, FLEET)
        publisher = service._publisher = GatedPublisher(cfg)
        publisher.gate.set()
        publisher.disconnect()
        outbox = asyncio.create_task(service._publish_outbox())
        service._outbox.alert(fired("n1"))
        service._outbox.acks[("n1", "")] = [7]
        # Several linger periods pass with nothing taken: the outbox still holds both.
        for _ in range(5):
            await asyncio.sleep(ACK_LINGER_S)
        held = list(publisher.sent)
        assert service._outbox.transitions and service._outbox.acks
        publisher.reconnect()
        while len(publisher.sent) < 3:  # the ack, the retained state, the event
            publisher.grew.clear()
            await asyncio.wait_for(publisher.grew.wait(), 10)
        outbox.cancel()
        return held, publisher.sent

    held, sent = asyncio.run(run())
    assert held == []
    assert (topics.ack("n1"), False) in sent
    assert (topics.alert("n1", "odour.h2s"), True) in sent


def test_what_the_sinks_could_not_deliver_is_logged_once_with_counts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = config()

    async def run() -> None:
        service = AggregatorService(cfg, FLEET)
        # Not running: nothing is delivered, so the drain ends at its bound.
        hook = WebhookSink(WebhookSettings("http://127.0.0.1:9/hook"))
        hook.offer(fired("n1"))
        hook.offer(fired("n2"))
        service._webhooks = [hook, WebhookSink(WebhookSettings("http://127.0.0.1:9/other"))]
        await service._drain_sinks(0.05)

    with caplog.at_level(logging.WARNING, logger="aggregator.service"):
        asyncio.run(run())
    logged = [
        r.__dict__["envnet_fields"]
        for r in caplog.records
        if r.getMessage() == "shutdown_undelivered"
    ]
    assert len(logged) == 1
    assert logged[0]["webhooks"] == 2 and logged[0]["alertmanager"] == 0

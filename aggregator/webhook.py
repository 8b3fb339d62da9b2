"""Webhook sink: alert events POSTed as JSON to an HTTP endpoint, in order, with retries.

The body is the contract's `envnet.alert-event/1` object (schemas/README.md), so a receiver
can validate it with schemas/json/alert-event.schema.json. What is sent: events that page
(`fired`/`renotified` of live, non-suspect alerts) plus `resolved` and `acknowledged` of live
alerts, so an incident tool can close what it opened. Late (backlog) and suspect alerts are not
sent unless the sink is configured to include them: they must not page anyone.

Delivery: one worker per sink, in order. Connection errors, timeouts, 429 and 5xx are retried
with capped, jittered backoff up to `max_attempts`; other 4xx mean the receiver rejects the
event, which is dropped and counted. The queue is bounded; when a receiver is down for long,
the oldest events are dropped first and counted (the alerts remain on MQTT and in InfluxDB).
At shutdown `drain` waits, bounded, until the queue is delivered (or given up); the service
logs what is left (`shutdown_undelivered`): the queue is not kept across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Mapping
from typing import Annotated

import aiohttp
import msgspec

from aggregator.delivery.http_post import JsonPoster, Outcome, display
from aggregator.engine.lifecycle import Transition
from schemas import codec
from schemas.messages import ALERT_EVENT_SCHEMA, AlertEvent
from schemas.runtime.logs import get_logger

log = get_logger("aggregator.webhook")


class WebhookSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One receiver of alert events: an agg.toml [[alerts.webhooks]] entry."""

    url: str
    # Name of an environment variable holding a bearer token (never put secrets in files).
    token_env: str | None = None
    timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=100)] = 8
    retry_initial_s: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    retry_cap_s: Annotated[float, msgspec.Meta(gt=0)] = 300.0
    queue_max: Annotated[int, msgspec.Meta(ge=1)] = 10_000
    include_late: bool = False
    include_suspect: bool = False

    def token(self, environ: Mapping[str, str]) -> str | None:
        """The bearer token, from the environment variable `token_env` names."""
        return environ.get(self.token_env) if self.token_env else None

    @property
    def display(self) -> str:
        """The URL without userinfo or query (which may carry secrets), for logs."""
        return display(self.url)


def wanted(transition: Transition, settings: WebhookSettings) -> bool:
    alert = transition.alert
    if alert.late and not settings.include_late:
        return False
    return not (alert.suspect and not settings.include_suspect)


class WebhookSink:
    def __init__(
        self,
        settings: WebhookSettings,
        on_outcome: Callable[[Outcome], None] | None = None,
        token: str | None = None,
    ) -> None:
        self.settings = settings
        # Sent as "Authorization: Bearer …"; never logged.
        self._token = token
        self._queue: deque[AlertEvent] = deque()
        self._ready = asyncio.Event()
        # Set while nothing is queued: an event stays queued until its delivery ends.
        self._idle = asyncio.Event()
        self._idle.set()
        self._on_outcome = on_outcome
        self.dropped = 0
        self._poster = JsonPoster(settings, log, "webhook")

    def offer(self, transition: Transition) -> None:
        if not wanted(transition, self.settings):
            return
        if len(self._queue) >= self.settings.queue_max:
            self._queue.popleft()
            self.dropped += 1
            self._count("dropped")
        event = AlertEvent(ALERT_EVENT_SCHEMA, transition.event, transition.at_ms, transition.alert)
        self._queue.append(event)
        self._idle.clear()
        self._ready.set()

    @property
    def depth(self) -> int:
        return len(self._queue)

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                await self._ready.wait()
                while self._queue:
                    event = self._queue[0]
                    outcome = await self._deliver(session, codec.ALERT_EVENT.encode(event))
                    if self._queue and self._queue[0] is event:
                        self._queue.popleft()
                    self._count(outcome)
                self._ready.clear()
                self._idle.set()

    async def drain(self, timeout_s: float) -> int:
        """Wait up to `timeout_s` until every queued event is delivered, rejected or given
        up (`run` must be running); return how many are still undelivered."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        return len(self._queue)

    async def _deliver(self, session: aiohttp.ClientSession, body: bytes) -> Outcome:
        headers = {"Content-Type": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        url = self.settings.url
        return await self._poster.deliver(session, url, body, headers, shown=self.settings.display)

    def _count(self, outcome: Outcome) -> None:
        if self._on_outcome is not None:
            self._on_outcome(outcome)

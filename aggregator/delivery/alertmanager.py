"""The Alertmanager sink: envnet's alerts on Alertmanager's v2 API, to every configured URL.

Protocol (https://prometheus.io/docs/alerting/latest/clients/): a client re-sends each firing
alert periodically with an `endsAt` in the future, and sends a resolved alert with its
`endsAt`. Alertmanager identifies an alert by its label set, so a re-send (after a restart of
either side) updates the same alert and notifies nobody twice. In an Alertmanager cluster the
client sends to every member.

What survives restarts:
- the aggregator: at start `seed()` takes the saved alert states (aggregator.worker). Firing
  alerts are sent again at once; alerts resolved within the last lease are sent as resolved,
  in case the resolution was saved but not yet delivered when the aggregator stopped. An alert
  that resolved while nothing was sending expires by its lease in Alertmanager, at most
  `lease` after the last refresh.
- Alertmanager: the next refresh (every `resend_s`) posts every firing alert again.

Late-lane alerts are sent too, with `lane="late"`: the routing decides they page nobody.
Acknowledgements change only annotations. Live late tracks are not kept across restarts here
(they close in event time and page no one).

Delivery: one task; what to send is a map from alert key to the newest alert, bounded by
`max_alerts` (resolved alerts go first when it is full, counted as dropped). Each POST is
retried on connection errors, timeouts, 408/429 and 5xx with capped, jittered backoff up to
`max_attempts`; other 4xx are counted as rejected and logged (Alertmanager says why). URLs are
logged without userinfo or query. At shutdown `drain` waits, bounded, until every change is
sent; what is left is logged by the service (`shutdown_undelivered`), and firing alerts are
sent again at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import Annotated, Final

import aiohttp
import msgspec

from aggregator.delivery.alertmanager_payload import AlertKey, alert_key, body, postable
from aggregator.delivery.http_post import JsonPoster, Outcome, display
from aggregator.engine.lifecycle import Transition
from aggregator.fleet import NodeInfo
from schemas.messages import Alert
from schemas.runtime.logs import get_logger

log = get_logger("aggregator.alertmanager")

API_PATH: Final = "/api/v2/alerts"


class AlertmanagerSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """agg.toml [alertmanager]. Every URL is sent every alert: Alertmanager's HA cluster
    deduplicates, and asks clients to send to all members. ENVNET_ALERTMANAGER_URL
    (comma-separated) replaces `urls`; none configured turns the sink off."""

    urls: tuple[str, ...] = ()
    # Refresh firing alerts this often; their lease (endsAt) is `lease_factor` refreshes ahead,
    # so a refresh or two may fail without Alertmanager resolving a live alert.
    resend_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    lease_factor: Annotated[float, msgspec.Meta(ge=2)] = 4.0
    timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5
    retry_initial_s: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    retry_cap_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    max_alerts: Annotated[int, msgspec.Meta(ge=1)] = 100_000

    def __post_init__(self) -> None:
        for url in self.urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"alertmanager.urls must be http:// or https://, got {url!r}")

    @property
    def lease_ms(self) -> int:
        return int(self.resend_s * self.lease_factor * 1000)


class AlertmanagerSink:
    def __init__(
        self,
        settings: AlertmanagerSettings,
        node_info: Callable[[str], NodeInfo | None],
        on_outcome: Callable[[Outcome], None] | None = None,
        *,
        clock_ms: Callable[[], int],
    ) -> None:
        self.settings = settings
        self._node_info = node_info
        self._on_outcome = on_outcome
        self._clock_ms = clock_ms
        # The newest form of each alert Alertmanager should hold, and the wall-clock time a
        # resolved one resolved (kept one lease long, then forgotten).
        self._alerts: dict[AlertKey, Alert] = {}
        self._resolved_at: dict[AlertKey, int] = {}
        self._changed: dict[AlertKey, Alert] = {}
        self._ready = asyncio.Event()
        # Set while no change waits to be sent and no POST is in flight (`drain`).
        self._idle = asyncio.Event()
        self._idle.set()
        self._sending: list[Alert] = []
        self._poster = JsonPoster(settings, log, "alertmanager")

    # -- what to send (pure bookkeeping) --------------------------------------------------

    def seed(self, alerts: Iterable[Alert]) -> None:
        """The saved alert states at start: firing ones, and recently resolved ones."""
        now = self._clock_ms()
        for alert in alerts:
            if alert.state == "resolved" and now - alert.updated_ms > self.settings.lease_ms:
                continue
            self._hold(alert, now)

    def offer(self, transition: Transition) -> None:
        self._hold(transition.alert, self._clock_ms())

    def _hold(self, alert: Alert, now: int) -> None:
        key = alert_key(alert)
        if key not in self._alerts and len(self._alerts) >= self.settings.max_alerts:
            self._make_room()
        self._alerts[key] = alert
        if alert.state == "resolved":
            self._resolved_at[key] = now
        else:
            self._resolved_at.pop(key, None)
        self._changed[key] = alert
        self._idle.clear()
        self._ready.set()

    def _make_room(self) -> None:
        oldest = min(self._resolved_at, key=self._resolved_at.__getitem__, default=None)
        victim = oldest if oldest is not None else next(iter(self._alerts))
        self._alerts.pop(victim)
        self._resolved_at.pop(victim, None)
        self._changed.pop(victim, None)
        self._count("dropped")

    def _expire(self, now: int) -> None:
        lease = self.settings.lease_ms
        for key in [k for k, at in self._resolved_at.items() if now - at > lease]:
            self._alerts.pop(key, None)
            self._resolved_at.pop(key)

    @property
    def held(self) -> int:
        return len(self._alerts)

    @property
    def unsent(self) -> int:
        """Alerts whose newest change Alertmanager may not have yet: waiting or in flight."""
        return len(self._changed.keys() | {alert_key(a) for a in self._sending})

    # -- the shell ------------------------------------------------------------------------

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        loop = asyncio.get_running_loop()
        async with aiohttp.ClientSession(timeout=timeout) as session:
            next_refresh = loop.time()
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._ready.wait(), max(0.0, next_refresh - loop.time()))
                if loop.time() >= next_refresh:
                    next_refresh = loop.time() + self.settings.resend_s
                    self._expire(self._clock_ms())
                    batch = list(self._alerts.values())
                    self._changed.clear()
                else:
                    batch = list(self._changed.values())
                    self._changed.clear()
                self._ready.clear()
                if batch:
                    self._sending = batch
                    try:
                        await self.send(session, batch)
                    finally:
                        self._sending = []
                if not self._changed:
                    self._idle.set()

    async def drain(self, timeout_s: float) -> int:
        """Wait up to `timeout_s` until every change is sent (delivered, rejected or given
        up; `run` must be running); return how many alerts are still unsent."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        return self.unsent

    async def send(self, session: aiohttp.ClientSession, alerts: list[Alert]) -> None:
        now = self._clock_ms()
        lease = self.settings.lease_ms
        payload = body([postable(a, self._node_info(a.node), now, lease) for a in alerts])
        outcomes = await asyncio.gather(
            *(self._deliver(session, url, payload) for url in self.settings.urls)
        )
        for outcome in outcomes:
            self._count(outcome)
        log.debug("alertmanager_sent", alerts=len(alerts), outcomes=list(outcomes))

    async def _deliver(self, session: aiohttp.ClientSession, url: str, payload: bytes) -> Outcome:
        # What gives up is not lost: the next refresh sends every held alert again.
        target = url.rstrip("/") + API_PATH
        headers = {"Content-Type": "application/json"}
        return await self._poster.deliver(session, target, payload, headers, shown=display(url))

    def _count(self, outcome: Outcome) -> None:
        if self._on_outcome is not None:
            self._on_outcome(outcome)

"""One JSON body POSTed to one receiver, retried: the delivery step both HTTP sinks share
(aggregator.webhook and aggregator.delivery.alertmanager).

Connection errors, timeouts, 408/425/429 and 5xx may succeed later: they are retried with
capped, jittered backoff up to `max_attempts`, then given up. Any other 4xx means the receiver
refuses the body: logged with the start of its answer (which says why) and counted as
rejected. URLs are logged as the sink shows them: without userinfo or query (`display`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Final, Literal, Protocol

import aiohttp

from schemas.runtime.backoff import Backoff
from schemas.runtime.logs import StructLogger

Outcome = Literal["delivered", "rejected", "gave_up", "dropped"]
_RETRY_STATUS: Final = frozenset({408, 425, 429})


def display(url: str) -> str:
    """The URL without userinfo or query (which may carry secrets), for logs."""
    head, _, _ = url.partition("?")
    scheme, sep, rest = head.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}"


class RetryableError(Exception):
    """A POST that may succeed later."""


class RetrySettings(Protocol):
    """The sink settings' retry fields."""

    @property
    def max_attempts(self) -> int: ...
    @property
    def retry_initial_s(self) -> float: ...
    @property
    def retry_cap_s(self) -> float: ...


class JsonPoster:
    """POSTs for one sink: its retry settings, and its logger and event prefix
    (`<sink>_retry`, `<sink>_gave_up`, `<sink>_rejected`)."""

    def __init__(self, retry: RetrySettings, log: StructLogger, sink: str) -> None:
        self._retry = retry
        self._log = log
        self._sink = sink

    async def deliver(
        self,
        session: aiohttp.ClientSession,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        shown: str,
    ) -> Outcome:
        """POST `body` to `url`, retrying; `shown` is the URL as logged (no secrets)."""
        r = self._retry
        backoff = Backoff(r.retry_initial_s, r.retry_cap_s)
        for attempt in range(1, r.max_attempts + 1):
            try:
                status, reason = await _post(session, url, body, headers)
            except RetryableError as exc:
                if attempt == r.max_attempts:
                    self._log.error(
                        f"{self._sink}_gave_up", url=shown, attempts=attempt, error=str(exc)
                    )
                    return "gave_up"
                self._log.warning(f"{self._sink}_retry", url=shown, attempt=attempt, error=str(exc))
                await asyncio.sleep(backoff.next_delay())
                continue
            if 200 <= status < 300:
                return "delivered"
            self._log.error(f"{self._sink}_rejected", url=shown, status=status, reason=reason)
            return "rejected"
        return "gave_up"


async def _post(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: Mapping[str, str]
) -> tuple[int, str]:
    """One POST's final status, and the start of the answer when it is an error (it says
    why); RetryableError when there is no answer or one that may change."""
    try:
        async with session.post(url, data=body, headers=dict(headers)) as response:
            status = response.status
            reason = (await response.text())[:300] if status >= 400 else ""
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise RetryableError(f"{type(exc).__name__}: {exc}") from None
    if status >= 500 or status in _RETRY_STATUS:
        raise RetryableError(f"HTTP {status}")
    return status, reason

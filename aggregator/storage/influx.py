"""Writes line protocol to InfluxDB over HTTP: the v1 API and the v2 API.

- v1: POST /write?db=…&rp=…&precision=ms (InfluxDB 1.x; Debian's influxd 1.6.7 speaks only
  this). 1.x fsyncs its WAL before answering 204, so a 204 means durable.
- v2: POST /api/v2/write?org=…&bucket=…&precision=ms with `Authorization: Token …`
  (InfluxDB 2.x and 3.x, and other servers that accept it).

The writer never drops data on its own: it classifies each failure as retryable (network,
5xx, 429, auth or missing database, which an operator can fix while we wait) or as a rejection
of the data itself (400), and the pipeline decides what to do with each.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Literal, Self

import aiohttp

from schemas.runtime.logs import redact_url

_RETRYABLE_STATUS: Final = frozenset({401, 403, 404, 408, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class InfluxTarget:
    url: str
    api: Literal["v1", "v2"]
    database: str = ""
    retention_policy: str = ""
    # v1: the default retention policy's duration when the aggregator creates the database.
    create_duration: str = "400d"
    # v1: where derived measurements go ("" = with the readings), and its duration.
    derived_retention_policy: str = ""
    derived_duration: str = "3650d"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    org: str = ""
    bucket: str = ""
    token: str | None = field(default=None, repr=False)
    gzip: bool = False
    timeout_s: float = 10.0

    def write_url(self) -> str:
        base = self.url.rstrip("/")
        return f"{base}/write" if self.api == "v1" else f"{base}/api/v2/write"

    @property
    def splits_derived(self) -> bool:
        """Whether derived measurements are written to a retention policy of their own."""
        return self.api == "v1" and bool(self.derived_retention_policy)

    def params(self, derived: bool = False) -> dict[str, str]:
        if self.api == "v1":
            params = {"db": self.database, "precision": "ms"}
            rp = self.derived_retention_policy if derived else self.retention_policy
            if rp:
                params["rp"] = rp
            return params
        return {"org": self.org, "bucket": self.bucket, "precision": "ms"}

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.api == "v2" and self.token:
            headers["Authorization"] = f"Token {self.token}"
        if self.gzip:
            headers["Content-Encoding"] = "gzip"
        return headers

    def auth(self) -> aiohttp.BasicAuth | None:
        if self.api == "v1" and self.username is not None:
            return aiohttp.BasicAuth(self.username, self.password or "")
        return None

    @property
    def display(self) -> str:
        where = self.database if self.api == "v1" else f"{self.org}/{self.bucket}"
        return f"{redact_url(self.url)} ({self.api}, {where})"


class WriteError(Exception):
    """A write that did not succeed. `retryable` is False only when the server rejected the
    data itself; `status` is the HTTP status, or None for a network failure."""

    def __init__(self, message: str, *, status: int | None, retryable: bool) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class InfluxWriter:
    """Owns one HTTP session to one InfluxDB; use as an async context manager."""

    def __init__(self, target: InfluxTarget) -> None:
        self._target = target
        self._session: aiohttp.ClientSession | None = None
        self._url = target.write_url()
        self._params = target.params()
        self._derived_params = target.params(derived=True)
        self._headers = target.headers()

    async def __aenter__(self) -> Self:
        timeout = aiohttp.ClientTimeout(total=self._target.timeout_s)
        self._session = aiohttp.ClientSession(timeout=timeout, auth=self._target.auth())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def target(self) -> InfluxTarget:
        return self._target

    async def write(self, body: bytes, derived: bool = False) -> None:
        """Write lines; `derived` ones go to the derived retention policy, if one is set."""
        if self._session is None:
            raise RuntimeError("InfluxWriter used outside its context")
        data = gzip.compress(body, compresslevel=1) if self._target.gzip else body
        try:
            async with self._session.post(
                self._url,
                params=self._derived_params if derived else self._params,
                data=data,
                headers=self._headers,
            ) as response:
                if response.status in (200, 204):
                    return
                text = (await response.text())[:300]
        except (aiohttp.ClientError, TimeoutError) as exc:
            message = f"{self._target.display}: {type(exc).__name__}: {exc}"
            raise WriteError(message, status=None, retryable=True) from None
        status = response.status
        message = f"{self._target.display}: HTTP {status}: {text.strip()}"
        raise WriteError(message, status=status, retryable=status in _RETRYABLE_STATUS)

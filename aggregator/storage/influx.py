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
from types import TracebackType
from typing import Annotated, Final, Literal, Self

import aiohttp
import msgspec

from schemas.runtime.logs import redact_url

_RETRYABLE_STATUS: Final = frozenset({401, 403, 404, 408, 429, 500, 502, 503, 504})


class InfluxTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where readings are stored: agg.toml [influx]'s connection keys (the pipeline's
    batching keys extend it, aggregator.storage.pipeline.PipelineSettings)."""

    url: str = "http://localhost:8086"
    # "v1": /write with database and retention policy (InfluxDB 1.x, e.g. Debian's 1.6.7).
    # "v2": /api/v2/write with org, bucket and token (InfluxDB 2.x and 3.x).
    # "auto": v2 when a bucket is configured, else v1.
    api: Literal["auto", "v1", "v2"] = "auto"
    database: str = "envnet"
    retention_policy: str = ""
    # v1: a database that does not exist is created at start, its default retention policy
    # (named retention_policy, or "autogen") keeping readings this long (InfluxQL duration;
    # "INF" keeps them for ever). An existing database is never changed.
    create_duration: Annotated[str, msgspec.Meta(pattern=r"^(INF|[1-9][0-9]*[wdhms])$")] = "400d"
    # v1: derived data (windows, aqi, water_quality, alerts) in a retention policy of its own,
    # kept longer than raw readings; created (if missing) with derived_duration, never
    # changed. "" keeps derived data with the readings. Queries of derived measurements then
    # name it: SELECT ... FROM "derived"."windows" (README: "Storage bootstrap").
    derived_retention_policy: str = ""
    derived_duration: Annotated[str, msgspec.Meta(pattern=r"^(INF|[1-9][0-9]*[wdhms])$")] = "3650d"
    username: str | None = None
    password: str | None = None
    org: str = ""
    bucket: str = ""
    token: str | None = None
    gzip: bool = False
    timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"influx.url must be http:// or https://, got {self.url!r}")
        api = self.resolved_api()
        if api == "v2" and not (self.org and self.bucket and self.token):
            raise ValueError("the InfluxDB v2 API needs influx.org, bucket and token")
        if api == "v1" and not self.database:
            raise ValueError("the InfluxDB v1 API needs influx.database")

    def __repr__(self) -> str:
        # Never the password or token: a target may end up in a log line or a traceback.
        return f"{type(self).__name__}({self.display})"

    def target(self) -> InfluxTarget:
        """The target alone, without the keys a subclass adds (the pipeline's batching)."""
        if type(self) is InfluxTarget:
            return self
        return InfluxTarget(
            **{name: getattr(self, name) for name in InfluxTarget.__struct_fields__}
        )

    def resolved_api(self) -> Literal["v1", "v2"]:
        if self.api == "auto":
            return "v2" if self.bucket else "v1"
        return self.api

    def write_url(self) -> str:
        base = self.url.rstrip("/")
        return f"{base}/write" if self.resolved_api() == "v1" else f"{base}/api/v2/write"

    @property
    def splits_derived(self) -> bool:
        """Whether derived measurements are written to a retention policy of their own."""
        return self.resolved_api() == "v1" and bool(self.derived_retention_policy)

    def params(self, derived: bool = False) -> dict[str, str]:
        if self.resolved_api() == "v1":
            params = {"db": self.database, "precision": "ms"}
            rp = self.derived_retention_policy if derived else self.retention_policy
            if rp:
                params["rp"] = rp
            return params
        return {"org": self.org, "bucket": self.bucket, "precision": "ms"}

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.resolved_api() == "v2" and self.token:
            headers["Authorization"] = f"Token {self.token}"
        if self.gzip:
            headers["Content-Encoding"] = "gzip"
        return headers

    def auth(self) -> aiohttp.BasicAuth | None:
        if self.resolved_api() == "v1" and self.username is not None:
            return aiohttp.BasicAuth(self.username, self.password or "")
        return None

    @property
    def display(self) -> str:
        where = self.database if self.resolved_api() == "v1" else f"{self.org}/{self.bucket}"
        return f"{redact_url(self.url)} ({self.resolved_api()}, {where})"


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

"""Storage that exists before the first write: the v1 database, the v2 bucket.

- v1 (InfluxDB 1.x): a database that does not exist is created, with a default retention
  policy of `[influx] create_duration` (400 days by default) named `[influx]
  retention_policy` (or InfluxDB's own "autogen" when that is empty). An existing database is
  never changed: the check is `SHOW DATABASES`, and `CREATE DATABASE` runs only when the name
  is missing, so running it again does nothing. The writer also creates it when a write is
  refused with "database not found" (influxd was not reachable at start, or was wiped since).
- v1, derived data: with `[influx] derived_retention_policy` set, derived measurements
  (windows, aqi, water_quality, alerts) are written to that retention policy, which is
  created when missing with `[influx] derived_duration` (10 years by default), so that they
  outlive the raw readings. An existing policy is never changed (its duration is logged at
  start). Checked at start and again when a write meets a missing database or policy.
- v2 (InfluxDB 2.x): one bucket holds everything (a bucket has one retention period); see
  README "Storage bootstrap" for keeping derived data longer there.
- v2 (InfluxDB 2.x): buckets belong to an organisation and need rights to create, so the
  aggregator only checks that the bucket exists (`GET /api/v2/buckets?name=…&org=…`) and stops
  with a message naming the bucket and the organisation when it does not.

A server that cannot be reached at start is not an error here: writes are retried until it
answers, and nothing is acked meanwhile. A server that does not know the bucket endpoint (a
server that only accepts the v2 write API, such as VictoriaMetrics) is logged and used.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Final

import aiohttp

from aggregator.startup import StartupError
from aggregator.storage.influx import InfluxTarget
from schemas.runtime.logs import get_logger, redact_url

log = get_logger("aggregator.storage")

_TIMEOUT_S: Final = 10.0


class StorageUnreachableError(Exception):
    """The server did not answer, or answered with a server error: try again later."""


def quote_ident(name: str) -> str:
    """An InfluxQL double-quoted identifier (names come from the configuration)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def create_database_query(target: InfluxTarget) -> str:
    """The InfluxQL that creates the v1 database with its default retention policy."""
    name = quote_ident(target.database)
    query = f"CREATE DATABASE {name} WITH DURATION {target.create_duration}"
    if target.retention_policy:
        query += f" NAME {quote_ident(target.retention_policy)}"
    return query


def _session(target: InfluxTarget) -> aiohttp.ClientSession:
    timeout = aiohttp.ClientTimeout(total=min(target.timeout_s, _TIMEOUT_S))
    return aiohttp.ClientSession(timeout=timeout, auth=target.auth())


async def prepare_storage(target: InfluxTarget) -> None:
    """Create the v1 database or check the v2 bucket; StartupError when the operator must act."""
    try:
        if target.resolved_api() == "v1":
            async with _session(target) as session:
                await ensure_database(session, target)
        else:
            await check_bucket(target)
    except StorageUnreachableError as exc:
        log.warning(
            "storage_not_checked",
            error=str(exc),
            note="writes are retried until the database answers; nothing is acked meanwhile",
        )


async def create_if_missing(target: InfluxTarget) -> None:
    """For the writer, on "database not found": create it now, or log why not."""
    try:
        async with _session(target) as session:
            await ensure_database(session, target)
    except (StartupError, StorageUnreachableError) as exc:
        log.error("database_not_created", error=str(exc))


async def ensure_database(session: aiohttp.ClientSession, target: InfluxTarget) -> bool:
    """Create the v1 database unless it exists, and the derived retention policy unless it
    exists; True if the database was created now."""
    created = await _ensure_database(session, target)
    if target.splits_derived:
        await ensure_derived_policy(session, target)
    return created


def create_policy_query(target: InfluxTarget) -> str:
    """The InfluxQL that creates the derived retention policy (a single node: replication 1)."""
    return (
        f"CREATE RETENTION POLICY {quote_ident(target.derived_retention_policy)} ON "
        f"{quote_ident(target.database)} DURATION {target.derived_duration} REPLICATION 1"
    )


async def ensure_derived_policy(session: aiohttp.ClientSession, target: InfluxTarget) -> bool:
    """Create the derived retention policy unless it exists; True if created now."""
    show = f"SHOW RETENTION POLICIES ON {quote_ident(target.database)}"
    durations = _policy_durations(await _influxql(session, target, show))
    name = target.derived_retention_policy
    if name in durations:
        log.info("retention_policy_found", retention_policy=name, duration=durations[name])
        return False
    await _create(
        session,
        target,
        create_policy_query(target),
        what=f"retention policy {name!r} on {target.database!r}",
        setting="derived_retention_policy",
        event="retention_policy_created",
        retention_policy=name,
        duration=target.derived_duration,
    )
    return True


async def _create(
    session: aiohttp.ClientSession,
    target: InfluxTarget,
    query: str,
    *,
    what: str,
    setting: str,
    event: str,
    **created: str,
) -> None:
    """Run a CREATE statement for `what` and log `event` with the `created` fields; if
    InfluxDB refuses it, a StartupError that says how to create it by hand or which [influx]
    `setting` to fix."""
    error = _statement_error(await _influxql(session, target, query))
    if error is not None:
        raise StartupError(
            f"InfluxDB {what} does not exist at {redact_url(target.url)} and could not be "
            f"created: {error}; create it (influx -execute '{query}') or fix [influx] {setting}"
        )
    log.warning(event, database=target.database, **created)


async def _ensure_database(session: aiohttp.ClientSession, target: InfluxTarget) -> bool:
    answer = await _influxql(session, target, "SHOW DATABASES")
    if target.database in _database_names(answer):
        return False
    await _create(
        session,
        target,
        create_database_query(target),
        what=f"database {target.database!r}",
        setting="database",
        event="database_created",
        duration=target.create_duration,
        retention_policy=target.retention_policy or "autogen",
    )
    return True


async def _influxql(session: aiohttp.ClientSession, target: InfluxTarget, query: str) -> object:
    url = f"{target.url.rstrip('/')}/query"
    try:
        async with session.post(url, data={"q": query}) as response:
            text = await response.text()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise StorageUnreachableError(f"{target.display}: {type(exc).__name__}: {exc}") from None
    if status in (401, 403):
        raise StartupError(
            f"InfluxDB at {redact_url(target.url)} refused the login for {query!r} "
            f"(HTTP {status}): set [influx] username and password"
        )
    if status != 200:
        raise StorageUnreachableError(f"{target.display}: HTTP {status}: {text[:200].strip()}")
    try:
        result: object = json.loads(text)
    except ValueError:
        raise StorageUnreachableError(f"{target.display}: not JSON: {text[:200]!r}") from None
    return result


def _rows(answer: object) -> Iterator[list[object]]:
    """Every row of every series of an InfluxQL answer; anything of another shape skipped."""
    results = answer.get("results", []) if isinstance(answer, dict) else []
    for result in results if isinstance(results, list) else []:
        series = result.get("series", []) if isinstance(result, dict) else []
        for item in series if isinstance(series, list) else []:
            values = item.get("values", []) if isinstance(item, dict) else []
            for row in values if isinstance(values, list) else []:
                if isinstance(row, list):
                    yield row


def _database_names(answer: object) -> set[str]:
    return {row[0] for row in _rows(answer) if row and isinstance(row[0], str)}


def _policy_durations(answer: object) -> dict[str, str]:
    """SHOW RETENTION POLICIES: name -> duration (columns name, duration, ...)."""
    return {
        row[0]: str(row[1]) for row in _rows(answer) if len(row) > 1 and isinstance(row[0], str)
    }


def _statement_error(answer: object) -> str | None:
    if not isinstance(answer, dict):
        return f"unexpected answer {answer!r:.200}"
    if isinstance(answer.get("error"), str):
        return str(answer["error"])
    for result in answer.get("results", []) or []:
        if isinstance(result, dict) and isinstance(result.get("error"), str):
            return str(result["error"])
    return None


# -- v2 -------------------------------------------------------------------------------------


def _missing_bucket(target: InfluxTarget, detail: str) -> StartupError:
    return StartupError(
        f"InfluxDB bucket {target.bucket!r} not found in organisation {target.org!r} at "
        f"{redact_url(target.url)} ({detail}): create it "
        f"(influx bucket create --name {target.bucket} --org {target.org}) "
        "or fix [influx] bucket and org"
    )


async def check_bucket(target: InfluxTarget) -> None:
    """Stop with StartupError unless the v2 bucket exists in the organisation."""
    url = f"{target.url.rstrip('/')}/api/v2/buckets"
    params = {"name": target.bucket, "org": target.org}
    headers = {"Authorization": f"Token {target.token}"} if target.token else {}
    try:
        async with (
            _session(target) as session,
            session.get(url, params=params, headers=headers) as response,
        ):
            status, text = response.status, await response.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise StorageUnreachableError(f"{target.display}: {type(exc).__name__}: {exc}") from None
    answer = _json_or_none(text)
    if status == 200 and isinstance(answer, dict) and isinstance(answer.get("buckets"), list):
        # Some 2.x releases answer an unknown name with the system buckets: match the name.
        names = {b.get("name") for b in answer["buckets"] if isinstance(b, dict)}
        if target.bucket not in names:
            raise _missing_bucket(target, "the server lists no bucket of that name")
        log.info("bucket_found", bucket=target.bucket, org=target.org)
        return
    if status == 404 and isinstance(answer, dict) and answer.get("code") == "not found":
        raise _missing_bucket(target, f"the server says: {str(answer.get('message'))[:200]}")
    # Not InfluxDB's bucket API (a write-only v2 endpoint), or a server error: writes tell.
    raise StorageUnreachableError(
        f"{target.display}: cannot list buckets: HTTP {status}: {text[:200].strip()}"
    )


def _json_or_none(text: str) -> object:
    try:
        result: object = json.loads(text)
    except ValueError:
        return None
    return result

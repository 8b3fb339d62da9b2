"""InfluxQL queries over HTTP `/query`, for tools that read stored data back.

InfluxDB 1.x answers natively; InfluxDB 2.x through its v1 compatibility API (the bucket needs
a DBRP mapping, `influx v1 dbrp create`), authenticated with the token; InfluxDB 3 answers
InfluxQL on the same path. Answers are asked for with epoch=ms, the precision envnet writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from aggregator.storage.influx import InfluxTarget
from schemas.messages import ID_REGEX
from schemas.runtime.logs import redact_url


class InfluxQueryError(RuntimeError):
    """InfluxDB could not be asked, or did not answer with query results."""


def node_condition(nodes: Sequence[str]) -> str:
    """A WHERE condition selecting the series of `nodes`: one anchored regular expression on
    the node tag. An `OR` of one `"node" = '…'` term per node costs InfluxDB 1.x time that
    grows with the square of the terms (measured on 1.6.7: 0.03 s for 200 nodes, 0.29 s for
    1,000, 6.8 s for 5,000, with no data to read; the regex of 5,000 took 0.2 s). A replica
    of a 10,000-node fleet asks this once per quantity at its warm start.

    Node ids match ID_PATTERN, [a-z0-9_-]: no character of theirs means anything in a regular
    expression or ends the /…/ literal. They are checked again here: nothing to inject."""
    bad = [n for n in nodes if not ID_REGEX.match(n)]
    if bad or not nodes:
        raise ValueError(f"no node ids, or invalid ones: {bad[:3]!r}")
    return '"node" =~ /^(?:' + "|".join(nodes) + ")$/"


def query_request(target: InfluxTarget, q: str) -> tuple[dict[str, str], dict[str, str]]:
    """The form parameters and headers of one query (credentials go in the session's auth)."""
    params = {"q": q, "epoch": "ms"}
    headers: dict[str, str] = {}
    if target.resolved_api() == "v1":
        params["db"] = target.database
        if target.retention_policy:
            params["rp"] = target.retention_policy
    else:
        params["db"] = target.bucket
        if target.token:
            headers["Authorization"] = f"Token {target.token}"
    return params, headers


async def influxql(
    session: aiohttp.ClientSession, target: InfluxTarget, q: str
) -> Mapping[str, Any]:
    """The first statement's result: {"series": [...]} (absent when nothing matched)."""
    params, headers = query_request(target, q)
    url = f"{target.url.rstrip('/')}/query"
    try:
        async with session.post(url, data=params, headers=headers, auth=target.auth()) as answer:
            if answer.status != 200:
                text = (await answer.text())[:200]
                raise InfluxQueryError(f"HTTP {answer.status} from {redact_url(url)}: {text}")
            body: Mapping[str, Any] = await answer.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise InfluxQueryError(f"{redact_url(url)}: {type(exc).__name__}: {exc}") from None
    results = body.get("results")
    if not isinstance(results, list) or not results or not isinstance(results[0], Mapping):
        raise InfluxQueryError(f"unexpected /query answer: {str(body)[:200]}")
    first: Mapping[str, Any] = results[0]
    if "error" in first:
        raise InfluxQueryError(f"InfluxDB: {first['error']}")
    return first

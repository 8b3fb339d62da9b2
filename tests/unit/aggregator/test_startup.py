"""The aggregator at start, without a database: the InfluxDB 2 bucket check. No InfluxDB 2 can run
here (it is not packaged for Debian 12), so the check is tested against a tiny local aiohttp
server that answers `GET /api/v2/buckets` the way InfluxDB 2.x does. It stands in for InfluxDB 2
only for that endpoint. The start on a real influxd:
tests/integration/aggregator/test_startup.py."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiohttp import web

from aggregator.startup import StartupError
from aggregator.storage.influx import InfluxTarget
from aggregator.storage.setup import check_bucket, prepare_storage
from simulators.local_stack import free_port


@contextmanager
def influxdb2_buckets(orgs: dict[str, list[str]], *, system_buckets: bool = False) -> Iterator[str]:
    """Answers GET /api/v2/buckets?name=&org= like InfluxDB 2.x: 401 without a token, 404
    {"code": "not found"} for an unknown organisation, else the matching buckets (or, with
    `system_buckets`, the system buckets for an unknown name, as some 2.0 releases did)."""

    async def buckets(request: web.Request) -> web.Response:
        if not request.headers.get("Authorization", "").startswith("Token "):
            denied = {"code": "unauthorized", "message": "unauthorized"}
            return web.json_response(denied, status=401)
        org, name = request.query.get("org", ""), request.query.get("name", "")
        if org not in orgs:
            message = f'organization name "{org}" not found'
            return web.json_response({"code": "not found", "message": message}, status=404)
        found = [b for b in orgs[org] if b == name]
        if not found and system_buckets:
            found = ["_tasks", "_monitoring"]
        return web.json_response({"links": {}, "buckets": [{"id": "1", "name": b} for b in found]})

    app = web.Application()
    app.router.add_get("/api/v2/buckets", buckets)
    runner = web.AppRunner(app)
    loop = asyncio.new_event_loop()
    port = free_port()
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.run_until_complete(runner.cleanup())
        loop.close()


def v2(url: str, org: str = "suzhou", bucket: str = "envnet") -> InfluxTarget:
    return InfluxTarget(url=url, api="v2", org=org, bucket=bucket, token="t0ken")


def test_an_existing_bucket_passes_the_check() -> None:
    with influxdb2_buckets({"suzhou": ["envnet"]}) as url:
        asyncio.run(check_bucket(v2(url)))


@pytest.mark.parametrize("system_buckets", [False, True])
def test_a_missing_bucket_or_organisation_is_named(system_buckets: bool) -> None:
    with influxdb2_buckets({"suzhou": ["other"]}, system_buckets=system_buckets) as url:
        for org, bucket in [("suzhou", "envnet"), ("nanjing", "envnet")]:
            with pytest.raises(StartupError) as raised:
                asyncio.run(check_bucket(v2(url, org, bucket)))
            message = str(raised.value)
            assert f"bucket '{bucket}'" in message and f"organisation '{org}'" in message
            assert "influx bucket create" in message


def test_a_server_without_the_bucket_api_or_not_up_is_used_as_it_is(tmp_path: Path) -> None:
    """A write-only v2 endpoint (VictoriaMetrics answers 400 here) or a server that is down
    cannot be checked: the aggregator logs it and lets the writes tell."""
    asyncio.run(prepare_storage(v2(f"http://127.0.0.1:{free_port()}")))


# -- the real command ------------------------------------------------------------------------

"""The aggregator's HTTP endpoint: /metrics (Prometheus text format) and /healthz."""

from __future__ import annotations

import errno
from collections.abc import Callable

import msgspec
from aiohttp import web

from aggregator.metrics import CONTENT_TYPE, Metrics
from aggregator.service_health import HealthReport
from aggregator.startup import StartupError


def make_app(metrics: Metrics, health: Callable[[], HealthReport]) -> web.Application:
    """`health` evaluates the aggregator's health now; both endpoints report it fresh."""

    async def serve_metrics(request: web.Request) -> web.Response:
        metrics.record_health(health())
        response = web.Response(body=metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    async def serve_health(request: web.Request) -> web.Response:
        # 200 for ok and degraded, 503 for failing; the JSON body says which and why.
        report = health()
        metrics.record_health(report)
        return web.Response(
            status=report.http_status,
            body=msgspec.json.encode(report) + b"\n",
            content_type="application/json",
        )

    app = web.Application()
    app.router.add_get("/metrics", serve_metrics)
    app.router.add_get("/healthz", serve_health)
    return app


class MetricsServer:
    """Serves the app on host:port; port 0 picks a free port (see `port`)."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self._runner = web.AppRunner(app, access_log=None)
        self._host = host
        self._port = port
        self.port = port

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise StartupError(_bind_message(self._host, self._port, exc)) from None
        addresses = self._runner.addresses
        if addresses:
            self.port = int(addresses[0][1])

    async def stop(self) -> None:
        await self._runner.cleanup()


def _bind_message(host: str, port: int, exc: OSError) -> str:
    where = f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        why = "is already in use (another aggregator, or another service, listens there)"
    elif exc.errno == errno.EACCES:
        why = "may not be opened by this user (ports below 1024 need privileges)"
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = "is not an address of this machine"
    else:
        why = f"cannot be opened: {exc.strerror or exc}"
    return f"metrics endpoint {where} {why}; set [metrics] host and port in the configuration"

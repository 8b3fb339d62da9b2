"""The aggregator's HTTP endpoint: /metrics (Prometheus text format) and /healthz."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from aggregator.metrics import CONTENT_TYPE, Metrics


def make_app(metrics: Metrics, healthy: Callable[[], tuple[bool, str]]) -> web.Application:
    async def serve_metrics(request: web.Request) -> web.Response:
        response = web.Response(body=metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    async def serve_health(request: web.Request) -> web.Response:
        ok, detail = healthy()
        return web.Response(status=200 if ok else 503, text=detail + "\n")

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
        await site.start()
        addresses = self._runner.addresses
        if addresses:
            self.port = int(addresses[0][1])

    async def stop(self) -> None:
        await self._runner.cleanup()

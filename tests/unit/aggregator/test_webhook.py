"""The webhook sink against a real local HTTP server (aiohttp), not a mock of a client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import msgspec
from aiohttp import web

from aggregator.delivery.http_post import Outcome
from aggregator.engine.lifecycle import Transition
from aggregator.webhook import WebhookSettings, WebhookSink
from schemas.messages import ALERT_SCHEMA, Alert

T0 = 1_800_000_000_000
ALERT = Alert(
    schema=ALERT_SCHEMA,
    node="n1",
    rule="odour.h2s",
    kind="exceedance",
    state="firing",
    severity="warning",
    standard="GB 14554-93",
    clause="Table 1",
    window_s=60,
    value=80.0,
    limit=60.0,
    since_ms=T0,
    updated_ms=T0,
    message="m",
)


def fired(value: float = 80.0, **changes: object) -> Transition:
    return Transition("fired", msgspec.structs.replace(ALERT, value=value, **changes), T0)


Handler = Callable[[web.Request], Awaitable[web.Response]]


@asynccontextmanager
async def receiver(handler: Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/hook", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        await runner.cleanup()


async def until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def run_sink(
    handler: Handler, transitions: list[Transition], expect: int, **settings: object
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    token = settings.pop("token", None)

    async def main() -> None:
        async with receiver(handler) as url:
            sink = WebhookSink(
                WebhookSettings(url, retry_initial_s=0.01, retry_cap_s=0.05, **settings),  # type: ignore[arg-type]
                outcomes.append,
                token,  # type: ignore[arg-type]
            )
            for t in transitions:
                sink.offer(t)
            task = asyncio.create_task(sink.run())
            await until(lambda: len(outcomes) >= expect)
            task.cancel()

    asyncio.run(main())
    return outcomes


def test_delivers_the_contract_event_with_token() -> None:
    got: list[tuple[dict[str, object], str | None]] = []

    async def handler(request: web.Request) -> web.Response:
        got.append((json.loads(await request.read()), request.headers.get("Authorization")))
        return web.Response(status=204)

    assert run_sink(handler, [fired()], 1, token="s3cret") == ["delivered"]
    body, auth = got[0]
    assert body["schema"] == "envnet.alert-event/1" and body["event"] == "fired"
    assert auth == "Bearer s3cret"


def test_retries_server_errors_then_delivers_in_order() -> None:
    calls: list[float] = []

    async def handler(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        calls.append(body["alert"]["value"])
        return web.Response(status=503 if len(calls) <= 2 else 200)

    outcomes = run_sink(handler, [fired(1), fired(2)], 2)
    assert outcomes == ["delivered", "delivered"]
    assert calls == [1, 1, 1, 2]


def test_client_error_is_not_retried() -> None:
    calls: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(1)
        return web.Response(status=400)

    assert run_sink(handler, [fired()], 1) == ["rejected"]
    assert calls == [1]


def test_gives_up_after_max_attempts() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=500)

    assert run_sink(handler, [fired()], 1, max_attempts=3) == ["gave_up"]


def test_late_and_suspect_alerts_do_not_page() -> None:
    sent: list[float] = []

    async def handler(request: web.Request) -> web.Response:
        sent.append(json.loads(await request.read())["alert"]["value"])
        return web.Response(status=200)

    transitions = [fired(1, late=True), fired(2, suspect=True), fired(3)]
    assert run_sink(handler, transitions, 1) == ["delivered"]
    assert sent == [3]


def test_full_queue_drops_oldest_and_counts() -> None:
    sink = WebhookSink(WebhookSettings("http://127.0.0.1:9/hook", queue_max=2))
    for value in (1, 2, 3):
        sink.offer(fired(value))
    assert sink.depth == 2 and sink.dropped == 1


def test_display_hides_credentials() -> None:
    settings = WebhookSettings("https://user:pw@hooks.example/x?key=abc")
    assert settings.display == "https://hooks.example/x"


def test_drain_waits_for_the_queue_to_be_delivered() -> None:
    """The receiver holds each POST until the test lets it go: drain ends only after both."""
    got: list[float] = []
    entered, release = asyncio.Event(), asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        entered.set()
        await release.wait()
        got.append(json.loads(await request.read())["alert"]["value"])
        return web.Response(status=204)

    async def main() -> int:
        async with receiver(handler) as url:
            sink = WebhookSink(WebhookSettings(url))
            sink.offer(fired(1))
            sink.offer(fired(2))
            task = asyncio.create_task(sink.run())
            await asyncio.wait_for(entered.wait(), 10)
            # Started while the first POST is in flight: it can end with nothing left only
            # once both are delivered.
            draining = asyncio.create_task(sink.drain(30))
            release.set()
            left = await asyncio.wait_for(draining, 30)
            task.cancel()
            return left

    assert asyncio.run(main()) == 0
    assert got == [1, 2]


def test_drain_is_bounded_and_says_what_is_left() -> None:
    hold = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        await hold.wait()  # no answer until the drain has ended
        return web.Response(status=204)

    async def main() -> int:
        async with receiver(handler) as url:
            sink = WebhookSink(WebhookSettings(url, timeout_s=60))
            for value in (1, 2, 3):
                sink.offer(fired(value))
            task = asyncio.create_task(sink.run())
            left = await sink.drain(0.2)
            task.cancel()
            await asyncio.wait([task])
            hold.set()  # lets the server's cleanup end at once
            return left

    assert asyncio.run(main()) == 3


def test_drain_of_an_empty_sink_returns_at_once() -> None:
    sink = WebhookSink(WebhookSettings("http://127.0.0.1:9/hook"))
    sink.offer(fired(1, late=True))  # not wanted: nothing is queued
    assert asyncio.run(asyncio.wait_for(sink.drain(60), 5)) == 0

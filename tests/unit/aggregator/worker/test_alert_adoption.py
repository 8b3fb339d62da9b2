"""Adopting open alerts at start: the service reads the `alerts` points back
(aggregator.worker.readback.alert_events) from a tiny local aiohttp server answering `/query` as
InfluxDB does (with a v2 target, as InfluxDB 2.x's v1 compatibility API), and the alerting side
adopts them (Alerting.adopt); with no server at all, or an error answer, the service
(AlertingWorker) logs and counts the failure and sends the worker nothing, so the state file's
tracks stay as they were."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web

from aggregator.cluster.partition import Replica
from aggregator.config import AlertsSection, load_aggregator_config
from aggregator.engine.adoption import StoredEvent
from aggregator.engine.lifecycle import Transition
from aggregator.engine.observations import Rule
from aggregator.fleet import Fleet, NodeInfo
from aggregator.metrics import Metrics
from aggregator.storage.alert_history import EventCounts
from aggregator.storage.influx import InfluxTarget
from aggregator.worker.alerting import Alerting
from aggregator.worker.client import AlertingWorker
from aggregator.worker.readback import alert_events
from simulators.local_stack import free_port

RULE = Rule("odour.h2s", "exceedance", "warning", "h2s", "GB 14554-93", "Table 1", 60)
NOW = 1_800_000_000_000
NODES = [f"plant-{i}" for i in range(8)]
FLEET = Fleet({n: NodeInfo(site=f"Plant {n}", odour_grade="II-new") for n in NODES})
REPLICA = Replica(1, 2)
MINE = sorted(n for n in NODES if REPLICA.owns(n))


class Clock:
    scaled = False

    def now_ms(self) -> int:
        return NOW


OWNED = Fleet({i.node: i for i in FLEET if REPLICA.owns(i.node)})
SINCE = NOW - 168 * 3_600_000


def alerting(events: list[Transition], metrics: Metrics) -> Alerting:
    owned = OWNED
    settings = AlertsSection()
    return Alerting(
        settings, owned, metrics, lambda lines: None, events.append,
        Clock(), replica=REPLICA,  # type: ignore[arg-type]
    )  # fmt: skip


def fired_row(node: str) -> dict[str, Any]:
    columns = ["time", "clause", "event", "kind", "late", "limit", "message", "severity",
               "since_ms", "site", "standard", "state", "suspect", "value", "window_s"]  # fmt: skip
    values = [NOW - 600_000, "Table 1", "fired", "exceedance", False, 0.06, "m", "warning",
              NOW - 600_000, "x", "GB 14554-93", "firing", False, 0.09, 60]  # fmt: skip
    return {"name": "alerts", "tags": {"node": node, "rule": RULE.id}, "columns": columns,
            "values": [values]}  # fmt: skip


def with_influx(
    answer: Callable[[dict[str, str], dict[str, str]], dict[str, Any]],
    test: Callable[[str], Any],
) -> Any:
    """Run `test(url)` while a server answers POST /query with `answer(form, headers)`."""

    async def query(request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        return web.json_response(answer(form, dict(request.headers)))

    async def main() -> Any:
        app = web.Application()
        app.router.add_post("/query", query)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            return await test(f"http://127.0.0.1:{port}")
        finally:
            await runner.cleanup()

    return asyncio.run(main())


def test_open_alerts_of_its_nodes_are_adopted_saved_and_counted(tmp_path: Path) -> None:
    asked: list[tuple[dict[str, str], dict[str, str]]] = []

    def answer(form: dict[str, str], headers: dict[str, str]) -> dict[str, Any]:
        asked.append((form, headers))
        # Every node's alert, and one of another replica's nodes (never asked for).
        rows = [fired_row(n) for n in NODES]
        return {"results": [{"statement_id": 0, "series": rows}]}

    def read(target: InfluxTarget) -> list[StoredEvent]:
        return with_influx(  # type: ignore[no-any-return]
            answer,
            lambda url: alert_events(
                msgspec.structs.replace(target, url=url), SINCE, OWNED, EventCounts()
            ),
        )

    metrics = Metrics()
    events: list[Transition] = []
    a = alerting(events, metrics)
    a.open(tmp_path)
    got = a.adopt(read(InfluxTarget(org="o", bucket="b", token="secret")))
    assert got == (len(MINE), 0) and events == []  # adopted quietly: nothing fires or pages
    assert sorted(x.node for x in a.book.firing()) == MINE
    ((form, headers),) = asked
    assert form["db"] == "b" and headers["Authorization"] == "Token secret"
    wanted = re.search(r'"node" =~ /\^\(\?:([^)]*)\)\$/', form["q"])
    assert wanted is not None and sorted(wanted.group(1).split("|")) == sorted(MINE)
    assert metrics.registry.get_sample_value(
        "envnet_alerts_adopted_total", {"how": "adopted"}
    ) == len(MINE)
    a.close()
    # Saved: the state file holds them now, and a second start adopts nothing more.
    again = alerting([], Metrics())
    again.open(tmp_path)
    assert sorted(x.node for x in again.book.firing()) == MINE
    assert again.adopt(read(InfluxTarget())) == (0, 0)
    again.close()


def service_side(metrics: Metrics, lookback_h: int = 168) -> AlertingWorker:
    """The service's handle, never started: a failed read must not send the worker anything
    (a send to a worker not started raises WorkerError)."""
    config = load_aggregator_config(None, environ={})
    alerts = msgspec.structs.replace(config.alerts, adopt_lookback_h=lookback_h)
    config = msgspec.structs.replace(config, alerts=alerts)
    return AlertingWorker(config, OWNED, metrics, lambda lines: None, lambda t: None)


def test_an_unreachable_influxdb_leaves_the_local_state_and_is_counted() -> None:
    metrics = Metrics()
    worker = service_side(metrics)
    target = InfluxTarget(url=f"http://127.0.0.1:{free_port()}")  # nobody listens
    asyncio.run(worker._adopt_open_alerts(target))
    assert worker.live_alerts == []
    assert (
        metrics.registry.get_sample_value(
            "envnet_state_saves_total", {"what": "alert_adoption_failed"}
        )
        == 1
    )


def test_an_influxdb_error_answer_is_a_failure_too() -> None:
    metrics = Metrics()
    worker = service_side(metrics)
    target = InfluxTarget()

    def answer(form: dict[str, str], headers: dict[str, str]) -> dict[str, Any]:
        return {"results": [{"statement_id": 0, "error": "database not found: envnet"}]}

    with_influx(
        answer, lambda url: worker._adopt_open_alerts(msgspec.structs.replace(target, url=url))
    )
    assert (
        metrics.registry.get_sample_value(
            "envnet_state_saves_total", {"what": "alert_adoption_failed"}
        )
        == 1
    )


def test_a_look_back_of_zero_asks_nothing() -> None:
    metrics = Metrics()
    worker = service_side(metrics, lookback_h=0)
    target = InfluxTarget(url=f"http://127.0.0.1:{free_port()}")
    asyncio.run(worker._adopt_open_alerts(target))
    assert (
        metrics.registry.get_sample_value(
            "envnet_state_saves_total", {"what": "alert_adoption_failed"}
        )
        is None
    )

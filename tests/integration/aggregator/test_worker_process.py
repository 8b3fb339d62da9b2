"""The alerting worker: a real child process, spoken to over its socket protocol."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from aggregator.config import load_aggregator_config
from aggregator.engine.lifecycle import Transition
from aggregator.fleet import Fleet, NodeInfo
from aggregator.intake.checks import AcceptedBatch
from aggregator.metrics import Metrics
from aggregator.worker.client import (
    AlertingWorker,
    WorkerError,
)
from schemas.storage import WINDOWS
from tests.unit.aggregator.worker.test_process import NOW, h2s

NODE = NodeInfo(site="Plant fence", odour_grade="II-new", node="n1")
FLEET = Fleet({"n1": NODE})


def test_a_request_larger_than_the_socket_buffers_is_evaluated(tmp_path: Path) -> None:
    """20,000 readings (~1.6 MB) in one request: framing holds beyond any socket buffer."""
    metrics, sinks = Metrics(), Sinks()
    start = (int(time.time() * 1000) - 20_000 * 60_000) // 3_600_000 * 3_600_000
    readings = [h2s(1.0, start + i * 60_000) for i in range(20_000)]

    async def main() -> None:
        config = load_aggregator_config(None, {})
        worker = AlertingWorker(config, FLEET, metrics, sinks.lines.extend, lambda t: None)
        await worker.start(tmp_path)
        try:
            done = await worker.stored([AcceptedBatch(NODE, 1, readings, False, None)])
            reply = await asyncio.wait_for(done, 60)
            assert reply.error is None
        finally:
            await worker.close()

    asyncio.run(main())
    assert metrics.registry.get_sample_value("envnet_alerting_worker_failures_total") == 0
    # Every reading was evaluated: the 333 whole hours it spans each closed a 1-h window.
    hourly = [
        line for line in sinks.lines if line.startswith(f"{WINDOWS.name},") and ",window=1h" in line
    ]
    assert len(hourly) == 20_000 // 60


class Sinks:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.transitions: list[Transition] = []


async def evaluate_once(state: Path, sinks: Sinks, metrics: Metrics) -> list[str]:
    config = load_aggregator_config(None, {})
    worker = AlertingWorker(config, FLEET, metrics, sinks.lines.extend, sinks.transitions.append)
    await worker.start(state)
    live = [a.rule for a in worker.live_alerts]
    try:
        done = await worker.stored([AcceptedBatch(NODE, 1, [h2s(80.0, NOW)], False, None)])
        await done
        await worker.sync()
    finally:
        await worker.close()
    return live


def test_worker_evaluates_and_keeps_state_across_restarts(tmp_path: Path) -> None:
    sinks, metrics = Sinks(), Metrics()
    assert asyncio.run(evaluate_once(tmp_path, sinks, metrics)) == []
    (fired,) = sinks.transitions
    assert fired.event == "fired" and fired.alert.rule == "odour.h2s"
    assert any(line.startswith("alerts,") for line in sinks.lines)
    assert (
        metrics.registry.get_sample_value(
            "envnet_alert_transitions_total", {"event": "fired", "kind": "exceedance"}
        )
        == 1
    )
    # A new worker on the same state: the alert is still open, and nothing fires twice.
    again = Sinks()
    assert asyncio.run(evaluate_once(tmp_path, again, Metrics())) == ["odour.h2s"]
    assert again.transitions == []


def test_a_dead_worker_is_reported_not_waited_on(tmp_path: Path) -> None:
    metrics = Metrics()

    async def main() -> None:
        config = load_aggregator_config(None, {})
        worker = AlertingWorker(config, FLEET, metrics, lambda lines: None, lambda t: None)
        await worker.start(tmp_path)
        assert worker._process is not None
        worker._process.kill()

        async def store() -> None:
            done = await worker.stored([AcceptedBatch(NODE, 1, [h2s(1.0, NOW)], False, None)])
            await asyncio.wait_for(done, 10)

        with pytest.raises(WorkerError):
            await store()
        await worker.close()

    asyncio.run(main())
    assert metrics.registry.get_sample_value("envnet_alerting_worker_failures_total") == 1

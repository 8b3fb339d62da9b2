"""The alerting worker: a real child process, spoken to over its socket protocol."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import msgspec
import pytest

from aggregator.config import load_aggregator_config
from aggregator.engine.lifecycle import Transition
from aggregator.fleet import Fleet, NodeInfo
from aggregator.intake.checks import AcceptedBatch
from aggregator.metrics import Metrics
from aggregator.worker.process import (
    _REQUEST,
    AlertingWorker,
    RecordedMetrics,
    Stored,
    StoredBatch,
    WorkerError,
    apply_ops,
    frame,
)
from schemas.messages import Reading, ReadingValues
from schemas.storage import WINDOWS

NODE = NodeInfo(site="Plant fence", odour_grade="II-new", node="n1")
FLEET = Fleet({"n1": NODE})
# The worker judges on the real clock: a reading of a minute ago is live (and one more than
# max_future_s ahead of it would not be judged at all).
NOW = (time.time_ns() // 1_000_000 - 120_000) // 60_000 * 60_000


def h2s(value: float, ts: int) -> Reading:
    return Reading(
        ts=ts, quantity="h2s", value=value, unit="ug/m3", period_s=60, stat="mean", sensor="g"
    )


def test_recorded_metrics_replay_on_the_registry() -> None:
    recorded = RecordedMetrics()
    recorded.alert_commands.labels("accepted").inc()
    recorded.alert_commands.labels("accepted").inc(2)
    recorded.window_series.set(7)
    metrics = Metrics()
    apply_ops(metrics, recorded.take())
    assert (
        metrics.registry.get_sample_value("envnet_alert_commands_total", {"result": "accepted"})
        == 3
    )
    assert metrics.registry.get_sample_value("envnet_window_series") == 7
    assert recorded.take() == []


def test_frames_are_length_prefixed() -> None:
    data = frame(Stored([StoredBatch("n1", 1, False, [h2s(1.0, NOW)])]))
    assert int.from_bytes(data[:4], "big") == len(data) - 4


def test_stored_readings_reach_the_worker_unchecked_with_every_field() -> None:
    """The service checked them on arrival; the worker decodes them without checking again."""
    sent = msgspec.structs.replace(h2s(1.5, NOW), flags=("incomplete",), serial="SN-1")
    request = _REQUEST.decode(frame(Stored([StoredBatch("n1", 7, True, [sent])]))[4:])
    assert isinstance(request, Stored)
    (batch,) = request.batches
    (got,) = batch.readings
    assert (batch.node, batch.seq, batch.backlog) == ("n1", 7, True)
    assert type(got) is ReadingValues
    assert msgspec.structs.asdict(got) == msgspec.structs.asdict(sent)


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

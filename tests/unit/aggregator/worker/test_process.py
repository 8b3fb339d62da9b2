"""The alerting worker protocol without its process: metrics replay, frames, what it is sent."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import msgspec
import pytest

from aggregator.metrics import Metrics
from aggregator.worker.client import apply_ops
from aggregator.worker.process import RecordedMetrics, _Worker
from aggregator.worker.protocol import (
    REQUESTS,
    Close,
    Open,
    Stored,
    StoredBatch,
    Warm,
    WarmReadings,
    frame,
)
from schemas.messages import Reading, ReadingValues

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
    request = REQUESTS.decode(frame(Stored([StoredBatch("n1", 7, True, [sent])]))[4:])
    assert isinstance(request, Stored)
    (batch,) = request.batches
    (got,) = batch.readings
    assert (batch.node, batch.seq, batch.backlog) == ("n1", 7, True)
    assert type(got) is ReadingValues
    assert msgspec.structs.asdict(got) == msgspec.structs.asdict(sent)


class _ResetWriter:
    """Stands in for the socket to a worker process that has just died: the write is
    buffered, and waiting for it to drain finds the connection reset before the reply reader
    has seen the end (the race a real kill loses only sometimes)."""

    def __init__(self) -> None:
        self.written = 0

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        self.written += len(data)

    async def drain(self) -> None:
        raise ConnectionResetError("Connection lost")


def test_a_reset_socket_is_a_worker_error_and_a_queued_batch_waits_for_the_reader() -> None:
    from aggregator.config import load_aggregator_config
    from aggregator.fleet import Fleet, NodeInfo
    from aggregator.intake.checks import AcceptedBatch
    from aggregator.worker.client import AlertingWorker, WorkerError
    from aggregator.worker.protocol import Checkpoint

    node = NodeInfo(site="Plant fence", odour_grade="II-new", node="n1")

    async def main() -> None:
        config = load_aggregator_config(None, {})
        worker = AlertingWorker(
            config, Fleet({"n1": node}), Metrics(), lambda lines: None, lambda t: None
        )
        writer = _ResetWriter()
        worker._writer = writer  # type: ignore[assignment]
        with pytest.raises(WorkerError, match="stopped"):
            await worker.send(Checkpoint())
        waiter = await worker.stored([AcceptedBatch(node, 1, [h2s(1.0, NOW)], False, None)])
        assert not waiter.done()  # the reply reader fails it when it sees the worker's end
        assert writer.written > 0

    asyncio.run(main())


def _warm_worker(tmp_path: Path) -> _Worker:
    from aggregator.config import load_aggregator_config
    from aggregator.fleet import Fleet, NodeInfo

    fleet = Fleet({"n1": NodeInfo(site="Plant fence", odour_grade="II-new", node="n1")})
    worker = _Worker(load_aggregator_config(None, {}).worker_settings(), fleet)
    worker.handle(Open(str(tmp_path)))
    return worker


def _warm_readings(node: str, values: list[float], first_min: int = 10) -> WarmReadings:
    """As the service sends them: encoded Readings, decoded unchecked (ReadingValues); one a
    minute, the first `first_min` minutes ago."""
    readings = [h2s(v, NOW - (first_min - i) * 60_000) for i, v in enumerate(values)]
    request = REQUESTS.decode(frame(WarmReadings({node: readings}))[4:])
    assert isinstance(request, WarmReadings)
    return request


def test_warm_readings_are_replayed_into_the_windows_once_warm_says_so(tmp_path: Path) -> None:
    """The service reads the stored readings back a quantity at a time (worker/readback.py):
    the worker holds them until Warm, replays them silently, and answers nothing."""
    worker = _warm_worker(tmp_path)
    reply = worker.handle(_warm_readings("n1", [1.0, 2.0]))
    assert reply.lines == [] and worker.alerting.evaluator.windows.held_readings == 0
    worker.handle(_warm_readings("stranger", [3.0]))  # not in the inventory: ignored
    worker.handle(_warm_readings("n1", [4.0], first_min=5))
    reply = worker.handle(Warm(True))
    assert (reply.lines, reply.events, reply.error) == ([], [], None)
    assert worker.alerting.evaluator.windows.held_readings == 3
    worker.handle(Close())


def test_a_failed_read_back_drops_what_was_sent(tmp_path: Path) -> None:
    """All or nothing: the windows start empty rather than with some quantities."""
    worker = _warm_worker(tmp_path)
    worker.handle(_warm_readings("n1", [1.0, 2.0]))
    worker.handle(Warm(False))
    assert worker.alerting.evaluator.windows.held_readings == 0
    worker.handle(Warm(True))  # nothing left to replay
    assert worker.alerting.evaluator.windows.held_readings == 0
    worker.handle(Close())

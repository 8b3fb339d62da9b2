"""The alerting worker protocol without its process: metrics replay, frames, what it is sent."""

from __future__ import annotations

import asyncio
import time

import msgspec
import pytest

from aggregator.metrics import Metrics
from aggregator.worker.process import (
    _REQUEST,
    RecordedMetrics,
    Stored,
    StoredBatch,
    apply_ops,
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
    request = _REQUEST.decode(frame(Stored([StoredBatch("n1", 7, True, [sent])]))[4:])
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
    from aggregator.worker.process import AlertingWorker, Checkpoint, WorkerError

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

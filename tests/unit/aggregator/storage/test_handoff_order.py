"""The pipeline hands stored writes on (acks, the alerting worker) in the order it took them,
however their writes finish.

The writer here is a stand-in whose writes finish when the test says so: a real influxd cannot
be made to answer three concurrent writes in a chosen order. Everything else is the pipeline's
own code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from aggregator.fleet import NodeInfo
from aggregator.intake.checks import AcceptedBatch
from aggregator.metrics import Metrics
from aggregator.storage.deadletter import DeadLetters
from aggregator.storage.influx import InfluxWriter
from aggregator.storage.pipeline import PendingBatch, Pipeline, PipelineSettings
from schemas.messages import Reading

INFO = NodeInfo(node="n1", site="s1", air_zone=2)
DEADLINE_S = 30.0


class GatedWriter(InfluxWriter):
    """Each write waits until the test releases it by its body (b"seq=N")."""

    def __init__(self, settings: PipelineSettings) -> None:
        super().__init__(settings.target())
        self.gates: dict[bytes, asyncio.Event] = {}
        self.finished: list[bytes] = []
        self.tasks: dict[bytes, asyncio.Task[object] | None] = {}

    def gate(self, body: bytes) -> asyncio.Event:
        return self.gates.setdefault(body, asyncio.Event())

    async def write(self, body: bytes, derived: bool = False) -> None:
        self.tasks[body] = asyncio.current_task()
        await self.gate(body).wait()
        self.finished.append(body)


def item(seq: int) -> PendingBatch:
    reading = Reading(ts=1_780_000_000_000 + seq * 60_000, quantity="pm2_5", value=10.0,
                      unit="ug/m3", period_s=60, stat="mean", sensor="pm")  # fmt: skip
    return PendingBatch([f"seq={seq}"], AcceptedBatch(INFO, seq, [reading], False, None))


async def until(condition: Callable[[], bool]) -> None:
    """Let the pipeline run until `condition` holds (a generous deadline, no fixed sleep)."""
    deadline = asyncio.get_running_loop().time() + DEADLINE_S
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0)


async def run_pipeline(
    test: Callable[[Pipeline, GatedWriter, list[int]], Awaitable[None]],
    on_stored_fails_for: int | None = None,
) -> None:
    # One item per write, all three writes at once, no linger.
    settings = PipelineSettings(batch_readings=1, linger_ms=0, max_inflight=3)
    writer = GatedWriter(settings)
    handed: list[int] = []

    async def on_stored(batches: list[AcceptedBatch]) -> None:
        handed.extend(b.seq for b in batches)
        if batches[0].seq == on_stored_fails_for:
            raise RuntimeError("the hand-over failed")

    pipeline = Pipeline(writer, settings, Metrics(), DeadLetters(None), on_stored)
    flusher = asyncio.create_task(pipeline.run())
    try:
        await test(pipeline, writer, handed)
    finally:
        flusher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await flusher


def test_writes_finishing_out_of_order_are_handed_on_in_order() -> None:
    async def test(pipeline: Pipeline, writer: GatedWriter, handed: list[int]) -> None:
        for seq in (1, 2, 3):
            assert pipeline.try_submit(item(seq))
        await until(lambda: len(writer.gates) == 3)  # all three writes under way
        writer.gate(b"seq=3").set()
        writer.gate(b"seq=2").set()
        await until(lambda: writer.finished == [b"seq=3", b"seq=2"])
        await until(lambda: pipeline.budget.used == 3 and not handed)
        writer.gate(b"seq=1").set()
        await until(lambda: len(handed) == 3)
        assert handed == [1, 2, 3]
        await until(lambda: pipeline.budget.used == 0)

    asyncio.run(run_pipeline(test))


def test_a_failed_hand_over_does_not_hold_up_the_next() -> None:
    async def test(pipeline: Pipeline, writer: GatedWriter, handed: list[int]) -> None:
        for seq in (1, 2):
            assert pipeline.try_submit(item(seq))
        await until(lambda: len(writer.gates) == 2)
        writer.gate(b"seq=2").set()
        writer.gate(b"seq=1").set()
        await until(lambda: len(handed) == 2)
        assert handed == [1, 2]
        await until(lambda: pipeline.budget.used == 0)

    asyncio.run(run_pipeline(test, on_stored_fails_for=1))


def test_a_cancelled_write_does_not_hold_up_the_next() -> None:
    async def test(pipeline: Pipeline, writer: GatedWriter, handed: list[int]) -> None:
        for seq in (1, 2):
            assert pipeline.try_submit(item(seq))
        await until(lambda: len(writer.gates) == 2)
        first = writer.tasks[b"seq=1"]
        assert first is not None
        writer.gate(b"seq=2").set()
        await until(lambda: writer.finished == [b"seq=2"])
        first.cancel()
        await until(lambda: handed == [2])
        await until(lambda: pipeline.budget.used == 0)

    asyncio.run(run_pipeline(test))

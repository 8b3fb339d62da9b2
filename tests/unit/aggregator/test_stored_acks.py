"""A stored batch waits for its evaluation as its ack key alone (service._stored): its readings
are the worker's by then, and holding them until the reply kept up to MAX_STORED_IN_FLIGHT
writes of readings (about 250 B each) in the service for nothing (bench/README.md, "Memory")."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Final

from aggregator.config import AggregatorConfig, load_aggregator_config
from aggregator.fleet import Fleet, NodeInfo
from aggregator.intake.checks import AcceptedBatch
from aggregator.service import AggregatorService
from aggregator.worker.client import WorkerError
from aggregator.worker.protocol import Reply
from schemas.messages import Reading

FLEET: Final = Fleet({"n1": NodeInfo(site="Site 1")})
INFO: Final = next(iter(FLEET))
T0: Final = 1_800_000_000_000
Acks = dict[tuple[str, str], list[int]]


class _Readings(list[Reading]):
    """A list that can be watched with a weak reference."""


def config() -> AggregatorConfig:
    return load_aggregator_config(
        None, {"ENVNET_MQTT_URL": "mqtt://127.0.0.1:1", "ENVNET_INFLUX_URL": "http://127.0.0.1:1"}
    )


class _Worker:
    """Stands in for AlertingWorker.stored: the evaluation stays pending until the test ends
    it, or the worker is gone."""

    def __init__(self, gone: bool = False) -> None:
        self.gone = gone
        self.pending: asyncio.Future[Reply] | None = None

    async def stored(self, batches: list[AcceptedBatch]) -> asyncio.Future[Reply]:
        if self.gone:
            raise WorkerError("the alerting worker stopped")
        self.pending = asyncio.get_running_loop().create_future()
        return self.pending


def _batch(seq: int, journal: str = "j1") -> AcceptedBatch:
    readings = _Readings(
        [Reading(T0 + i * 60_000, "pm2_5", 35.0, "ug/m3", 60, "mean", "pm") for i in range(6)]
    )
    return AcceptedBatch(INFO, seq, readings, False, None, journal=journal)


def test_a_batch_awaiting_evaluation_holds_no_readings_and_is_acked_once_evaluated() -> None:
    async def run() -> tuple[bool, Acks, Acks]:
        service = AggregatorService(config(), FLEET)
        worker = _Worker()
        service._alerting = worker  # type: ignore[assignment]
        batches = [_batch(7), _batch(8)]
        watched = weakref.ref(batches[0].readings)
        await service._stored(batches)
        del batches
        gc.collect()
        freed = watched() is None
        before = dict(service._outbox.acks)
        assert worker.pending is not None
        worker.pending.set_result(Reply())
        await asyncio.sleep(0)  # the done callbacks run
        return freed, before, service._outbox.acks

    freed, before, after = asyncio.run(run())
    assert freed
    assert before == {}  # not acked before the evaluation
    assert after == {("n1", "j1"): [7, 8]}


def test_batches_stored_while_the_worker_is_gone_are_acked_at_once() -> None:
    async def run() -> Acks:
        service = AggregatorService(config(), FLEET)
        service._alerting = _Worker(gone=True)  # type: ignore[assignment]
        await service._stored([_batch(3, journal="")])
        return service._outbox.acks

    assert asyncio.run(run()) == {("n1", ""): [3]}

"""The storage pipeline: accepted batches in, durable InfluxDB writes out, then acks.

Backpressure is explicit at every stage:
- `submit` waits while `max_buffered_readings` readings are accepted and not yet stored;
- at most `max_inflight` write requests are outstanding (influxd answers 500 when overrun);
- a failed write is retried with capped, jittered backoff while it holds its slot, so a
  database outage fills the buffer and stops intake instead of dropping anything.

Only after a write succeeded are its batches handed to `on_stored` (acks and alert
evaluation), and in the order they were taken, whichever write finishes first. A batch the
database rejects as data (HTTP 400) is isolated by writing its chunk's batches one by one;
one that still fails goes to the dead-letter file and is acked, so a poisoned batch cannot
block its node forever and is still kept.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Final

import msgspec

from aggregator.intake.checks import AcceptedBatch
from aggregator.metrics import Metrics
from aggregator.service_health import StorageObservation
from aggregator.storage.deadletter import DeadLetters
from aggregator.storage.influx import InfluxTarget, InfluxWriter, WriteError
from aggregator.storage.records import ReadingLines, value_texts
from aggregator.storage.setup import create_if_missing
from aggregator.storage.status import StorageStatus
from schemas.messages import ReadingValues
from schemas.runtime.backoff import Backoff
from schemas.runtime.logs import get_logger

log = get_logger("aggregator.storage.pipeline")


class PendingBatch:
    """Lines to store. `batch` is None for internal records (alerts, node status).

    With `builder`, `lines` stays empty and the batch's readings are formatted when it is
    written (`chunk_lines`): a buffered reading's line (about 190 B as a str) weighs as much
    as the reading itself, which is kept anyway until the worker has evaluated it, so a full
    buffer held twice what it needed (bench/README.md, "Memory").

    One is made per live message and read at every stage, so it is a plain slotted class
    whose counts are worked out once, here, rather than by properties on each read."""

    __slots__ = ("batch", "builder", "deferred", "derived", "lines", "readings", "size")

    def __init__(
        self,
        lines: list[str],
        batch: AcceptedBatch | None = None,
        *,
        derived: bool = False,
        builder: ReadingLines | None = None,
    ) -> None:
        self.lines = lines
        self.batch = batch
        # Windows, AQI, water quality and alert records: kept in the derived retention policy.
        self.derived = derived
        self.builder = builder
        # The readings `builder` formats when written; empty when `lines` are given.
        self.deferred: Sequence[ReadingValues] = (
            batch.readings if builder is not None and batch is not None else ()
        )
        # Lines this item writes, and readings it stores (0 for internal records).
        self.size = len(self.deferred) if builder is not None else len(lines)
        self.readings = self.size if batch is not None else 0

    def text(self) -> list[str]:
        """The lines, formatted now if they were deferred."""
        if self.builder is not None:
            return self.builder.lines(self.deferred)
        return self.lines


def chunk_lines(items: Sequence[PendingBatch]) -> list[str]:
    """Every item's lines, in order, as one write takes them. The deferred values of all the
    items are formatted in one call (records.value_texts), and the per-call costs of
    formatting are paid once per write rather than once per batch: for live messages (6
    readings each) that cut the CPU time of a write's body by about a fifth
    (bench/write_lines.py: ratio 0.78)."""
    values = iter(value_texts([r.value for item in items for r in item.deferred]))
    out: list[str] = []
    for item in items:
        if item.builder is None:
            out.extend(item.lines)
        else:
            item.builder.extend(out, item.deferred, values)
    return out


# A failing database is logged at most once per this much wall time (plus recovery).
RETRY_LOG_EVERY_S: Final = 30.0


class PipelineSettings(InfluxTarget, frozen=True, forbid_unknown_fields=True):
    """agg.toml [influx]: the target (InfluxTarget) and how the pipeline batches for it."""

    # Readings per write request, and how long a partial batch may wait for company.
    batch_readings: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 5000
    linger_ms: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 50
    # Concurrent write requests. influxd answers 500 when overrun; bound it.
    max_inflight: Annotated[int, msgspec.Meta(ge=1, le=16)] = 3
    # Readings accepted but not yet stored; beyond this, intake waits (backpressure). A
    # buffered reading takes about 250 B. The stages hold about 20,000 (max_inflight writes
    # of batch_readings, being written or waiting for the worker, and the next chunk); the
    # rest only lets intake run ahead. 200,000 cost the service about 35 MiB more at its peak
    # than 50,000, for no rate difference above a shared 2-core machine's noise
    # (bench/README.md, "Memory").
    max_buffered_readings: Annotated[int, msgspec.Meta(ge=1000)] = 50_000
    retry_initial_s: Annotated[float, msgspec.Meta(gt=0)] = 0.2
    retry_cap_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0

    @property
    def linger_s(self) -> float:
        return self.linger_ms / 1000


OnStored = Callable[[list[AcceptedBatch]], Awaitable[None]]


class ReadingBudget:
    """Counts readings accepted and not yet stored; `acquire` waits when over the cap.

    Single event loop, no awaits between check and update, so the fast path needs no lock;
    waiters park on an event that every release sets.
    """

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._used = 0
        self._released = asyncio.Event()

    @property
    def used(self) -> int:
        return self._used

    def _fits(self, n: int) -> bool:
        # An oversized request is let through when nothing else is buffered.
        return self._used == 0 or self._used + n <= self._cap

    def try_acquire(self, n: int) -> bool:
        """Take room for `n` if there is room now; False (nothing taken) if not."""
        if self._used == 0 or self._used + n <= self._cap:  # _fits, inlined: per message
            self._used += n
            return True
        return False

    async def acquire(self, n: int) -> None:
        while not self._fits(n):
            self._released.clear()
            await self._released.wait()
        self._used += n

    def release(self, n: int) -> None:
        self._used -= n
        self._released.set()

    async def wait_for_room(self, fraction: float) -> None:
        """Wait until at most `fraction` of the cap is in use."""
        while self._used > self._cap * fraction:
            self._released.clear()
            await self._released.wait()


@dataclass(slots=True)
class _Buffer:
    items: list[PendingBatch] = field(default_factory=list)
    lines: int = 0
    first_at: float = 0.0


class Pipeline:
    def __init__(
        self,
        writer: InfluxWriter,
        settings: PipelineSettings,
        metrics: Metrics,
        dead_letters: DeadLetters,
        on_stored: OnStored,
    ) -> None:
        self._writer = writer
        self._s = settings
        self._metrics = metrics
        self._dead = dead_letters
        self._on_stored = on_stored
        self.budget = ReadingBudget(settings.max_buffered_readings)
        # Read when the metrics are, rather than set per submitted message.
        metrics.queue_depth.set_function(lambda: self.budget.used)
        self._slots = asyncio.Semaphore(settings.max_inflight)
        self._buffer = _Buffer()
        self._wakeup = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        # Set once the chunk taken last has been handed on (or failed): the next one waits
        # for it. Events, not futures: a cancelled waiter leaves an event as it was, so one
        # cancelled write cannot fail the hand-overs after it.
        self._last_handed: asyncio.Event | None = None
        self._closing = False
        self._status = StorageStatus(RETRY_LOG_EVERY_S)
        self._creates_database = writer.target.resolved_api() == "v1"

    def storage_observation(self) -> StorageObservation:
        return self._status.observation(self.budget.used)

    # -- intake side ----------------------------------------------------------------------

    async def submit(self, item: PendingBatch) -> None:
        """Queue a batch for storage, waiting while the buffer is full."""
        await self.budget.acquire(item.readings)
        self._append(item)

    def try_submit(self, item: PendingBatch) -> bool:
        """Queue a batch for storage if the buffer has room for it now; False (not queued)
        if it is full, and then `submit` waits for room. Intake tries this first: most
        messages find room, and need no coroutines of their own."""
        if not self.budget.try_acquire(item.readings):
            return False
        self._append(item)
        return True

    def submit_internal(self, item: PendingBatch) -> None:
        """Queue records the aggregator makes itself (few; never waits)."""
        self._append(item)

    def _append(self, item: PendingBatch) -> None:
        if not self._buffer.items:
            self._buffer.first_at = time.monotonic()
        self._buffer.items.append(item)
        self._buffer.lines += item.size
        self._wakeup.set()

    # -- the flusher ----------------------------------------------------------------------

    async def run(self) -> None:
        """Form chunks and start writes until cancelled."""
        while True:
            await self._wakeup.wait()
            linger = self._s.linger_s - (time.monotonic() - self._buffer.first_at)
            if self._buffer.lines < self._s.batch_readings and linger > 0 and not self._closing:
                await asyncio.sleep(linger)
            await self._slots.acquire()
            chunk = self._take_chunk()
            if not chunk:
                self._slots.release()
                continue
            handed = asyncio.Event()
            write = self._write_chunk(chunk, self._last_handed, handed)
            self._last_handed = handed
            task = asyncio.create_task(write, name="influx-write")
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    def _take_chunk(self) -> list[PendingBatch]:
        items = self._buffer.items
        lines = 0
        taken = 0
        for item in items:
            if taken and lines + item.size > self._s.batch_readings:
                break
            lines += item.size
            taken += 1
        chunk = items[:taken]
        del items[:taken]
        self._buffer.lines -= lines
        if items:
            self._buffer.first_at = time.monotonic()
        else:
            self._wakeup.clear()
        return chunk

    async def _write_chunk(
        self, chunk: list[PendingBatch], after: asyncio.Event | None, handed: asyncio.Event
    ) -> None:
        readings = sum([item.readings for item in chunk])
        try:
            try:
                stored = await self._store(chunk)
            finally:
                self._slots.release()
            # Writes overlap and finish in any order; what was stored is handed on in the
            # order it was taken. The windows see each node's readings in time order then,
            # rather than a later write's first and the earlier one's as late readings, each
            # re-evaluating closed hours: 2 % of live readings came late that way
            # (bench/ingest.py, "windows"), and the worker's CPU per live message was 35 µs
            # against 21 in order (bench/README.md, "2026-12-04, night").
            if after is not None:
                await after.wait()
            batches = [item.batch for item in stored if item.batch is not None]
            if batches:
                await self._on_stored(batches)
        finally:
            handed.set()
            # Released only once the stored batches are handed on: when what comes after
            # storage (the alerting worker) falls behind, intake slows down with it instead
            # of queueing without bound.
            self.budget.release(readings)

    async def _store(self, chunk: list[PendingBatch]) -> list[PendingBatch]:
        """Write until durable; returns the items that are now stored or dead-lettered."""
        try:
            await self._write_retrying(chunk)
        except WriteError as exc:
            if len(chunk) > 1:
                stored: list[PendingBatch] = []
                for item in chunk:
                    stored.extend(await self._store([item]))
                return stored
            self._reject(chunk[0], exc)
        return chunk

    def _bodies(self, chunk: Sequence[PendingBatch]) -> list[tuple[bytes, bool]]:
        """The chunk's write requests: one, or raw and derived apart when derived data has a
        retention policy of its own."""
        if not self._writer.target.splits_derived:
            return [("\n".join(chunk_lines(chunk)).encode(), False)]
        bodies = []
        for derived in (False, True):
            lines = chunk_lines([item for item in chunk if item.derived == derived])
            if lines:
                bodies.append(("\n".join(lines).encode(), derived))
        return bodies

    async def _write_retrying(self, chunk: Sequence[PendingBatch]) -> None:
        bodies = self._bodies(chunk)
        backoff = Backoff(self._s.retry_initial_s, self._s.retry_cap_s, rng=random.Random())
        while True:
            started = time.perf_counter()
            try:
                # A retry rewrites both: rewriting a point that is stored is idempotent.
                for body, derived in bodies:
                    await self._writer.write(body, derived)
            except WriteError as exc:
                kind = "network" if exc.status is None else f"http_{exc.status}"
                self._metrics.write_failures.labels(kind).inc()
                if not exc.retryable:
                    raise
                delay = backoff.next_delay()
                self._failed(exc, delay)
                if self._database_missing(exc):
                    # A fresh or wiped influxd (v1): create the database, then retry.
                    await create_if_missing(self._writer.target)
                await asyncio.sleep(delay)
                continue
            recovered = self._status.succeeded(time.time())
            if recovered is not None:
                log.warning(
                    "write_recovered",
                    failed_for_s=recovered.failed_for_s,
                    attempts=recovered.attempts,
                )
            self._metrics.write_latency.observe(time.perf_counter() - started)
            self._metrics.readings_stored.inc(sum([item.readings for item in chunk]))
            return

    def _database_missing(self, exc: WriteError) -> bool:
        # influxd 1.x: 404 "database not found"; 500 "retention policy not found: NAME".
        text = str(exc)
        missing = (exc.status == 404 and "database not found" in text) or (
            exc.status == 500 and "retention policy not found" in text
        )
        return self._creates_database and missing

    def _failed(self, exc: WriteError, delay: float) -> None:
        now = time.time()
        if self._status.failed(str(exc), now):
            log.warning(
                "write_retry",
                error=str(exc),
                attempt=self._status.attempts,
                failing_for_s=round(self._status.failing_for(now), 1),
                buffered_readings=self.budget.used,
                retry_in_s=round(delay, 2),
            )

    def _reject(self, item: PendingBatch, exc: WriteError) -> None:
        batch = item.batch
        node = batch.info.node if batch else None
        log.error("write_rejected", node=node, seq=batch.seq if batch else None, error=str(exc))
        self._metrics.readings_refused.labels("db_rejected").inc(item.readings)
        self._dead.record(
            node=node, seq=batch.seq if batch else None, reason=str(exc), lines=item.text()
        )

    # -- shutdown -------------------------------------------------------------------------

    async def drain(self, timeout_s: float) -> bool:
        """Flush everything buffered and wait for writes; False if they did not finish."""
        self._closing = True
        self._wakeup.set()
        deadline = time.monotonic() + timeout_s
        while self._buffer.items or self._inflight:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self._inflight:
                await asyncio.wait(set(self._inflight), timeout=remaining)
            else:
                await asyncio.sleep(0)  # let the flusher turn the buffer into writes
        return True

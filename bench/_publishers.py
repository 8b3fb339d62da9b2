"""The parent's side of the publisher processes: start, release together, collect, stop."""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from typing import Final, Self

from bench._publisher import AckReport, PublisherSpec, SentReport, run_publisher

_CTX: Final = multiprocessing.get_context("spawn")
READY_TIMEOUT_S: Final = 60.0
SENT_GRACE_S: Final = 120.0
IDLE_TICK_S: Final = 0.1


class BenchError(RuntimeError):
    """The benchmark could not run as designed (a process failed or timed out)."""


@dataclass(frozen=True, slots=True)
class SentTotals:
    messages: int
    readings: int
    first_publish: float
    last_publish: float
    errors: tuple[str, ...]

    @property
    def publish_s(self) -> float:
        return max(self.last_publish - self.first_publish, 1e-9)


class PublisherFleet:
    """N publisher processes; a context manager that always stops them."""

    def __init__(self, specs: list[PublisherSpec]) -> None:
        self._specs = specs
        self._go = _CTX.Event()
        self._finish = _CTX.Event()
        self._results: multiprocessing.Queue[object] = _CTX.Queue()
        self._procs: list[SpawnProcess] = []
        self._early_acks: list[AckReport] = []

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None]

    def __enter__(self) -> Self:
        for spec in self._specs:
            proc = _CTX.Process(
                target=run_publisher,
                args=(spec, self._go, self._finish, self._results),
                name=f"bench-publisher-{spec.index}",
                daemon=True,
            )
            proc.start()
            self._procs.append(proc)
        return self

    def __exit__(self, *exc: object) -> None:
        self._finish.set()
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)

    def _poll(self, timeout_s: float = 0.5) -> object | None:
        """The next report, or None after `timeout_s`; raises if a publisher died."""
        try:
            return self._results.get(timeout=timeout_s)
        except queue.Empty:
            dead = [p.name for p in self._procs if p.exitcode not in (None, 0)]
            if dead:
                raise BenchError(f"publisher process failed: {', '.join(dead)}") from None
            return None

    def _get(self, timeout_s: float, on_idle: Callable[[], None] | None = None) -> object:
        deadline = time.monotonic() + timeout_s
        while (item := self._poll(0.5 if on_idle is None else IDLE_TICK_S)) is None:
            if time.monotonic() > deadline:
                raise BenchError("publishers did not report in time")
            if on_idle is not None:
                on_idle()
        return item

    def wait_ready(self) -> None:
        for _ in self._specs:
            self._get(READY_TIMEOUT_S)

    def go(self) -> float:
        """Release every publisher at once; return the perf_counter of the release."""
        started = time.perf_counter()
        self._go.set()
        return started

    def wait_sent(self, seconds: float, on_idle: Callable[[], None] | None = None) -> SentTotals:
        """Every publisher's sent report; `on_idle` is called about every 0.1 s meanwhile."""
        reports = [self._get_sent(seconds + SENT_GRACE_S, on_idle) for _ in self._specs]
        return SentTotals(
            messages=sum(r.messages for r in reports),
            readings=sum(r.readings for r in reports),
            first_publish=min(r.first_publish for r in reports),
            last_publish=max(r.last_publish for r in reports),
            errors=tuple(f"publisher {r.index}: {r.error}" for r in reports if r.error),
        )

    def _get_sent(self, timeout_s: float, on_idle: Callable[[], None] | None) -> SentReport:
        while True:
            item = self._get(timeout_s, on_idle)
            if isinstance(item, SentReport):
                return item
            if not isinstance(item, AckReport):
                raise BenchError(f"unexpected publisher report {item!r}")
            # A fast publisher can be fully acked before the others have reported sent.
            self._early_acks.append(item)

    def wait_acked(self, grace_s: float) -> int:
        """Acked batches over all publishers. Each reports once all of its sent batches are
        acked, or once `grace_s` has passed (then told to stop waiting)."""
        deadline = time.monotonic() + grace_s
        acked = sum(r.acked for r in self._early_acks)
        reports = len(self._early_acks)
        while reports < len(self._specs):
            if time.monotonic() > deadline:
                self._finish.set()
            if time.monotonic() > deadline + READY_TIMEOUT_S:
                raise BenchError("publishers did not report their acks")
            item = self._poll()
            if item is None:
                continue
            if not isinstance(item, AckReport):
                raise BenchError(f"unexpected publisher report {item!r}")
            acked += item.acked
            reports += 1
        return acked

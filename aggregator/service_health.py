"""The aggregator's own health, as /healthz and the `envnet_health_state` gauge report it.

A pure function of what the service observed (storage writes, the alerting worker, the broker
connections) and of `now`, so every state is testable without waiting for one. Each component
is `ok`, `degraded` (something is wrong but still within its allowance, or intake paused on
purpose) or `failing`; the overall state is the worst of them. HTTP: 200 for ok and degraded,
503 for failing, so a probe restarts or pages only on a real failure, while an operator can
alert on `degraded` from the JSON body or the gauge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Final, Literal

import msgspec

State = Literal["ok", "degraded", "failing"]

# Gauge values: an alert rule can say `envnet_health_state > 0` (degraded) or `== 2`.
STATE_VALUE: Final[dict[State, int]] = {"ok": 0, "degraded": 1, "failing": 2}


@dataclass(frozen=True, slots=True)
class StorageObservation:
    last_success_at: float | None  # wall time of the last successful write
    failing_since: float | None  # first failed attempt since the last success
    failed_attempts: int  # attempts since the last success
    last_error: str | None
    buffered_readings: int  # accepted, not yet stored (and so not acked)


@dataclass(frozen=True, slots=True)
class WorkerObservation:
    alive: bool  # the process runs and its socket is open
    last_reply_at: float | None
    unanswered: int  # requests sent and not yet answered


@dataclass(frozen=True, slots=True)
class BrokerObservation:
    intake_connected: bool
    intake_paused: bool  # disconnected on purpose: storage is behind (backpressure)
    intake_changed_at: float  # when intake last connected or disconnected (or the start)
    publisher_connected: bool
    publisher_changed_at: float


# An alerting worker this long without a reply is late ("degraded"), not yet failing.
WORKER_LATE_AFTER_S: Final = 10.0


class HealthLimits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """agg.toml [metrics]'s /healthz keys: writes failing, the alerting worker silent, or
    intake and publisher off the broker for this long is "failing" (HTTP 503); shorter is
    "degraded" (HTTP 200)."""

    storage_failing_after_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    worker_failing_after_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    broker_failing_after_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0


class StorageHealth(msgspec.Struct, frozen=True):
    state: State
    detail: str
    last_write_age_s: float | None
    failing_for_s: float | None
    failed_attempts: int
    buffered_readings: int
    last_error: str | None


class WorkerHealth(msgspec.Struct, frozen=True):
    state: State
    detail: str
    alive: bool
    last_reply_age_s: float | None
    unanswered: int


class BrokerHealth(msgspec.Struct, frozen=True):
    state: State
    detail: str
    intake_connected: bool
    intake_paused: bool
    publisher_connected: bool
    since_s: float  # how long the current connection state has lasted (the worse one)


class Components(msgspec.Struct, frozen=True):
    storage: StorageHealth
    worker: WorkerHealth
    broker: BrokerHealth


class HealthReport(msgspec.Struct, frozen=True):
    status: State
    components: Components

    @property
    def http_status(self) -> int:
        return 503 if self.status == "failing" else 200

    def states(self) -> dict[str, State]:
        c = self.components
        return {
            "overall": self.status,
            "storage": c.storage.state,
            "worker": c.worker.state,
            "broker": c.broker.state,
        }


def _age(now: float, at: float | None) -> float | None:
    return None if at is None else round(max(0.0, now - at), 1)


def storage_health(obs: StorageObservation, now: float, limits: HealthLimits) -> StorageHealth:
    failing_for = _age(now, obs.failing_since)
    if failing_for is None:
        state: State = "ok"
        age = _age(now, obs.last_success_at)
        detail = "no write yet" if age is None else f"last write {age:g} s ago"
    else:
        state = "failing" if failing_for >= limits.storage_failing_after_s else "degraded"
        detail = (
            f"writes failing for {failing_for:g} s ({obs.failed_attempts} attempts), "
            f"{obs.buffered_readings} readings buffered and not acked: {obs.last_error}"
        )
    return StorageHealth(
        state=state,
        detail=detail,
        last_write_age_s=_age(now, obs.last_success_at),
        failing_for_s=failing_for,
        failed_attempts=obs.failed_attempts,
        buffered_readings=obs.buffered_readings,
        last_error=obs.last_error,
    )


def worker_health(
    obs: WorkerObservation, now: float, started_at: float, limits: HealthLimits
) -> WorkerHealth:
    # Silence matters only while something waits for an answer.
    reply_age = _age(now, obs.last_reply_at if obs.last_reply_at is not None else started_at)
    state: State = "ok"
    detail = "answering"
    if not obs.alive:
        state, detail = "failing", "the alerting worker process is gone: no alerts are judged"
    elif obs.unanswered and reply_age is not None:
        if reply_age >= limits.worker_failing_after_s:
            state = "failing"
        elif reply_age >= WORKER_LATE_AFTER_S:
            state = "degraded"
        if state != "ok":
            detail = f"no answer for {reply_age:g} s, {obs.unanswered} requests waiting"
    return WorkerHealth(
        state=state,
        detail=detail,
        alive=obs.alive,
        last_reply_age_s=_age(now, obs.last_reply_at),
        unanswered=obs.unanswered,
    )


def broker_health(obs: BrokerObservation, now: float, limits: HealthLimits) -> BrokerHealth:
    down: list[tuple[str, float]] = []
    if not obs.intake_connected:
        down.append(("intake", max(0.0, now - obs.intake_changed_at)))
    if not obs.publisher_connected:
        down.append(("publisher", max(0.0, now - obs.publisher_changed_at)))
    state: State = "ok"
    detail = "intake and publisher connected"
    since = max(0.0, now - max(obs.intake_changed_at, obs.publisher_changed_at))
    if down:
        since = max(seconds for _, seconds in down)
        names = " and ".join(name for name, _ in down)
        if obs.intake_paused and obs.publisher_connected:
            # On purpose, for as long as storage is behind: the storage component says why.
            state, detail = "degraded", "intake paused: storage is behind, the broker holds"
        elif since >= limits.broker_failing_after_s:
            state, detail = "failing", f"{names} not connected to the broker for {since:.0f} s"
        else:
            state, detail = "degraded", f"{names} not connected to the broker ({since:.0f} s)"
    return BrokerHealth(
        state=state,
        detail=detail,
        intake_connected=obs.intake_connected,
        intake_paused=obs.intake_paused,
        publisher_connected=obs.publisher_connected,
        since_s=round(since, 1),
    )


def _worst(*states: State) -> State:
    return max(states, key=STATE_VALUE.__getitem__)


def evaluate(
    storage: StorageObservation,
    worker: WorkerObservation,
    broker: BrokerObservation,
    *,
    now: float,
    started_at: float,
    limits: HealthLimits,
) -> HealthReport:
    components = Components(
        storage=storage_health(storage, now, limits),
        worker=worker_health(worker, now, started_at, limits),
        broker=broker_health(broker, now, limits),
    )
    status = _worst(components.storage.state, components.worker.state, components.broker.state)
    return HealthReport(status=status, components=components)

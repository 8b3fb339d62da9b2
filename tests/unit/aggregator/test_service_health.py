"""The aggregator's own health (/healthz): a pure function of what was observed and `now`,
and the storage failure streak that logs at a steady rate."""

from __future__ import annotations

import itertools

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from aggregator.service_health import (
    BrokerObservation,
    HealthLimits,
    StorageObservation,
    WorkerObservation,
    evaluate,
)
from aggregator.storage.status import StorageStatus

LIMITS = HealthLimits(
    storage_failing_after_s=30, worker_failing_after_s=60,
    broker_failing_after_s=60,
)  # fmt: skip
T0 = 1_800_000_000.0
STORAGE_OK = StorageObservation(T0 - 2, None, 0, None, 0)
WORKER_OK = WorkerObservation(alive=True, last_reply_at=T0 - 1, unanswered=1)
BROKER_OK = BrokerObservation(True, False, T0 - 100, True, T0 - 100)


def report(
    storage: StorageObservation = STORAGE_OK,
    worker: WorkerObservation = WORKER_OK,
    broker: BrokerObservation = BROKER_OK,
    now: float = T0,
) -> dict[str, object]:
    result = evaluate(storage, worker, broker, now=now, started_at=T0 - 300, limits=LIMITS)
    decoded: dict[str, object] = msgspec.json.decode(msgspec.json.encode(result))
    decoded["http"] = result.http_status
    return decoded


def states(r: dict[str, object]) -> tuple[object, ...]:
    components = r["components"]
    assert isinstance(components, dict)
    return (r["status"], *(components[c]["state"] for c in ("storage", "worker", "broker")))


def test_all_well_is_ok_and_200() -> None:
    r = report()
    assert states(r) == ("ok", "ok", "ok", "ok") and r["http"] == 200
    assert r["components"]["storage"]["last_write_age_s"] == 2.0  # type: ignore[index]


def test_a_database_outage_is_degraded_then_failing_with_its_numbers() -> None:
    failing = StorageObservation(T0 - 40, T0 - 35, 12, "HTTP 503: down", 4200)
    early = report(failing, now=T0 - 10)  # failing for 25 s: within the allowance
    assert states(early)[:2] == ("degraded", "degraded") and early["http"] == 200
    r = report(failing)
    assert states(r) == ("failing", "failing", "ok", "ok") and r["http"] == 503
    storage = r["components"]["storage"]  # type: ignore[index]
    assert storage["failing_for_s"] == 35.0
    assert storage["failed_attempts"] == 12
    assert storage["buffered_readings"] == 4200
    assert storage["last_write_age_s"] == 40.0
    assert "HTTP 503: down" in storage["detail"] and "4200 readings" in storage["detail"]


def test_the_worker_gone_or_silent() -> None:
    gone = report(worker=WorkerObservation(alive=False, last_reply_at=T0 - 1, unanswered=0))
    assert states(gone) == ("failing", "ok", "failing", "ok") and gone["http"] == 503
    slow = report(worker=WorkerObservation(alive=True, last_reply_at=T0 - 20, unanswered=3))
    assert states(slow) == ("degraded", "ok", "degraded", "ok")
    stuck = report(worker=WorkerObservation(alive=True, last_reply_at=T0 - 61, unanswered=3))
    assert states(stuck)[2] == "failing"
    # Nothing asked, nothing to answer: an old last reply is not a fault.
    idle = report(worker=WorkerObservation(alive=True, last_reply_at=T0 - 600, unanswered=0))
    assert states(idle)[2] == "ok"


def test_broker_reconnecting_paused_and_lost() -> None:
    blip = report(broker=BrokerObservation(False, False, T0 - 5, True, T0 - 100))
    assert states(blip)[3] == "degraded" and blip["http"] == 200
    lost = report(broker=BrokerObservation(False, False, T0 - 61, True, T0 - 100))
    assert states(lost)[3] == "failing" and lost["http"] == 503
    paused = report(broker=BrokerObservation(False, True, T0 - 600, True, T0 - 100))
    assert states(paused)[3] == "degraded"
    no_publisher = report(broker=BrokerObservation(True, False, T0 - 100, False, T0 - 90))
    assert states(no_publisher)[3] == "failing"
    assert "publisher" in no_publisher["components"]["broker"]["detail"]  # type: ignore[index]


@given(
    storage_for=st.none() | st.floats(0, 1e6),
    worker_alive=st.booleans(),
    intake=st.booleans(),
    now_offset=st.floats(0, 1e6),
)
def test_overall_is_the_worst_and_503_only_when_failing(
    storage_for: float | None, worker_alive: bool, intake: bool, now_offset: float
) -> None:
    now = T0 + now_offset
    since = None if storage_for is None else now - storage_for
    r = report(
        StorageObservation(T0, since, 1 if since else 0, "x" if since else None, 0),
        WorkerObservation(worker_alive, T0, 0),
        BrokerObservation(intake, False, T0, True, T0),
        now=now,
    )
    order = {"ok": 0, "degraded": 1, "failing": 2}
    overall, *parts = states(r)
    assert overall == max(parts, key=lambda s: order[str(s)])
    assert (r["http"] == 503) == (overall == "failing")


def test_retries_are_logged_at_a_steady_rate_whatever_the_attempts() -> None:
    status = StorageStatus(warn_every_s=30)
    # Three writers retrying every 0.5 s for 3 minutes: 1080 attempts.
    logged = [t for t in (T0 + i / 6 for i in range(1080)) if status.failed("down", t)]
    assert len(logged) == 6  # at 0, 30, 60, 90, 120, 150 s
    assert all(b - a >= 30 for a, b in itertools.pairwise(logged))
    assert status.attempts == 1080 and status.failing_for(T0 + 180) == 180
    recovered = status.succeeded(T0 + 180)
    assert recovered is not None and recovered.attempts == 1080
    assert recovered.failed_for_s == 180
    assert status.failing_since is None and status.last_success_at == T0 + 180
    # A new streak is logged at once.
    assert status.failed("down again", T0 + 181)
    assert status.succeeded(T0 + 182) is not None
    assert status.succeeded(T0 + 183) is None

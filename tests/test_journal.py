"""The journal: durable before publish, deleted only on ack, bounded with counted drops."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.journal import Journal, JournalError
from schemas.messages import Reading


def reading(ts: int, value: float = 1.0, quantity: str = "pm2_5") -> Reading:
    return Reading(
        ts=ts,
        quantity="pm2_5",
        value=value,
        unit="ug/m3",
        period_s=60,
        stat="mean",
        sensor="pm",
        flags=("simulated",),
    )


BASE = 1_796_000_000_000


def open_journal(tmp_path: Path, **bounds: int) -> Journal:
    return Journal(
        tmp_path / "j.sqlite", bounds.get("max_bytes", 10**9), bounds.get("max_age_s", 10**6)
    )


def test_live_batch_round_trip_and_ack(tmp_path: Path) -> None:
    journal = open_journal(tmp_path)
    seq = journal.append([reading(BASE), reading(BASE + 60_000)], BASE, as_batch=True)
    assert seq == 1
    batch = journal.batch(1)
    assert batch is not None and batch.live and batch.attempts == 0
    assert [r.ts for r in batch.readings] == [BASE, BASE + 60_000]
    assert batch.readings[0].flags == ("simulated",)
    assert journal.ack([1], BASE + 1) == 2
    assert journal.depth() == 0
    assert journal.health().last_ack_ms == BASE + 1


def test_seq_survives_reopening(tmp_path: Path) -> None:
    journal = open_journal(tmp_path)
    journal.append([reading(BASE)], BASE, as_batch=True)
    journal.append([reading(BASE + 1)], BASE, as_batch=True)
    journal.ack([1, 2], BASE)
    journal.close()
    reopened = open_journal(tmp_path)
    assert reopened.append([reading(BASE + 2)], BASE, as_batch=True) == 3


def test_offline_readings_are_packed_into_backlog_batches_oldest_first(tmp_path: Path) -> None:
    journal = open_journal(tmp_path)
    for i in range(250):
        assert journal.append([reading(BASE + i * 1000)], BASE, as_batch=False) is None
    assert journal.unassigned_count() == 250
    first = journal.pack_backlog(100, BASE)
    second = journal.pack_backlog(100, BASE)
    third = journal.pack_backlog(100, BASE)
    assert journal.pack_backlog(100, BASE) is None
    batches = [journal.batch(s) for s in (first, second, third) if s is not None]
    assert [len(b.readings) for b in batches if b] == [100, 100, 50]
    assert batches[0] is not None and batches[0].readings[0].ts == BASE
    assert batches[0] is not None and not batches[0].live


def test_due_batches_back_off_per_attempt(tmp_path: Path) -> None:
    journal = open_journal(tmp_path)
    seq = journal.append([reading(BASE)], BASE, as_batch=True)
    assert seq is not None
    assert journal.due_batches(BASE, 1000, 8000, 10) == [seq]  # never sent
    journal.mark_sent(seq, BASE)
    assert journal.due_batches(BASE + 999, 1000, 8000, 10) == []
    assert journal.due_batches(BASE + 1000, 1000, 8000, 10) == [seq]
    journal.mark_sent(seq, BASE + 1000)  # second attempt: wait doubles
    assert journal.due_batches(BASE + 2999, 1000, 8000, 10) == []
    assert journal.due_batches(BASE + 3000, 1000, 8000, 10) == [seq]
    for _ in range(10):
        journal.mark_sent(seq, BASE + 10_000)
    assert journal.due_batches(BASE + 18_000, 1000, 8000, 10) == [seq]  # capped at 8 s
    journal.mark_all_unsent()
    assert journal.due_batches(BASE + 10_001, 1000, 8000, 10) == [seq]


def test_age_bound_drops_oldest_and_counts(tmp_path: Path) -> None:
    journal = open_journal(tmp_path, max_age_s=3600)
    # Age is time in the journal: an old measurement journaled just now is young.
    journal.append([reading(BASE)], BASE, as_batch=True)
    journal.append([reading(BASE - 10**9)], BASE + 3_000_000, as_batch=False)
    assert journal.enforce_bounds(BASE + 3_700_000) == 1
    health = journal.health()
    assert health.depth == 1 and health.dropped == 1
    assert health.oldest_ts == BASE - 10**9
    assert journal.batch(1) is None  # the emptied batch went too


def test_byte_bound_drops_oldest_first(tmp_path: Path) -> None:
    journal = open_journal(tmp_path, max_bytes=200_000)
    for i in range(40):
        journal.append(
            [reading(BASE + (i * 100 + j) * 1000) for j in range(100)], BASE, as_batch=False
        )
    dropped = journal.enforce_bounds(BASE)
    assert dropped > 0
    assert journal.used_bytes() <= 200_000
    assert journal.health().dropped == dropped
    oldest = journal.health().oldest_ts
    assert oldest is not None and oldest == BASE + dropped * 1000


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match=r"j\.sqlite"):
        Journal(path, 10**6, 10**6)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    journal = open_journal(tmp_path)
    journal._db.execute("UPDATE meta SET value=99 WHERE key='schema'")
    journal.close()
    with pytest.raises(JournalError, match="newer"):
        open_journal(tmp_path)

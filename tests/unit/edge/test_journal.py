"""The journal: durable before publish, deleted only on ack, bounded with counted drops,
one commit per append, and it survives a damaged file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge.journal import (
    SEQ_BLOCK,
    Journal,
    JournalFullError,
    JournalMissingError,
    JournalVersionError,
    _StoredSerialReading,
    decode_chunk,
    encode_chunk,
    read_status,
)
from schemas.messages import Reading

BASE = 1_796_000_000_000


def reading(ts: int, value: float = 1.0) -> Reading:
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


def readings(start: int, n: int) -> list[Reading]:
    return [reading(BASE + (start + i) * 1000) for i in range(n)]


def open_journal(tmp_path: Path, **bounds: int) -> Journal:
    return Journal(
        tmp_path / "j.sqlite", bounds.get("max_bytes", 10**9), bounds.get("max_age_s", 10**6)
    )


class CommitCounter:
    """PRAGMA data_version of a second connection changes whenever the journal commits."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path)

    def version(self) -> int:
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        self._db.close()


def all_ts(path: Path) -> list[int]:
    db = sqlite3.connect(path)
    try:
        out: list[int] = []
        for (body,) in db.execute("SELECT body FROM chunks ORDER BY id"):
            out.extend(r.ts for r in decode_chunk(body))
        return out
    finally:
        db.close()


def test_live_batch_round_trip_and_ack(tmp_path: Path) -> None:
    journal = open_journal(tmp_path)
    (batch,) = journal.append([reading(BASE), reading(BASE + 60_000)], BASE, live=True)
    assert batch.seq == 1
    stored = journal.batch(1)
    assert stored is not None and [r.ts for r in stored.readings] == [BASE, BASE + 60_000]
    assert stored.readings[0].flags == ("simulated",)
    assert stored.readings == batch.readings
    assert journal.ack([1, 99], BASE + 1) == 2  # 99 is unknown: ignored
    assert journal.depth() == 0 and journal.batch(1) is None
    health = journal.health(BASE + 1)
    assert (health.last_ack_ms, health.last_ack_seq) == (BASE + 1, 1)


def test_one_commit_per_append_and_acks_ride_on_the_next(tmp_path: Path) -> None:
    journal = open_journal(tmp_path)
    counter = CommitCounter(tmp_path / "j.sqlite")
    before = counter.version()
    (batch,) = journal.append(readings(0, 500), BASE, live=True)
    after_append = counter.version()
    assert after_append != before
    journal.ack([batch.seq], BASE)  # acknowledging writes nothing by itself...
    assert counter.version() == after_append
    journal.append(readings(500, 10), BASE, live=False)
    after_second = counter.version()
    assert after_second != after_append
    assert journal.pack_backlog(100) is not None  # ...nor does packing a backlog batch
    assert counter.version() == after_second
    journal._db.close()  # crash: the delete went out with the second append
    assert all_ts(tmp_path / "j.sqlite") == [BASE + (500 + i) * 1000 for i in range(10)]
    counter.close()


def test_an_ack_not_yet_committed_is_resent_after_a_crash_not_lost(tmp_path: Path) -> None:
    journal = open_journal(tmp_path)
    (batch,) = journal.append(readings(0, 3), BASE, live=True)
    journal.ack([batch.seq], BASE)
    journal._db.close()  # a crash: the delete was never committed
    reopened = open_journal(tmp_path)
    assert reopened.depth() == 3 and reopened.backlog == 3


def test_seqs_grow_across_restarts_past_the_reserved_block(tmp_path: Path) -> None:
    journal = open_journal(tmp_path)
    seqs = [journal.append([reading(BASE + i)], BASE, live=True)[0].seq for i in range(3)]
    assert seqs == [1, 2, 3]
    journal._db.close()  # crashed: seqs 1..3 may be in the aggregator's memory
    reopened = open_journal(tmp_path)
    # Everything journaled is backlog again, under seqs never used before.
    first = reopened.pack_backlog(100)
    assert first is not None and first > SEQ_BLOCK
    assert reopened.append([reading(BASE + 9)], BASE, live=True)[0].seq == first + 1


def test_backlog_is_packed_oldest_first_within_the_batch_size(tmp_path: Path) -> None:
    journal = open_journal(tmp_path)
    for i in range(25):
        assert journal.append(readings(i * 10, 10), BASE, live=False) == []
    journal.append(readings(900, 250), BASE, live=False)  # one chunk above the batch size
    assert journal.backlog == 500
    sizes = []
    first_ts = []
    while (seq := journal.pack_backlog(100)) is not None:
        batch = journal.batch(seq)
        assert batch is not None
        sizes.append(len(batch.readings))
        first_ts.append(batch.readings[0].ts)
    assert sizes == [100, 100, 50, 250]
    assert first_ts == sorted(first_ts) and first_ts[0] == BASE
    assert journal.backlog == 0


def test_packing_skips_live_batches_and_acknowledged_chunks(tmp_path: Path) -> None:
    journal = open_journal(tmp_path)
    journal.append(readings(0, 5), BASE, live=False)
    (live,) = journal.append(readings(5, 5), BASE, live=True)
    journal.append(readings(10, 5), BASE, live=False)
    journal.ack([live.seq], BASE)
    seq = journal.pack_backlog(100)
    assert seq is not None
    batch = journal.batch(seq)
    assert batch is not None
    assert [r.ts for r in batch.readings] == [r.ts for r in readings(0, 5) + readings(10, 5)]


def test_age_bound_drops_oldest_and_counts_persistently(tmp_path: Path) -> None:
    journal = open_journal(tmp_path, max_age_s=3600)
    journal.append(readings(0, 4), BASE, live=False)
    (live,) = journal.append(readings(4, 2), BASE + 1000, live=True)
    # Age is time in the journal: an old measurement journaled just now is young.
    journal.append([reading(BASE - 10**9)], BASE + 3_000_000, live=False)
    assert journal.enforce_bounds(BASE + 3_500_000) == 0
    assert journal.enforce_bounds(BASE + 3_600_500) == 4  # only the first chunk
    assert journal.enforce_bounds(BASE + 3_601_500) == 2  # the live batch went too...
    assert journal.batch(live.seq) is None  # ...and is forgotten
    health = journal.health(BASE + 3_601_500)
    assert health.depth == 1 and health.dropped == 6 and health.dropped_bytes > 0
    assert health.oldest_ts == BASE - 10**9 and health.oldest_age_s == 601
    journal.close()
    status = read_status(tmp_path / "j.sqlite", BASE + 3_601_500)
    assert (status.dropped_readings, status.dropped_bytes) == (6, health.dropped_bytes)


def test_byte_bound_drops_oldest_first_and_dissolves_partly_dropped_batches(
    tmp_path: Path,
) -> None:
    journal = open_journal(tmp_path, max_bytes=200_000)
    for i in range(60):
        journal.append(readings(i * 100, 100), BASE, live=False)
    packed = [journal.pack_backlog(300) for _ in range(3)]
    dropped = journal.enforce_bounds(BASE)
    assert dropped > 0 and dropped % 100 == 0  # whole chunks
    assert journal.used_bytes() <= 200_000
    health = journal.health(BASE)
    assert health.dropped == dropped and health.depth == 6000 - dropped
    assert health.oldest_ts == BASE + dropped * 1000  # oldest first
    assert all(journal.batch(s) is None for s in packed if s is not None)
    # The surviving readings of dissolved batches wait for the drain again.
    assert journal.backlog == journal.depth()
    seq = journal.pack_backlog(100)
    assert seq is not None
    batch = journal.batch(seq)
    assert batch is not None and batch.readings[0].ts == BASE + dropped * 1000


def test_a_full_disk_is_a_clear_error_and_making_room_fixes_it(tmp_path: Path) -> None:
    journal = open_journal(tmp_path)
    for i in range(30):
        journal.append(readings(i * 100, 100), BASE, live=False)
    pages = journal._db.execute("PRAGMA page_count").fetchone()[0]
    # SQLite reports a database that may not grow exactly as it reports a full disk.
    journal._db.execute(f"PRAGMA max_page_count={pages}")

    def fill() -> None:
        for i in range(30, 60):
            journal.append(readings(i * 100, 100), BASE, live=False)

    with pytest.raises(JournalFullError):
        fill()
    depth = journal.depth()
    dropped = journal.enforce_bounds(BASE, max_bytes=journal.used_bytes() * 9 // 10)
    assert dropped > 0
    journal.append(readings(9000, 100), BASE, live=False)
    journal.lost(readings(9100, 7))  # what did not fit at all is counted too
    assert journal.health(BASE).dropped == dropped + 7
    assert journal.depth() == depth - dropped + 100
    journal.close()
    assert read_status(tmp_path / "j.sqlite", BASE).dropped_readings == dropped + 7


def test_a_file_that_is_not_a_database_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    journal = Journal(path, 10**6, 10**6)
    assert journal.quarantined == tmp_path / "j.sqlite.corrupt-1"
    assert journal.quarantined.read_bytes().startswith(b"this is not")
    # A new journal whose seqs cannot collide with the lost one's.
    (batch,) = journal.append([reading(BASE)], BASE, live=True)
    assert batch.seq > 1_700_000_000_000


def test_damage_found_after_an_unclean_stop_moves_the_file_aside(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = Journal(path, 10**9, 10**6)
    for i in range(50):
        journal.append(readings(i * 100, 100), BASE, live=False)
    journal._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    journal._db.close()  # killed: the file is marked open
    with path.open("r+b") as f:  # an SD card returns garbage for a page in the middle
        f.seek(4096 * 5)
        f.write(b"\xa5" * 4096)
    reopened = Journal(path, 10**9, 10**6)
    assert reopened.quarantined is not None and reopened.depth() == 0


def test_a_cleanly_closed_journal_is_not_checked_again(tmp_path: Path) -> None:
    journal = open_journal(tmp_path)
    journal.append(readings(0, 3), BASE, live=False)
    journal.close()
    assert read_status(tmp_path / "j.sqlite", BASE).closed_cleanly
    reopened = open_journal(tmp_path)
    assert reopened.quarantined is None and reopened.depth() == 3
    assert not read_status(tmp_path / "j.sqlite", BASE).closed_cleanly


def test_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    journal = open_journal(tmp_path)
    journal._db.execute("UPDATE meta SET value=99 WHERE key='schema'")
    journal.close()
    with pytest.raises(JournalVersionError, match="newer"):
        open_journal(tmp_path)
    assert (tmp_path / "j.sqlite").exists()
    assert not (tmp_path / "j.sqlite.corrupt-1").exists()


def test_an_unreadable_chunk_is_dropped_and_counted_not_fatal(tmp_path: Path) -> None:
    journal = open_journal(tmp_path)
    journal.append(readings(0, 4), BASE, live=False)
    journal.append(readings(4, 4), BASE, live=False)
    journal._db.execute("UPDATE chunks SET body=x'c1' WHERE id=(SELECT min(id) FROM chunks)")
    seq = journal.pack_backlog(100)
    assert seq is not None and journal.batch(seq) is None
    seq = journal.pack_backlog(100)  # the readable rest comes back as a new batch
    assert seq is not None
    batch = journal.batch(seq)
    assert batch is not None and [r.ts for r in batch.readings] == [r.ts for r in readings(4, 4)]
    assert journal.health(BASE).dropped == 4


V1_DDL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE readings (id INTEGER PRIMARY KEY, batch INTEGER, ts INTEGER NOT NULL,
    quantity TEXT NOT NULL, value REAL NOT NULL, period_s INTEGER NOT NULL, stat TEXT NOT NULL,
    sensor TEXT NOT NULL, flags TEXT NOT NULL, journaled_ms INTEGER NOT NULL);
CREATE TABLE batches (seq INTEGER PRIMARY KEY, created_ms INTEGER NOT NULL, sent_ms INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0, live INTEGER NOT NULL);
INSERT INTO meta VALUES ('schema', 1), ('next_seq', 42), ('dropped', 5);
"""


def test_a_schema_1_journal_is_migrated_with_its_readings_and_seqs(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    old = sqlite3.connect(path)
    old.executescript(V1_DDL)
    rows = [
        (41 if i < 3 else None, BASE + i * 1000, "pm2_5", 10.0 + i, 60, "mean", "pm", "", BASE)
        for i in range(6)
    ]
    rows.append((None, BASE, "no_such_quantity", 1.0, 60, "mean", "pm", "", BASE + 1))
    old.executemany(
        "INSERT INTO readings (batch, ts, quantity, value, period_s, stat, sensor, flags,"
        " journaled_ms) VALUES (?,?,?,?,?,?,?,?,?)",
        rows,
    )
    old.commit()
    old.close()
    journal = Journal(path, 10**9, 10**6)
    assert journal.depth() == 6 and journal.backlog == 6
    assert journal.health(BASE).dropped == 6  # 5 before, and the unreadable row
    seq = journal.pack_backlog(100)
    assert seq is not None and seq > 41
    batch = journal.batch(seq)
    assert batch is not None and [r.value for r in batch.readings] == [10.0 + i for i in range(6)]


def test_status_reads_without_writing_while_the_agent_runs_or_not(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with pytest.raises(JournalMissingError, match="no journal"):
        read_status(path, BASE)
    journal = Journal(path, 10**9, 10**6)
    (batch,) = journal.append(readings(0, 3), BASE, live=True)
    journal.append(readings(3, 2), BASE + 500, live=False)
    journal.ack([batch.seq], BASE + 700)
    journal.flush()
    running = read_status(path, BASE + 10_500)
    assert (running.depth, running.chunks, running.oldest_age_s) == (2, 1, 10)
    assert (running.last_ack_ms, running.last_ack_seq) == (BASE + 700, batch.seq)
    assert not running.closed_cleanly and running.oldest_ts == BASE + 3000
    journal.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    stopped = read_status(path, BASE + 10_500)
    assert stopped.depth == 2 and stopped.closed_cleanly
    assert sorted(p.name for p in tmp_path.iterdir()) == files  # no -wal, no -shm made


def test_every_field_of_a_reading_survives_the_journal() -> None:
    # A field added to Reading and not to the stored form would be lost in every journal.
    stored = set(_StoredSerialReading.__struct_fields__)
    assert stored == set(Reading.__struct_fields__) - {"unit"}
    full = Reading(
        ts=BASE,
        quantity="pm2_5",
        value=12.5,
        unit="ug/m3",
        period_s=60,
        stat="mean",
        sensor="pm",
        flags=("simulated", "incomplete"),
        serial="PMS5003-0001",
    )
    assert decode_chunk(encode_chunk([full, reading(BASE + 1)])) == [full, reading(BASE + 1)]

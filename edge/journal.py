"""The durable journal: every reading is committed here before it is published, and deleted
only when the aggregator acknowledges the batch that carried it.

SQLite in WAL mode with synchronous=FULL: a commit has reached the disk when `append` returns,
so a power cut after that loses nothing. Commits are per interval (one transaction for all of
an interval's readings), not per sample, to spare the SD card.

Readings are assigned to a batch, with a per-node sequence number that survives reboots, when
they are first sent. Readings recorded while offline stay unassigned and are later packed into
backlog batches of up to `batch_readings`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, cast

from schemas.messages import Flag, JournalHealth, Reading
from schemas.quantities import SPECS

SCHEMA_VERSION: Final = 1

_DDL: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY,
    batch INTEGER,
    ts INTEGER NOT NULL,
    quantity TEXT NOT NULL,
    value REAL NOT NULL,
    period_s INTEGER NOT NULL,
    stat TEXT NOT NULL,
    sensor TEXT NOT NULL,
    flags TEXT NOT NULL,
    journaled_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS readings_batch ON readings (batch);
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    sent_ms INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    live INTEGER NOT NULL
);
"""

# Rows deleted per step when the journal is over its byte bound.
_DROP_STEP: Final = 500


class JournalError(Exception):
    """The journal file is unusable (corrupt, or written by a newer version)."""


@dataclass(frozen=True, slots=True)
class Batch:
    seq: int
    readings: list[Reading]
    live: bool
    attempts: int


def _flags_text(flags: Iterable[Flag]) -> str:
    return ",".join(flags)


def _flags_tuple(text: str) -> tuple[Flag, ...]:
    # Written by _flags_text from validated readings, so every item is a Flag.
    return cast(tuple[Flag, ...], tuple(flag for flag in text.split(",") if flag))


class Journal:
    def __init__(self, path: Path, max_bytes: int, max_age_s: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._max_bytes = max_bytes
        self._max_age_ms = max_age_s * 1000
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_DDL)
            self._check_version()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise JournalError(f"{path}: {exc}") from None
        self._page_size: int = self._db.execute("PRAGMA page_size").fetchone()[0]

    def _check_version(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        elif row[0] > SCHEMA_VERSION:
            raise JournalError(f"journal schema {row[0]} is newer than this agent's")

    def close(self) -> None:
        self._db.close()

    # -- meta counters -------------------------------------------------------------------

    def _meta(self, key: str, default: int = 0) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if row is None else int(row[0])

    def _set_meta(self, key: str, value: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def _next_seq(self) -> int:
        seq = self._meta("next_seq", 1)
        self._set_meta("next_seq", seq + 1)
        return seq

    # -- writing -------------------------------------------------------------------------

    def append(self, readings: Sequence[Reading], now_ms: int, *, as_batch: bool) -> int | None:
        """Commit readings durably. With `as_batch`, they form a new live batch whose seq is
        returned; otherwise they wait, unassigned, for the backlog drain."""
        if not readings:
            return None
        with self._transaction():
            seq = None
            if as_batch:
                seq = self._next_seq()
                self._db.execute(
                    "INSERT INTO batches (seq, created_ms, live) VALUES (?, ?, 1)", (seq, now_ms)
                )
            self._db.executemany(
                "INSERT INTO readings"
                " (batch, ts, quantity, value, period_s, stat, sensor, flags, journaled_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        seq,
                        r.ts,
                        r.quantity,
                        r.value,
                        r.period_s,
                        r.stat,
                        r.sensor,
                        _flags_text(r.flags),
                        now_ms,
                    )
                    for r in readings
                ],
            )
        return seq

    def pack_backlog(self, max_readings: int, now_ms: int) -> int | None:
        """Assign the oldest unassigned readings to a new backlog batch; None if there are none."""
        with self._transaction():
            ids = [
                row[0]
                for row in self._db.execute(
                    "SELECT id FROM readings WHERE batch IS NULL ORDER BY id LIMIT ?",
                    (max_readings,),
                )
            ]
            if not ids:
                return None
            seq = self._next_seq()
            self._db.execute(
                "INSERT INTO batches (seq, created_ms, live) VALUES (?, ?, 0)", (seq, now_ms)
            )
            self._db.execute(
                "UPDATE readings SET batch=? WHERE batch IS NULL AND id BETWEEN ? AND ?",
                (seq, ids[0], ids[-1]),
            )
        return seq

    def mark_sent(self, seq: int, now_ms: int) -> None:
        """Record a transmission. Not durable on purpose: after a crash a batch that looks
        unsent is simply sent again, which the aggregator deduplicates."""
        self._db.execute(
            "UPDATE batches SET sent_ms=?, attempts=attempts+1 WHERE seq=?", (now_ms, seq)
        )

    def mark_all_unsent(self) -> None:
        """After a reconnect every unacknowledged batch is due again at once."""
        self._db.execute("UPDATE batches SET sent_ms=NULL WHERE sent_ms IS NOT NULL")

    def ack(self, seqs: Iterable[int], now_ms: int) -> int:
        """Delete acknowledged batches and their readings; return how many readings went."""
        seq_list = list(seqs)
        if not seq_list:
            return 0
        with self._transaction():
            deleted = 0
            for seq in seq_list:
                cursor = self._db.execute("DELETE FROM readings WHERE batch=?", (seq,))
                deleted += cursor.rowcount
                self._db.execute("DELETE FROM batches WHERE seq=?", (seq,))
            self._set_meta("last_ack_ms", now_ms)
        return deleted

    # -- reading -------------------------------------------------------------------------

    def batch(self, seq: int) -> Batch | None:
        row = self._db.execute("SELECT live, attempts FROM batches WHERE seq=?", (seq,)).fetchone()
        if row is None:
            return None
        readings = [
            Reading(
                ts=ts,
                quantity=quantity,
                value=value,
                unit=SPECS[quantity].unit,
                period_s=period_s,
                stat=stat,
                sensor=sensor,
                flags=_flags_tuple(flags),
            )
            for ts, quantity, value, period_s, stat, sensor, flags in self._db.execute(
                "SELECT ts, quantity, value, period_s, stat, sensor, flags FROM readings"
                " WHERE batch=? ORDER BY id",
                (seq,),
            )
        ]
        return Batch(seq=seq, readings=readings, live=bool(row[0]), attempts=int(row[1]))

    def due_batches(self, now_ms: int, timeout_ms: int, cap_ms: int, limit: int) -> list[int]:
        """Batches never sent, or sent and unacknowledged for longer than their timeout,
        which doubles with each attempt up to `cap_ms`. Oldest first."""
        due = []
        for seq, sent_ms, attempts in self._db.execute(
            "SELECT seq, sent_ms, attempts FROM batches ORDER BY seq"
        ):
            if sent_ms is None:
                due.append(seq)
            else:
                wait = min(cap_ms, timeout_ms * 2 ** min(max(attempts - 1, 0), 20))
                if now_ms - sent_ms >= wait:
                    due.append(seq)
            if len(due) >= limit:
                break
        return due

    def depth(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM readings").fetchone()[0])

    def unassigned_count(self) -> int:
        return int(
            self._db.execute("SELECT count(*) FROM readings WHERE batch IS NULL").fetchone()[0]
        )

    def health(self) -> JournalHealth:
        depth, oldest = self._db.execute("SELECT count(*), min(ts) FROM readings").fetchone()
        last_ack = self._meta("last_ack_ms", 0)
        return JournalHealth(
            depth=int(depth),
            oldest_ts=oldest,
            bytes=self.used_bytes(),
            dropped=self._meta("dropped"),
            last_ack_ms=last_ack or None,
        )

    def used_bytes(self) -> int:
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * self._page_size)

    # -- bounds --------------------------------------------------------------------------

    def enforce_bounds(self, now_ms: int) -> int:
        """Drop the oldest readings beyond the age and byte bounds; count and return them.

        Age is time spent in the journal (`now_ms` and the journaling time are on the same
        real-time clock), not the age of the measurement: replayed historical data is young.

        Dropping is the explicit policy for a node offline longer than its journal can hold:
        oldest first, because the newest data matters most to an operator, and every dropped
        reading is counted in the node's status.
        """
        dropped = 0
        with self._transaction():
            cursor = self._db.execute(
                "DELETE FROM readings WHERE journaled_ms < ?", (now_ms - self._max_age_ms,)
            )
            dropped += cursor.rowcount
        while self.used_bytes() > self._max_bytes:
            with self._transaction():
                cursor = self._db.execute(
                    "DELETE FROM readings WHERE id IN "
                    "(SELECT id FROM readings ORDER BY id LIMIT ?)",
                    (_DROP_STEP,),
                )
            if cursor.rowcount == 0:
                break
            dropped += cursor.rowcount
        if dropped:
            with self._transaction():
                self._set_meta("dropped", self._meta("dropped") + dropped)
                self._db.execute(
                    "DELETE FROM batches WHERE seq NOT IN "
                    "(SELECT DISTINCT batch FROM readings WHERE batch IS NOT NULL)"
                )
        return dropped

    # -- plumbing ------------------------------------------------------------------------

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")

"""The durable journal: every reading is committed here before it is published, and deleted
only when the aggregator acknowledges the batch that carried it.

Durability. SQLite in WAL mode with synchronous=FULL: when `append` returns, its transaction
is on the disk, so neither kill -9 nor a power cut after that loses it. A crash during
`append` loses only that transaction, which was never acknowledged to the caller.

Flash. One row per *chunk*: the readings one `append` call commits together (one report
interval), packed as msgpack arrays in a blob. An append writes one row, so a commit dirties
one or two pages whatever the number of readings. Acknowledged chunks are deleted in the
next commit, not in a commit of their own. Nothing else is written per batch: sequence
numbers are reserved in blocks, and which chunks a batch carries lives in memory only.

Batches. A live batch is one chunk, sent at once. Chunks journaled while offline are packed,
oldest first, into backlog batches of up to `max_readings` when the drain sends them. After
a restart every chunk in the journal is backlog again: it was maybe sent, maybe not, so it
goes out once more under a new seq (seqs only grow, past the reserved block, so a new batch
is never mistaken for an old one), and InfluxDB absorbs the repeat (same series and time).

Bounds. `enforce_bounds` drops whole chunks, oldest first, beyond the age bound (time in the
journal) and the byte bound (pages in use). Every dropped reading and byte is counted in
the same transaction that drops it, so the counts survive any crash.

Identity. A journal is named when it is created: a random 64-bit id, kept in its meta table
and sent with every batch (ReadingsMessage.journal). A new journal starts again at seq 1, so
the aggregator knows a batch by (node, journal, seq), and the agent takes only acks that name
its own journal. A journal from before the id gets one when it is opened; an older agent
ignores the key, so the schema version stays.

Damage. After an unclean stop the file is checked (PRAGMA quick_check). A journal SQLite
cannot read is moved aside (journal.sqlite.corrupt-N) and a new one started, so a damaged
SD card costs the backlog, not the node. A journal written by a newer agent is refused.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from schemas.messages import MAX_READINGS_PER_MESSAGE, Flag, JournalHealth, Reading
from schemas.quantities import SPECS, Quantity, Statistic

SCHEMA_VERSION: Final = 2
# Seqs are made durable a block at a time: one meta write per SEQ_BLOCK batches.
SEQ_BLOCK: Final = 1024
# The WAL is truncated back to this after a checkpoint (SQLite checkpoints at 1000 pages).
WAL_LIMIT_BYTES: Final = 4 * 1024 * 1024
# SQLite's page cache, KiB. Appends touch the last page or two; a drain reads sequentially.
CACHE_KIB: Final = 512
# Row bytes beyond the body (header, rowid, integers), to size a byte-bound drop in one go.
_ROW_OVERHEAD: Final = 32
# Dropping for the byte bound goes this much below it, so it does not run every minute.
_SLACK: Final = 0.02
# The last ack (time, seq) is written with a commit at most this often, unless flushed: a
# page less per commit. Status messages carry the latest from memory.
ACK_PERSIST_EVERY_MS: Final = 30_000
# Pending acknowledged deletes beyond this are committed before a health query.
_PENDING_IN_QUERY: Final = 500

_DDL: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    journaled_ms INTEGER NOT NULL,
    n INTEGER NOT NULL,
    oldest_ts INTEGER NOT NULL,
    body BLOB NOT NULL
);
"""


class JournalError(Exception):
    """The journal cannot be used."""


class JournalCorruptError(JournalError):
    """SQLite cannot read the file: not a database, or damaged."""


class JournalVersionError(JournalError):
    """The journal was written by a newer agent; refusing to touch it."""


class JournalFullError(JournalError):
    """The disk (or the database's page limit) is full."""


class JournalIOError(JournalError):
    """Any other failure to read or write the file."""


class JournalMissingError(JournalError):
    """There is no journal at the path (read-only access does not create one)."""


class _StoredReading(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """A reading as a chunk stores it: a msgpack array, unit left out (it is the quantity's
    canonical unit, schemas/quantities.py)."""

    ts: int
    quantity: Quantity
    value: float
    period_s: int
    stat: Statistic
    sensor: str
    flags: tuple[Flag, ...] = ()


class _StoredSerialReading(_StoredReading, array_like=True, frozen=True, gc=False):
    """A reading with its sensor's serial number: one more array element. Readings without
    one keep the 7-element form, so their chunks are byte for byte what older agents wrote
    and read (an older agent ignores the extra element)."""

    serial: str | None = None


_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODER: Final = msgspec.msgpack.Decoder(list[_StoredSerialReading])


def encode_chunk(readings: Sequence[Reading]) -> bytes:
    return _ENCODER.encode(
        [
            _StoredReading(r.ts, r.quantity, r.value, r.period_s, r.stat, r.sensor, r.flags)
            if r.serial is None
            else _StoredSerialReading(
                r.ts, r.quantity, r.value, r.period_s, r.stat, r.sensor, r.flags, r.serial
            )
            for r in readings
        ]
    )


def decode_chunk(body: bytes) -> list[Reading]:
    """Raises msgspec.DecodeError, msgspec.ValidationError or ValueError (a reading the
    contract no longer accepts) for a body this agent cannot use."""
    return [
        Reading(
            ts=s.ts,
            quantity=s.quantity,
            value=s.value,
            unit=SPECS[s.quantity].unit,
            period_s=s.period_s,
            stat=s.stat,
            sensor=s.sensor,
            flags=s.flags,
            serial=s.serial,
        )
        for s in _DECODER.decode(body)
    ]


@dataclass(frozen=True, slots=True)
class Batch:
    seq: int
    readings: list[Reading]


@dataclass(frozen=True, slots=True)
class _Outstanding:
    """A batch handed out and not yet acknowledged: which chunks it carries."""

    chunk_ids: tuple[int, ...]
    readings: int


_INSERT: Final = "INSERT INTO chunks (id, journaled_ms, n, oldest_ts, body) VALUES (?, ?, ?, ?, ?)"


@dataclass(frozen=True, slots=True)
class _Row:
    id: int
    journaled_ms: int
    n: int
    size: int


@dataclass(frozen=True, slots=True)
class Drops:
    readings: int
    bytes: int


def _classify(exc: sqlite3.Error, path: Path) -> JournalError:
    code = getattr(exc, "sqlite_errorcode", None)
    primary = None if code is None else code & 0xFF
    message = f"{path}: {exc}"
    if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return JournalCorruptError(message)
    if primary == sqlite3.SQLITE_FULL:
        return JournalFullError(message)
    return JournalIOError(message)


@contextmanager
def _errors(path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise _classify(exc, path) from exc


def _json_ids(ids: Iterable[int]) -> str:
    """Ids as a JSON array, for `IN (SELECT value FROM json_each(?))`: one bound parameter
    however many ids, and no SQL built from strings."""
    return "[" + ",".join(str(int(i)) for i in ids) + "]"


def _journal_id(db: sqlite3.Connection) -> str:
    """The journal's id as the contract writes it (schemas.messages.JournalId): 16 hex digits.
    meta holds integers, so the 64 random bits are kept as SQLite's signed 64-bit integer."""
    return f"{_meta(db, 'journal_id') & 0xFFFF_FFFF_FFFF_FFFF:016x}"


def _name_journal(db: sqlite3.Connection) -> None:
    """Give a journal without an id (new, or from before ids) a random one."""
    if db.execute("SELECT 1 FROM meta WHERE key='journal_id'").fetchone() is None:
        bits = secrets.randbits(64)
        _set_meta(db, "journal_id", bits - (1 << 64) if bits >= 1 << 63 else bits)


def _meta(db: sqlite3.Connection, key: str, default: int = 0) -> int:
    row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return default if row is None else int(row[0])


def _set_meta(db: sqlite3.Connection, key: str, value: int) -> None:
    db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))


def quarantine(path: Path) -> Path:
    """Move a damaged journal (and its -wal and -shm) aside; return its new name."""
    n = 1
    while path.with_name(f"{path.name}.corrupt-{n}").exists():
        n += 1
    target = path.with_name(f"{path.name}.corrupt-{n}")
    for suffix in ("", "-wal", "-shm"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            part.rename(target.with_name(target.name + suffix))
    return target


class Journal:
    def __init__(self, path: Path, max_bytes: int, max_age_s: int) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._max_age_ms = max_age_s * 1000
        # Set when a damaged journal was moved aside at open; the agent logs it.
        self.quarantined: Path | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open(fresh_seq=1)
        except JournalCorruptError:
            self.quarantined = quarantine(path)
            # The aggregator may remember this node's recent seqs; a new journal's seqs
            # must not repeat them. Epoch milliseconds outrun any seq a node can have used.
            self._db = self._open(fresh_seq=time.time_ns() // 1_000_000)
        self._page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])
        self._batches: dict[int, _Outstanding] = {}
        self._chunk_batch: dict[int, int] = {}
        # Acknowledged chunks whose delete is not committed yet, and the latest ack.
        self._pending: set[int] = set()
        self._last_ack: tuple[int, int] | None = None  # (seq, real-time ms), in memory
        self._ack_on_disk: tuple[int, int] | None = None
        self._ack_writing: tuple[int, int] | None = None
        self._pending_since_ms: int | None = None
        # Readings that could not be journaled at all (disk full), not yet counted on disk.
        self._unsaved_drops = Drops(0, 0)
        self._load_state()

    # -- opening -------------------------------------------------------------------------

    def _open(self, fresh_seq: int) -> sqlite3.Connection:
        with _errors(self.path):
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            with _errors(self.path):
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
                db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
                db.executescript(_DDL)
                self._prepare(db, fresh_seq)
        except JournalError:
            db.close()
            raise
        return db

    def _prepare(self, db: sqlite3.Connection, fresh_seq: int) -> None:
        """Check the version and, after an unclean stop, the file; migrate; mark it open."""
        version = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if version is not None and version[0] > SCHEMA_VERSION:
            raise JournalVersionError(
                f"{self.path}: journal schema {version[0]} is newer than this agent's "
                f"({SCHEMA_VERSION}); run the newer agent or move the file away"
            )
        if _meta(db, "open") and db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise JournalCorruptError(f"{self.path}: failed its integrity check")
        db.execute("BEGIN IMMEDIATE")
        if version is None:
            _set_meta(db, "schema", SCHEMA_VERSION)
            _set_meta(db, "seq_reserved", fresh_seq - 1)
        elif version[0] < SCHEMA_VERSION:
            _migrate_v1(db)
        _name_journal(db)
        # Cleared by close(): still set at the next open means the agent did not stop cleanly.
        _set_meta(db, "open", 1)
        db.execute("COMMIT")

    def _load_state(self) -> None:
        with _errors(self.path):
            depth, first, last = self._db.execute(
                "SELECT coalesce(sum(n), 0), min(id), max(id) FROM chunks"
            ).fetchone()
            self._seq_reserved = _meta(self._db, "seq_reserved")
            # Named when the journal was created (or first opened by an agent that names them).
            self.journal_id = _journal_id(self._db)
        self._depth = int(depth)
        # Everything journaled before this start is backlog (see the module docstring).
        self._backlog = self._depth
        self._cursor = int(first or 0)
        # Ids are handed out here, not by SQLite, which reuses the highest rowid once it is
        # deleted: within a run an id is never reused, so the journal order is the id order.
        self._next_id = int(last or 0) + 1
        self._next_seq = self._seq_reserved + 1

    def close(self) -> None:
        """Commit acknowledged deletes and mark the journal cleanly closed."""
        try:
            with self._write():
                self._apply_pending(force=True)
                _set_meta(self._db, "open", 0)
            self._pending_committed()
        except JournalError:
            pass  # the next start sees an unclean stop and checks the file
        self._db.close()

    # -- writing -------------------------------------------------------------------------

    def append(self, readings: Sequence[Reading], now_ms: int, *, live: bool) -> list[Batch]:
        """Commit readings durably, in one transaction with the acknowledged deletes.

        `now_ms` is the real-time clock (for the age bound). With `live`, each chunk of up
        to 1000 readings becomes a batch to send at once, returned; otherwise the readings
        wait for the backlog drain.
        """
        chunks = [
            list(readings[start : start + MAX_READINGS_PER_MESSAGE])
            for start in range(0, len(readings), MAX_READINGS_PER_MESSAGE)
        ]
        if not chunks:
            return []
        ids = list(range(self._next_id, self._next_id + len(chunks)))
        rows = [
            (cid, now_ms, len(c), min(r.ts for r in c), encode_chunk(c))
            for cid, c in zip(ids, chunks, strict=True)
        ]
        reserve = self._reservation(len(chunks)) if live else None
        with self._write():
            self._apply_pending()
            if reserve is not None:
                _set_meta(self._db, "seq_reserved", reserve)
            self._db.executemany(_INSERT, rows)
        self._pending_committed()
        self._next_id += len(ids)
        if reserve is not None:
            self._seq_reserved = reserve
        self._depth += len(readings)
        if not live:
            self._backlog += len(readings)
            return []
        return [self._assign((cid,), chunk) for cid, chunk in zip(ids, chunks, strict=True)]

    def _reservation(self, seqs: int) -> int | None:
        """The new durable seq bound if handing out `seqs` more would pass the current one."""
        last = self._next_seq + seqs - 1
        return None if last <= self._seq_reserved else last + SEQ_BLOCK

    def _assign(self, chunk_ids: tuple[int, ...], readings: list[Reading]) -> Batch:
        seq = self._next_seq
        self._next_seq += 1
        self._batches[seq] = _Outstanding(chunk_ids, len(readings))
        for cid in chunk_ids:
            self._chunk_batch[cid] = seq
        return Batch(seq=seq, readings=readings)

    def pack_backlog(self, max_readings: int) -> int | None:
        """Form a backlog batch of the oldest waiting chunks, up to `max_readings` readings
        (or one larger chunk); None if nothing waits. Nothing is written but, once per
        SEQ_BLOCK batches, the seq reservation."""
        if self._backlog <= 0:
            return None
        picked, cursor = self._oldest_waiting(self._cursor, max_readings)
        if not picked and self._cursor > 0:
            picked, cursor = self._oldest_waiting(0, max_readings)  # the cursor was off
        if not picked:
            self._backlog = 0  # nothing is waiting after all: resynchronise the counter
            return None
        count = sum(n for _, n in picked)
        reserve = self._reservation(1)
        if reserve is not None:
            with self._write():
                _set_meta(self._db, "seq_reserved", reserve)
            self._seq_reserved = reserve
        self._cursor = cursor
        self._backlog -= count
        seq = self._next_seq
        self._next_seq += 1
        self._batches[seq] = _Outstanding(tuple(cid for cid, _ in picked), count)
        for cid, _ in picked:
            self._chunk_batch[cid] = seq
        return seq

    def _oldest_waiting(self, start: int, max_readings: int) -> tuple[list[tuple[int, int]], int]:
        """The oldest unassigned chunks from id `start` on, (id, readings), up to
        `max_readings`; and where the next search may start."""
        picked: list[tuple[int, int]] = []
        count = 0
        cursor = start
        with _errors(self.path):
            for cid, n in self._db.execute(
                "SELECT id, n FROM chunks WHERE id >= ? ORDER BY id", (start,)
            ):
                cursor = cid  # everything before this one is assigned, acked or picked
                if cid in self._chunk_batch or cid in self._pending:
                    continue
                if picked and count + n > max_readings:
                    break
                picked.append((cid, n))
                count += n
                cursor = cid + 1
                if count >= max_readings:
                    break
        return picked, cursor

    def ack(self, seqs: Iterable[int], now_ms: int) -> int:
        """The aggregator stored these batches: forget them now, delete their chunks in the
        next commit. Unknown seqs (from before a restart, or dropped) are ignored. Returns
        the readings acknowledged."""
        acked = 0
        for seq in seqs:
            batch = self._batches.pop(seq, None)
            if batch is None:
                continue
            for cid in batch.chunk_ids:
                del self._chunk_batch[cid]
            self._pending.update(batch.chunk_ids)
            acked += batch.readings
            if self._last_ack is None or seq > self._last_ack[0]:
                self._last_ack = (seq, now_ms)
            if self._pending_since_ms is None:
                self._pending_since_ms = now_ms
        self._depth -= acked
        return acked

    def note_refusal(self, refusal: LastRefusal) -> None:
        """Keep the aggregator's latest refusal, for `envnet edge status`."""
        with self._write():
            self._db.execute(_REFUSAL_DDL)
            self._db.execute(
                "INSERT OR REPLACE INTO last_refusal VALUES (1, ?, ?, ?, ?, ?)",
                (refusal.reason, refusal.detail, refusal.at_ms, refusal.kind, refusal.seq),
            )

    def flush(self) -> None:
        """Commit acknowledged deletes now (normally they ride on the next append)."""
        if not self._pending and not self._unsaved_drops.readings and not self._ack_due(True):
            return
        with self._write():
            self._apply_pending(force=True)
        self._pending_committed()

    @property
    def pending_since_ms(self) -> int | None:
        """When the oldest acknowledgement not yet committed arrived (real-time clock)."""
        return self._pending_since_ms

    def _ack_due(self, force: bool) -> bool:
        ack, disk = self._last_ack, self._ack_on_disk
        if ack is None or ack == disk:
            return False
        return force or disk is None or ack[1] - disk[1] >= ACK_PERSIST_EVERY_MS

    def _apply_pending(self, *, force: bool = False) -> None:
        self._ack_writing = None  # left over from a transaction that failed
        if self._pending:
            self._db.executemany("DELETE FROM chunks WHERE id=?", [(i,) for i in self._pending])
        if self._ack_due(force) and self._last_ack is not None:
            _set_meta(self._db, "last_ack_seq", self._last_ack[0])
            _set_meta(self._db, "last_ack_ms", self._last_ack[1])
            self._ack_writing = self._last_ack
        if self._unsaved_drops.readings:
            self._count_drops(self._unsaved_drops)

    def _pending_committed(self) -> None:
        self._pending = set()
        if self._ack_writing is not None:
            self._ack_on_disk, self._ack_writing = self._ack_writing, None
        self._pending_since_ms = None
        self._unsaved_drops = Drops(0, 0)

    def _count_drops(self, drops: Drops) -> None:
        _set_meta(self._db, "dropped", _meta(self._db, "dropped") + drops.readings)
        _set_meta(self._db, "dropped_bytes", _meta(self._db, "dropped_bytes") + drops.bytes)

    def lost(self, readings: Sequence[Reading]) -> None:
        """Count readings that could not be journaled at all (disk full). The count goes
        to disk with the next successful commit."""
        size = len(encode_chunk(readings))
        self._unsaved_drops = Drops(
            self._unsaved_drops.readings + len(readings), self._unsaved_drops.bytes + size
        )

    # -- reading -------------------------------------------------------------------------

    def batch(self, seq: int) -> Batch | None:
        """The readings of an outstanding batch; None if it was acknowledged or dropped.
        A chunk that cannot be decoded any more is dropped and counted."""
        outstanding = self._batches.get(seq)
        if outstanding is None:
            return None
        ids = outstanding.chunk_ids
        with _errors(self.path):
            found = self._db.execute(
                "SELECT id, n, body FROM chunks WHERE id IN (SELECT value FROM json_each(?))",
                (_json_ids(ids),),
            ).fetchall()
        bodies = {cid: (n, body) for cid, n, body in found}
        readings: list[Reading] = []
        for cid in ids:
            n, body = bodies[cid]
            try:
                readings.extend(decode_chunk(body))
            except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
                self._drop_unreadable(cid, n, len(body))
        if len(readings) != outstanding.readings:
            # Unreadable chunks went; the rest goes back to the drain under a new seq.
            self._forget_batch(seq)
            return None
        return Batch(seq=seq, readings=readings)

    def _drop_unreadable(self, cid: int, n: int, size: int) -> None:
        with self._write():
            self._db.execute("DELETE FROM chunks WHERE id=?", (cid,))
            self._count_drops(Drops(n, size))
        self._forget([_Row(cid, 0, n, size)])

    def batch_readings(self, seq: int) -> int | None:
        outstanding = self._batches.get(seq)
        return None if outstanding is None else outstanding.readings

    def depth(self) -> int:
        """Readings in the journal and not acknowledged."""
        return self._depth

    @property
    def backlog(self) -> int:
        """Readings waiting to be packed into a backlog batch."""
        return self._backlog

    def health(self, now_ms: int) -> JournalHealth:
        if len(self._pending) > _PENDING_IN_QUERY:
            self.flush()
        with _errors(self.path):
            oldest_ts, oldest_ms = self._db.execute(
                "SELECT min(oldest_ts), min(journaled_ms) FROM chunks"
                " WHERE id NOT IN (SELECT value FROM json_each(?))",
                (_json_ids(self._pending),),
            ).fetchone()
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        seq, ack_ms = self._last_ack or (meta.get("last_ack_seq"), meta.get("last_ack_ms"))
        return JournalHealth(
            depth=self._depth,
            oldest_ts=oldest_ts,
            bytes=self.used_bytes(),
            dropped=int(meta.get("dropped", 0)) + self._unsaved_drops.readings,
            last_ack_ms=ack_ms,
            dropped_bytes=int(meta.get("dropped_bytes", 0)) + self._unsaved_drops.bytes,
            oldest_age_s=None if oldest_ms is None else max(0, (now_ms - oldest_ms) // 1000),
            last_ack_seq=seq,
        )

    def used_bytes(self) -> int:
        with _errors(self.path):
            pages = self._db.execute("PRAGMA page_count").fetchone()[0]
            free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * self._page_size)

    # -- bounds --------------------------------------------------------------------------

    def over_bounds(self, now_ms: int) -> bool:
        """A cheap check: is the oldest chunk past the age bound, or are the pages in use
        past the byte bound?"""
        with _errors(self.path):
            first = self._db.execute(
                "SELECT journaled_ms FROM chunks ORDER BY id LIMIT 1"
            ).fetchone()
        too_old = first is not None and first[0] < now_ms - self._max_age_ms
        return too_old or self.used_bytes() > self._max_bytes

    def enforce_bounds(self, now_ms: int, *, max_bytes: int | None = None) -> int:
        """Drop the oldest chunks beyond the age and byte bounds; count and return readings.

        Age is time spent in the journal (`now_ms` and the journaling time are on the same
        real-time clock), not the age of the measurement: replayed historical data is young.

        Dropping is the explicit policy for a node offline longer than its journal can hold:
        oldest first, because the newest data matters most to an operator, and every dropped
        reading is counted, in the same transaction, and reported in the node's status.
        `max_bytes` overrides the configured bound, to make room when the disk is full.
        """
        if max_bytes is None and not self.over_bounds(now_ms):
            return 0
        limit = self._max_bytes if max_bytes is None else max_bytes
        with self._write():
            self._apply_pending()
            dropped = self._delete_oldest(self._rows_older_than(now_ms - self._max_age_ms))
            # Deleting rows frees whole pages only, so re-measure; a few passes suffice.
            for _ in range(8):
                used = self.used_bytes()
                if used <= limit:
                    break
                step = self._delete_oldest(self._rows_freeing(used - int(limit * (1 - _SLACK))))
                if not step:
                    break
                dropped += step
            drops = Drops(sum(r.n for r in dropped), sum(r.size for r in dropped))
            if drops.readings:
                self._count_drops(drops)
        self._pending_committed()
        self._forget(dropped)
        return drops.readings

    def _oldest_rows(self) -> Iterator[_Row]:
        cursor = self._db.execute(
            "SELECT id, journaled_ms, n, length(body) FROM chunks ORDER BY id"
        )
        try:
            while batch := cursor.fetchmany(256):
                for cid, journaled_ms, n, size in batch:
                    yield _Row(cid, journaled_ms, n, size)
        finally:
            cursor.close()

    def _rows_older_than(self, cutoff_ms: int) -> list[_Row]:
        rows = []
        for row in self._oldest_rows():
            if row.journaled_ms >= cutoff_ms:
                break
            rows.append(row)
        return rows

    def _rows_freeing(self, excess: int) -> list[_Row]:
        rows: list[_Row] = []
        freed = 0
        for row in self._oldest_rows():
            if freed >= excess:
                break
            rows.append(row)
            freed += row.size + _ROW_OVERHEAD
        return rows

    def _delete_oldest(self, rows: list[_Row]) -> list[_Row]:
        if rows:
            self._db.execute("DELETE FROM chunks WHERE id <= ?", (rows[-1].id,))
        return rows

    def _forget(self, dropped: list[_Row]) -> None:
        """Update the in-memory state for dropped chunks. A batch that lost a chunk is
        dissolved: its other chunks wait for the drain again, under a new seq."""
        for row in dropped:
            self._depth -= row.n
            seq = self._chunk_batch.get(row.id)
            if seq is None:
                self._backlog -= row.n
            else:
                self._forget_batch(seq)
                self._backlog -= row.n

    def _forget_batch(self, seq: int) -> None:
        """Dissolve an outstanding batch: its chunks wait for the drain again."""
        batch = self._batches.pop(seq, None)
        if batch is None:
            return
        for cid in batch.chunk_ids:
            self._chunk_batch.pop(cid, None)
        self._backlog += batch.readings
        self._cursor = min(self._cursor, *batch.chunk_ids)

    # -- plumbing ------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[None]:
        with _errors(self.path):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                # SQLite has already rolled back after some errors (SQLITE_FULL, IOERR).
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")


def _migrate_v1(db: sqlite3.Connection) -> None:
    """Schema 1 kept a row per reading and durable batches. Its readings become chunks
    (one per original journaling time, as they were appended), all of them backlog."""
    rows = db.execute(
        "SELECT ts, quantity, value, period_s, stat, sensor, flags, journaled_ms"
        " FROM readings ORDER BY id"
    ).fetchall()
    groups: dict[int, list[Reading]] = {}
    bad = 0
    for ts, quantity, value, period_s, stat, sensor, flags, journaled_ms in rows:
        try:
            reading = msgspec.convert(
                {
                    "ts": ts,
                    "quantity": quantity,
                    "value": value,
                    "unit": SPECS[quantity].unit if quantity in SPECS else "",
                    "period_s": period_s,
                    "stat": stat,
                    "sensor": sensor,
                    "flags": [f for f in flags.split(",") if f],
                },
                Reading,
            )
        except (msgspec.ValidationError, ValueError):
            bad += 1
            continue
        groups.setdefault(journaled_ms, []).append(reading)
    for journaled_ms, readings in groups.items():
        for start in range(0, len(readings), MAX_READINGS_PER_MESSAGE):
            chunk = readings[start : start + MAX_READINGS_PER_MESSAGE]
            row = (journaled_ms, len(chunk), min(r.ts for r in chunk), encode_chunk(chunk))
            db.execute(
                "INSERT INTO chunks (journaled_ms, n, oldest_ts, body) VALUES (?,?,?,?)", row
            )
    _set_meta(db, "seq_reserved", _meta(db, "next_seq", 1) - 1)
    _set_meta(db, "dropped", _meta(db, "dropped") + bad)
    db.execute("DELETE FROM meta WHERE key='next_seq'")
    db.execute("DROP TABLE IF EXISTS readings")
    db.execute("DROP TABLE IF EXISTS batches")
    _set_meta(db, "schema", SCHEMA_VERSION)
    # Schema 1's meta had a rowid and a separate key index: two pages per update, not one.
    db.execute("CREATE TABLE meta2 (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID")
    db.execute("INSERT INTO meta2 SELECT key, value FROM meta")
    db.execute("DROP TABLE meta")
    db.execute("ALTER TABLE meta2 RENAME TO meta")


class LastRefusal(msgspec.Struct, frozen=True, kw_only=True):
    """The aggregator's latest refusal of this node's messages (envnet.refusal/1)."""

    reason: str
    detail: str
    at_ms: int
    kind: str
    seq: int | None = None


# Created on the first refusal, so a journal that never had one is unchanged.
_REFUSAL_DDL: Final = (
    "CREATE TABLE IF NOT EXISTS last_refusal (id INTEGER PRIMARY KEY CHECK (id = 1),"
    " reason TEXT NOT NULL, detail TEXT NOT NULL, at_ms INTEGER NOT NULL,"
    " kind TEXT NOT NULL, seq INTEGER)"
)


class JournalStatus(msgspec.Struct, frozen=True, kw_only=True):
    """What `envnet edge status` shows, read from the file as of its last commit."""

    path: str
    schema: int
    depth: int
    chunks: int
    oldest_ts: int | None
    oldest_age_s: int | None
    last_ack_ms: int | None
    last_ack_seq: int | None
    dropped_readings: int
    dropped_bytes: int
    used_bytes: int
    file_bytes: int
    # False while an agent has it open, and after an agent that had it open was killed.
    closed_cleanly: bool
    last_refusal: LastRefusal | None = None
    # None for a journal no agent that names journals has opened yet.
    journal_id: str | None = None


def read_status(path: Path, now_ms: int) -> JournalStatus:
    """Read a journal without writing anything, while its agent runs or not.

    With a -wal file (the agent runs, or was killed) SQLite's read-only mode shares the
    agent's WAL index. Without one, everything is in the main file and it is opened as
    immutable, so that no -wal or -shm file is created: made by root, those would lock out
    an agent that runs as its own user.
    """
    if not path.is_file():
        raise JournalMissingError(
            f"{path}: no journal here (the agent creates it when it starts; check [journal] path)"
        )
    wal = path.with_name(path.name + "-wal")
    mode = "mode=ro" if wal.exists() else "immutable=1"
    with _errors(path):
        db = sqlite3.connect(f"{path.resolve().as_uri()}?{mode}", uri=True, timeout=5.0)
    try:
        with _errors(path):
            db.execute("BEGIN")  # one consistent snapshot for all the queries
            return _status(db, path, now_ms)
    finally:
        db.close()


def _status(db: sqlite3.Connection, path: Path, now_ms: int) -> JournalStatus:
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "meta" not in tables:
        raise JournalCorruptError(f"{path}: not an envnet journal")
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    schema = int(meta.get("schema", 0))
    if schema > SCHEMA_VERSION:
        raise JournalVersionError(f"{path}: journal schema {schema} is newer than this envnet's")
    if schema < SCHEMA_VERSION:  # not migrated yet: a row per reading
        depth, oldest_ts, oldest_ms = db.execute(
            "SELECT count(*), min(ts), min(journaled_ms) FROM readings"
        ).fetchone()
        chunks = depth
    else:
        depth, chunks, oldest_ts, oldest_ms = db.execute(
            "SELECT coalesce(sum(n), 0), count(*), min(oldest_ts), min(journaled_ms) FROM chunks"
        ).fetchone()
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    free = db.execute("PRAGMA freelist_count").fetchone()[0]
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    files = [path, path.with_name(path.name + "-wal")]
    return JournalStatus(
        path=str(path),
        schema=schema,
        depth=int(depth),
        chunks=int(chunks),
        oldest_ts=oldest_ts,
        oldest_age_s=None if oldest_ms is None else max(0, (now_ms - oldest_ms) // 1000),
        last_ack_ms=meta.get("last_ack_ms"),
        last_ack_seq=meta.get("last_ack_seq"),
        dropped_readings=int(meta.get("dropped", 0)),
        dropped_bytes=int(meta.get("dropped_bytes", 0)),
        used_bytes=int((pages - free) * page_size),
        file_bytes=sum(f.stat().st_size for f in files if f.exists()),
        closed_cleanly=not meta.get("open", 0),
        last_refusal=_last_refusal(db) if "last_refusal" in tables else None,
        journal_id=_journal_id(db) if "journal_id" in meta else None,
    )


def _last_refusal(db: sqlite3.Connection) -> LastRefusal | None:
    row = db.execute("SELECT reason, detail, at_ms, kind, seq FROM last_refusal").fetchone()
    if row is None:
        return None
    reason, detail, at_ms, kind, seq = row
    return LastRefusal(reason=reason, detail=detail, at_ms=at_ms, kind=kind, seq=seq)

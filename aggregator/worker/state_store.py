"""The aggregator's own durable state: alert tracks and snapshots of its evaluators. SQLite.

Alerts are saved row by row whenever one changes, before the change is published, so a
restart neither repeats a page nor forgets an open alert. The window, health and liveness
engines are saved whole, as opaque snapshots, at a checkpoint interval and at shutdown.

This module is the I/O shell: blocking sqlite3 calls, meant to run in a worker thread
(`asyncio.to_thread`). Everything it stores is encoded by the pure modules that own it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final

import msgspec

from aggregator.engine.lifecycle import AlertKey, Track

SCHEMA_VERSION: Final = 1
# Setting the file up again while another process holds it (OPEN_ATTEMPTS x OPEN_RETRY_S).
OPEN_ATTEMPTS: Final = 100
OPEN_RETRY_S: Final = 0.05
_TRACK_ENCODER: Final = msgspec.msgpack.Encoder()
_TRACK_DECODER: Final = msgspec.msgpack.Decoder(Track)

_DDL: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alert_tracks (
    node TEXT NOT NULL, rule TEXT NOT NULL, lane TEXT NOT NULL, track BLOB NOT NULL,
    PRIMARY KEY (node, rule, lane)
);
CREATE TABLE IF NOT EXISTS snapshots (
    name TEXT PRIMARY KEY, data BLOB NOT NULL, saved_ms INTEGER NOT NULL
);
"""


class StateStoreError(RuntimeError):
    """The state file cannot be used: another version, or not an envnet state file."""


class StateStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            self._prepare()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StateStoreError(f"{path}: not a usable envnet state file: {exc}") from None

    def _prepare(self) -> None:
        # Replicas on one host share the file and may all start at once: switching a new
        # file to WAL answers "database is locked" at once, without the busy timeout, to all
        # but one of them. So that setup is tried again, for a bounded time.
        for attempt in range(1, OPEN_ATTEMPTS + 1):
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                # FULL: a transition saved here is on disk before it is published.
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.executescript(_DDL)
                self._check_version()
                return
            except sqlite3.OperationalError as exc:
                if attempt == OPEN_ATTEMPTS or "locked" not in str(exc):
                    raise
                time.sleep(OPEN_RETRY_S)

    def _check_version(self) -> None:
        # OR IGNORE: replicas sharing the file (docs/cluster/replicas.md) may create it at
        # the same moment, and the second insert must not make the file look unusable.
        self._db.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('version', ?)", (str(SCHEMA_VERSION),)
        )
        row = self._db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        if row[0] != str(SCHEMA_VERSION):
            raise StateStoreError(f"{self.path}: state version {row[0]}, expected {SCHEMA_VERSION}")

    # -- alerts ---------------------------------------------------------------------------

    def save_tracks(self, changed: Mapping[AlertKey, tuple[Track | None, Track | None]]) -> None:
        if not changed:
            return
        upserts: list[tuple[str, str, str, bytes]] = []
        deletes: list[tuple[str, str, str]] = []
        for (node, rule), tracks in changed.items():
            for lane, track in zip(("live", "late"), tracks, strict=True):
                if track is None:
                    deletes.append((node, rule, lane))
                else:
                    upserts.append((node, rule, lane, _TRACK_ENCODER.encode(track)))
        with self._transaction():
            self._db.executemany(
                "DELETE FROM alert_tracks WHERE node = ? AND rule = ? AND lane = ?", deletes
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO alert_tracks (node, rule, lane, track) VALUES (?,?,?,?)",
                upserts,
            )

    def load_tracks(self) -> Iterator[tuple[AlertKey, str, Track]]:
        """(key, lane, track) rows; a row that does not decode raises StateStoreError."""
        rows = self._db.execute("SELECT node, rule, lane, track FROM alert_tracks").fetchall()
        for node, rule, lane, blob in rows:
            try:
                yield (node, rule), lane, _TRACK_DECODER.decode(blob)
            except msgspec.DecodeError as exc:
                raise StateStoreError(f"{self.path}: alert {node}/{rule}: {exc}") from None

    # -- snapshots ------------------------------------------------------------------------

    def save_snapshots(self, snapshots: Mapping[str, bytes], saved_ms: int) -> None:
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO snapshots (name, data, saved_ms) VALUES (?, ?, ?)",
                [(name, data, saved_ms) for name, data in snapshots.items()],
            )

    def load_snapshot(self, name: str) -> tuple[bytes, int] | None:
        row = self._db.execute(
            "SELECT data, saved_ms FROM snapshots WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else (bytes(row[0]), int(row[1]))

    def close(self) -> None:
        self._db.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")

"""A journal is named when it is created, keeps its name, and names every batch it sends (the
agent taking only acks that name its own journal: tests/integration/edge/test_journal_id.py)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from edge.journal import Journal, read_status
from schemas.messages import JOURNAL_ID_PATTERN
from tests.unit.edge.test_journal import BASE, V1_DDL, readings


def open_at(path: Path) -> Journal:
    return Journal(path, 10**9, 10**6)


def test_a_new_journal_gets_a_random_id_that_it_keeps(tmp_path: Path) -> None:
    first = open_at(tmp_path / "a.sqlite")
    other = open_at(tmp_path / "b.sqlite")
    assert re.search(JOURNAL_ID_PATTERN, first.journal_id)
    assert len(first.journal_id) == 16 and first.journal_id != other.journal_id
    name = first.journal_id
    first.append(readings(0, 3), BASE, live=True)
    first.close()
    assert open_at(tmp_path / "a.sqlite").journal_id == name
    assert read_status(tmp_path / "a.sqlite", BASE).journal_id == name


def test_a_journal_from_before_ids_is_named_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = open_at(path)
    (batch,) = journal.append(readings(0, 3), BASE, live=True)
    journal.close()
    db = sqlite3.connect(path)
    db.execute("DELETE FROM meta WHERE key='journal_id'")  # as an older agent left it
    db.commit()
    db.close()
    assert read_status(path, BASE).journal_id is None
    reopened = open_at(path)
    assert re.search(JOURNAL_ID_PATTERN, reopened.journal_id)
    # Its readings are kept, and its seqs still only grow.
    assert reopened.depth() == 3 and reopened.backlog == 3
    seq = reopened.pack_backlog(100)
    assert seq is not None and seq > batch.seq
    reopened.close()
    assert open_at(path).journal_id == reopened.journal_id
    assert read_status(path, BASE).journal_id == reopened.journal_id


def test_a_schema_1_journal_is_named_by_its_migration(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    old = sqlite3.connect(path)
    old.executescript(V1_DDL)
    old.close()
    journal = open_at(path)
    assert re.search(JOURNAL_ID_PATTERN, journal.journal_id)
    journal.close()
    assert open_at(path).journal_id == journal.journal_id


def test_all_64_bits_of_the_id_survive_sqlite_s_signed_integers(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    open_at(path).close()
    for stored, name in ((-1, "f" * 16), (1, "0" * 15 + "1"), (-(2**63), "8" + "0" * 15)):
        db = sqlite3.connect(path)
        db.execute("UPDATE meta SET value=? WHERE key='journal_id'", (stored,))
        db.commit()
        db.close()
        journal = open_at(path)
        assert journal.journal_id == name
        journal.close()


def test_a_damaged_journal_s_replacement_gets_a_new_id(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    damaged = open_at(path)
    name = damaged.journal_id
    damaged.close()
    path.write_bytes(b"this is not a database" * 100)
    replacement = open_at(path)
    assert replacement.quarantined is not None and replacement.journal_id != name

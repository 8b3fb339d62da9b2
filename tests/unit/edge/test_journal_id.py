"""A journal is named when it is created, keeps its name, and names every batch it sends; the
agent takes only acks that name its own journal, so a new journal's seq 5 is never deleted by
an ack for an old journal's seq 5."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from edge.journal import Journal, read_status
from schemas import codec, topics
from schemas.messages import ACK_SCHEMA, JOURNAL_ID_PATTERN, AckMessage, ReadingsMessage
from simulators.local_stack import Mosquitto
from tests.edge_harness import node_config, running_agent
from tests.harness import MqttProbe, publisher, wait_for
from tests.test_journal import BASE, V1_DDL, readings


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


def test_the_agent_names_its_journal_and_ignores_acks_for_another(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Real agent, real broker, no aggregator: the test plays the aggregator's acks."""
    config = node_config("edge-1", mosquitto.url, tmp_path, ack_timeout_s=1.0)
    probe = MqttProbe(mosquitto.port, [topics.readings("edge-1")]).start()
    acker = publisher(mosquitto.port)

    def ack(journal: str, seqs: list[int]) -> None:
        message = AckMessage(ACK_SCHEMA, "edge-1", seqs, journal)
        acker.publish(topics.ack("edge-1"), codec.ACK.encode(message), qos=1).wait_for_publish(10)

    def sent() -> list[ReadingsMessage]:
        return [codec.READINGS.decode(p) for p in probe.on(lambda t: True)]

    try:
        with running_agent(config, BASE) as run:
            # Two batches, not one and its resend (the ack timeout is 1 s).
            wait_for(lambda: len({m.seq for m in sent()}) >= 2, 30, "two published batches")
            journals = {m.journal for m in sent()}
            first = sent()[0]
            second = next(m for m in sent() if m.seq != first.seq)
            (own,) = journals
            assert own is not None
            foreign = "0" * 16 if own != "0" * 16 else "1" * 16
            ack(foreign, [first.seq, second.seq])
            wait_for(lambda: run.agent.foreign_acks == 1, 20, "the foreign ack")
            ack(own, [second.seq])
            ack(foreign, [first.seq])  # delivered in order: once counted, the own ack is in
            wait_for(lambda: run.agent.foreign_acks == 2, 20, "the second foreign ack")
        produced = run.producer.count()
    finally:
        probe.stop()
        acker.loop_stop()
        acker.disconnect()
    journal = open_at(tmp_path / "edge-1.sqlite")
    assert journal.journal_id == own
    # Only the batch acked under its own journal is gone; the first is still journaled.
    assert journal.depth() == produced - len(second.readings)

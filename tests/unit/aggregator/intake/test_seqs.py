"""A batch is (node, journal, seq) and its content: the aggregator's dedup acks a batch again
only when that very content was stored, whatever journals, seqs and contents interleave."""

from __future__ import annotations

import json
import random
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from aggregator.fleet import Fleet, NodeInfo
from aggregator.intake.checks import AcceptedBatch, Intake, Refusal
from aggregator.intake.seqs import RECENT_PER_NODE, SeqState, SeqTracker, content_digest
from schemas import codec
from schemas.messages import READINGS_SCHEMA, Reading, ReadingsMessage

OLD = "5f0c2a9be41d7368"
NEW = "0a1b2c3d4e5f6071"


def test_a_batch_is_new_then_in_flight_then_stored_and_memory_is_bounded() -> None:
    seqs = SeqTracker(recent_per_node=2)
    assert seqs.claim("n", OLD, 1, 7) is SeqState.NEW
    assert seqs.claim("n", OLD, 1, 7) is SeqState.IN_FLIGHT
    seqs.stored("n", OLD, 1, 7)
    assert seqs.claim("n", OLD, 1, 7) is SeqState.STORED
    assert seqs.claim("other", OLD, 1, 7) is SeqState.NEW
    seqs.stored("n", OLD, 2, 7)
    seqs.stored("n", NEW, 3, 7)
    assert seqs.claim("n", OLD, 1, 7) is SeqState.NEW  # bounded memory: forgotten
    assert seqs.claim("n", OLD, 9, 7) is SeqState.NEW
    seqs.abandon("n", OLD, 9, 7)
    assert seqs.claim("n", OLD, 9, 7) is SeqState.NEW  # abandoned: it may come again


def test_a_new_journal_s_seq_1_is_a_new_batch() -> None:
    seqs = SeqTracker()
    seqs.stored("n", OLD, 1, 7)
    # Even with the same content: another journal's batch is another batch.
    assert seqs.claim("n", NEW, 1, 7) is SeqState.NEW
    assert seqs.claim("n", "", 1, 7) is SeqState.NEW


def test_the_journal_a_node_left_is_forgotten_first() -> None:
    seqs = SeqTracker(recent_per_node=3)
    seqs.stored("n", OLD, 1, 7)
    seqs.stored("n", OLD, 2, 7)
    seqs.stored("n", NEW, 1, 8)
    seqs.stored("n", NEW, 2, 8)
    seqs.stored("n", NEW, 3, 8)
    assert seqs.remembered("n") == 3
    assert [seqs.claim("n", OLD, s, 7) for s in (1, 2)] == [SeqState.NEW] * 2
    assert [seqs.claim("n", NEW, s, 8) for s in (1, 2, 3)] == [SeqState.STORED] * 3


def test_a_seq_repeated_with_other_content_is_a_conflict_stored_or_in_flight() -> None:
    seqs = SeqTracker()
    seqs.stored("n", "", 5, 1)  # a node without journal ids, before its journal was replaced
    assert seqs.claim("n", "", 5, 2) is SeqState.CONFLICT
    assert seqs.claim("n", "", 5, 2) is SeqState.IN_FLIGHT
    assert seqs.claim("n", "", 5, 3) is SeqState.CONFLICT  # beside the one in flight
    assert seqs.claim("n", "", 5, 1) is SeqState.STORED  # that content is stored
    seqs.stored("n", "", 5, 2)
    assert seqs.claim("n", "", 5, 2) is SeqState.STORED


# -- any interleaving ---------------------------------------------------------------------------

NODES = st.sampled_from(["a", "b"])
JOURNALS = st.sampled_from(["", OLD, NEW])
SEQ_NUMBERS = st.integers(1, 3)
DIGESTS = st.integers(0, 2)
LIMIT = 3

Key = tuple[str, str, int, int]  # node, journal, seq, digest


class Dedup(RuleBasedStateMachine):
    """The tracker driven as the service drives it, against a model of what was written.

    A copy the tracker calls STORED is acked without being written, so its exact content must
    have been stored; one it calls IN_FLIGHT is skipped, so a write of that exact content must
    be pending (its own ack follows it)."""

    def __init__(self) -> None:
        super().__init__()
        self.tracker = SeqTracker(recent_per_node=LIMIT)
        self.pending: list[Key] = []
        self.stored_ever: set[Key] = set()

    @rule(node=NODES, journal=JOURNALS, seq=SEQ_NUMBERS, digest=DIGESTS)
    def receive(self, node: str, journal: str, seq: int, digest: int) -> None:
        key = (node, journal, seq, digest)
        state = self.tracker.claim(*key)
        if state is SeqState.STORED:
            assert key in self.stored_ever, f"acked {key} unstored"
            return
        if state is SeqState.IN_FLIGHT:
            assert key in self.pending, f"skipped {key} with no write of it pending"
            return
        same_batch = [k for k in self.pending if k[:3] == key[:3]]
        if state is SeqState.NEW:
            assert not same_batch, f"{key} called new while {same_batch} are being written"
        self.pending.append(key)

    @precondition(lambda self: bool(self.pending))
    @rule(index=st.integers(0, 100), written=st.booleans())
    def finish(self, index: int, written: bool) -> None:
        key = self.pending.pop(index % len(self.pending))
        if written:
            self.tracker.stored(*key)
            self.stored_ever.add(key)
            # What was just stored is recognised, so a copy of it is not written again
            # (and claiming a STORED or IN_FLIGHT copy starts no write).
            assert self.tracker.claim(*key) in (SeqState.STORED, SeqState.IN_FLIGHT)
        else:
            self.tracker.abandon(*key)

    @invariant()
    def memory_is_bounded(self) -> None:
        for node in ("a", "b"):
            assert self.tracker.remembered(node) <= LIMIT
            journals = self.tracker._stored.get(node)
            counted = 0 if journals is None else sum(len(seqs) for seqs in journals.values())
            assert self.tracker.remembered(node) == counted
            assert len(self.tracker._inflight.get(node, {})) <= len(self.pending)


Dedup.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestDedup = Dedup.TestCase


# -- the digest ---------------------------------------------------------------------------------


def reading(ts: int = 1_796_000_400_000, value: float = 80.0, **more: object) -> Reading:
    fields: dict[str, object] = {
        "ts": ts,
        "quantity": "o3",
        "value": value,
        "unit": "ug/m3",
        "period_s": 60,
        "stat": "mean",
        "sensor": "s1",
        **more,
    }
    return Reading(**fields)  # type: ignore[arg-type]


def encoded(readings: list[Reading], **more: object) -> bytes:
    message = ReadingsMessage(READINGS_SCHEMA, "n1", 5, readings, **more)  # type: ignore[arg-type]
    return codec.READINGS.encode(message)


def test_copies_of_a_batch_have_one_digest_whatever_sent_ms_and_backlog() -> None:
    readings = [reading(), reading(value=81.5, flags=("incomplete",))]
    first = encoded(readings, sent_ms=1_796_000_460_000, journal=OLD)
    resent = encoded(readings, sent_ms=1_796_000_999_000, backlog=True, journal=OLD)
    assert first != resent
    assert content_digest(first) == content_digest(resent)
    assert content_digest(first) == content_digest(bytes(bytearray(first)))


values = st.floats(0, 1000, allow_nan=False)
batches = st.lists(
    st.builds(reading, ts=st.integers(1_796_000_000_000, 1_796_100_000_000), value=values),
    min_size=1,
    max_size=5,
)


@given(batches, batches)
def test_different_readings_have_different_digests(a: list[Reading], b: list[Reading]) -> None:
    if a != b:
        assert content_digest(encoded(a)) != content_digest(encoded(b))


def test_a_sender_that_puts_sent_ms_first_only_loses_the_dedup() -> None:
    readings = json.loads(encoded([reading()]))["readings"]

    def payload(sent_ms: int) -> bytes:
        message = {"sent_ms": sent_ms, "schema": READINGS_SCHEMA, "node": "n1", "seq": 5}
        return json.dumps({**message, "readings": readings}).encode()

    # The copies look different (a harmless rewrite), never the same while they differ.
    assert content_digest(payload(1_796_000_460_000)) != content_digest(payload(1_796_000_470_000))


# -- what intake hands the tracker --------------------------------------------------------------

FLEET = Fleet({"n1": NodeInfo(site="Site one")})
TOPIC = "envnet/v1/nodes/n1/readings"


def accept(payload: bytes) -> AcceptedBatch:
    result = Intake(FLEET, max_payload_bytes=64 * 1024).readings(TOPIC, payload)
    assert isinstance(result, AcceptedBatch), result
    return result


def test_intake_keys_a_batch_by_its_journal_and_content() -> None:
    batch = accept(encoded([reading()], journal=NEW))
    assert (batch.journal, batch.seq) == (NEW, 5)
    assert batch.digest == content_digest(encoded([reading()], journal=NEW))
    old_node = accept(encoded([reading()]))
    assert old_node.journal == ""
    other = accept(encoded([reading(value=81.0)], journal=NEW))
    assert other.digest != batch.digest


def test_a_salvaged_batch_keeps_its_journal() -> None:
    good = json.loads(encoded([reading()]))["readings"][0]
    message = {
        "schema": READINGS_SCHEMA,
        "node": "n1",
        "seq": 5,
        "journal": OLD,
        "readings": [good, {**good, "unit": "mg/m3"}],
    }
    batch = accept(json.dumps(message).encode())
    assert batch.journal == OLD and len(batch.readings) == 1 and len(batch.bad_readings) == 1


@pytest.mark.parametrize("journal", ["5F0C2A9BE41D7368", "abc", "g" * 16, OLD + "\n", "0" * 33])
def test_a_journal_id_outside_the_pattern_is_refused(journal: str) -> None:
    message = {**json.loads(encoded([reading()])), "journal": journal}
    result = Intake(FLEET, 64 * 1024).readings(TOPIC, json.dumps(message).encode())
    assert isinstance(result, Refusal) and result.reason == "invalid"


def test_a_remembered_batch_costs_under_130_bytes_at_the_bound() -> None:
    # Every node ends up remembering RECENT_PER_NODE batches (a node at one batch a minute
    # after 17 hours): in OrderedDicts that was about 175 B a batch.
    rng = random.Random(1)
    nodes = [f"n{i}" for i in range(5)]
    tracemalloc.start()
    try:
        seqs = SeqTracker()
        for seq in range(1, 2 * RECENT_PER_NODE + 1):
            for node in nodes:
                digest = rng.getrandbits(64) - 2**63
                seqs.claim(node, "j1", seq, digest)
                seqs.stored(node, "j1", seq, digest)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert all(seqs.remembered(node) == RECENT_PER_NODE for node in nodes)
    assert held / (len(nodes) * RECENT_PER_NODE) < 130

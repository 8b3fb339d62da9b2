"""Which batches of each node are being stored or were stored recently, and what they held.
Pure.

A batch is (node, journal, seq). A node's journal numbers its batches, and a new journal (a
replaced SD card, a reinstalled node, a replay with a fresh journal file) starts again at
seq 1 under a new random journal id. Batches from nodes older than the journal id are keyed
with journal "", as if all their journals were one.

Nodes resend unacknowledged batches, and the broker may redeliver. A copy of a batch already
stored is not written again, only acknowledged again; one still being stored is skipped (its
own write will be acked). "A copy" means the same content, compared by `content_digest`: a
batch whose readings differ from what was stored (or is being stored) under its key is a
conflict, and is written like a new batch, so an ack always means that the acked content is
stored. Memory is bounded per node, over all its journals: an older duplicate is simply
written again, which InfluxDB absorbs (same series and time).
"""

from __future__ import annotations

from collections import OrderedDict
from enum import Enum
from typing import Final

# Default of [mqtt] dedup_batches_per_node (aggregator.intake.mqtt_session.IntakeSettings).
RECENT_PER_NODE: Final = 1024

# (journal, seq) within a node.
_Key = tuple[str, int]


class SeqState(Enum):
    NEW = "new"
    IN_FLIGHT = "in_flight"
    STORED = "stored"
    # The key is known with other content: write this batch as if it were new.
    CONFLICT = "conflict"


def content_digest(payload: bytes) -> int:
    """A digest of the readings of a readings message, for telling a copy of a batch from other
    content under the same (node, journal, seq). Only ever compared within one process.

    It is the hash (SipHash, 64 bits) of the payload up to its last `]`. The readings array
    ends with a `]`, so that prefix holds all of it, and the readings decoded from equal
    prefixes are equal. What envnet's edge changes between copies of a batch, `sent_ms` and
    `backlog`, it encodes after the readings (ReadingsMessage's field order), so copies have
    equal digests. A sender that puts them first only makes its copies look like conflicts:
    they are written again, which is harmless, and never acked unstored. Hashing the payload
    bytes costs half as much as hashing the decoded readings (bench/README.md).
    """
    end = payload.rfind(b"]") + 1
    # A read-only view hashes the bytes in place (a bytes slice would copy them first).
    return hash(memoryview(payload).toreadonly()[: end or len(payload)])


class SeqTracker:
    def __init__(self, recent_per_node: int = RECENT_PER_NODE) -> None:
        self._limit = recent_per_node
        # Digests being written, per key: a conflict may be in flight beside the first copy.
        self._inflight: dict[str, dict[_Key, set[int]]] = {}
        # Per node and journal, the digest last stored under each recent seq, oldest first.
        # Journals are ordered by their last store, so the one a node left goes first. Keyed
        # by journal first so that the id is kept once per journal, not once per batch. The
        # seqs are in a plain dict (insertion-ordered; a re-stored seq is re-inserted): 108 B
        # a remembered batch against 172 in an OrderedDict, whose links cost the difference,
        # and every node ends up remembering its limit (at 4096, 42 MiB against 67 per 100
        # nodes). Evicting from its front costs about 1 µs more a batch (it skips the slots
        # of earlier evictions until the dict is resized).
        self._stored: dict[str, OrderedDict[str, dict[int, int]]] = {}
        self._remembered: dict[str, int] = {}

    def claim(self, node: str, journal: str, seq: int, digest: int) -> SeqState:
        """What to do with this copy of a batch, which intake asks of every message. A batch
        that is to be written (NEW or CONFLICT) is in flight from here on, until `stored` or
        `abandon`; asking about a STORED or IN_FLIGHT copy changes nothing."""
        key = (journal, seq)
        inflight = self._inflight.get(node)
        if inflight is None:
            inflight = self._inflight[node] = {}
        writing = inflight.get(key)
        if writing is not None and digest in writing:
            return SeqState.IN_FLIGHT
        stored = self._stored_digest(node, journal, seq)
        if stored == digest:
            return SeqState.STORED
        if writing is None:
            inflight[key] = {digest}
            return SeqState.NEW if stored is None else SeqState.CONFLICT
        writing.add(digest)
        return SeqState.CONFLICT

    def _stored_digest(self, node: str, journal: str, seq: int) -> int | None:
        journals = self._stored.get(node)
        recent = None if journals is None else journals.get(journal)
        return None if recent is None else recent.get(seq)

    def stored(self, node: str, journal: str, seq: int, digest: int) -> None:
        self._forget_inflight(node, (journal, seq), digest)
        journals = self._stored.get(node)
        if journals is None:
            journals = self._stored[node] = OrderedDict()
        recent = journals.get(journal)
        if recent is None:
            recent = journals[journal] = {}
        elif len(journals) > 1:
            journals.move_to_end(journal)
        if seq in recent:
            del recent[seq]  # to the end, as the newest
            recent[seq] = digest
            return
        recent[seq] = digest
        self._remembered[node] = remembered = self._remembered.get(node, 0) + 1
        if remembered > self._limit:
            self._forget_oldest(node, journals)

    def remembered(self, node: str) -> int:
        """Stored batches of `node` remembered, over all its journals."""
        return self._remembered.get(node, 0)

    def _forget_oldest(self, node: str, journals: OrderedDict[str, dict[int, int]]) -> None:
        while self._remembered[node] > self._limit:
            journal, oldest = next(iter(journals.items()))
            del oldest[next(iter(oldest))]
            if not oldest:
                del journals[journal]
            self._remembered[node] -= 1

    def abandon(self, node: str, journal: str, seq: int, digest: int) -> None:
        """Forget an in-flight batch that was not stored (shutdown); it may come again."""
        self._forget_inflight(node, (journal, seq), digest)

    def _forget_inflight(self, node: str, key: _Key, digest: int) -> None:
        inflight = self._inflight.get(node)
        if inflight is None:
            return
        writing = inflight.get(key)
        if writing is not None:
            writing.discard(digest)
            if not writing:
                del inflight[key]

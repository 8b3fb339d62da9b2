"""Intake: a raw MQTT message in, an accepted batch or a counted refusal out. Pure.

Refusal reasons are stable labels (they are metric label values):
- oversized: payload larger than the configured limit, refused before parsing;
- bad_topic: not an envnet v1 node topic, or an invalid node id in it;
- malformed: not JSON, or JSON nested too deeply to parse;
- invalid: JSON that breaks the envelope of the contract;
- unknown_node: the node is not in the fleet inventory;
- node_mismatch: the payload's node differs from the topic's.

A message whose envelope is valid but some readings are not (a wrong unit, a value out of
physical bounds) is accepted with the good readings; each bad one is refused and counted as
'invalid_reading', so one bad sensor never costs the node its good data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Final, Literal, get_args

import msgspec

from aggregator.fleet import Fleet, NodeInfo
from aggregator.intake.seqs import content_digest
from schemas import codec, topics
from schemas.codec import NESTED_TOO_DEEPLY, ContractError
from schemas.messages import (
    ID_REGEX,
    JOURNAL_ID_PATTERN,
    MAX_READINGS_PER_MESSAGE,
    SERIAL_PATTERN,
    EpochMs,
    JournalId,
    NodeId,
    Reading,
    ReadingsMessage,
    Seq,
    StatusMessage,
)

RefusalReason = Literal[
    "oversized", "bad_topic", "malformed", "invalid", "unknown_node", "node_mismatch"
]
REFUSAL_REASONS: Final[tuple[RefusalReason, ...]] = get_args(RefusalReason)


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: RefusalReason
    detail: str
    # The node its topic names, when that is a valid id (the node can then be told).
    node: str | None = None
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class ReadingError:
    index: int
    detail: str


class AcceptedBatch(msgspec.Struct, frozen=True, gc=False):
    """One per accepted readings message, so a msgspec Struct: a frozen dataclass's __init__
    (object.__setattr__ per field) cost about ten times as much (bench/README.md, "The
    service's own work per live message"). Never encoded; gc=False since it cannot be part
    of a cycle (NodeInfo and readings are not)."""

    info: NodeInfo
    seq: int
    readings: list[Reading]
    backlog: bool
    sent_ms: int | None
    bad_readings: list[ReadingError] = []
    # The batch is (node, journal, seq); "" for a node that names no journal.
    journal: str = ""
    # Tells a copy of this batch from other content under the same key (aggregator.intake.seqs).
    digest: int = 0


@dataclass(frozen=True, slots=True)
class AcceptedStatus:
    info: NodeInfo
    status: StatusMessage


class _Envelope(msgspec.Struct, frozen=True):
    """The readings message with each reading left raw, for salvaging the good ones."""

    schema: Literal["envnet.readings/1"]
    node: NodeId
    seq: Seq
    readings: Annotated[list[msgspec.Raw], msgspec.Meta(min_length=1, max_length=1000)]
    sent_ms: EpochMs | None = None
    backlog: bool = False
    journal: JournalId | None = None


_ENVELOPE: Final = msgspec.json.Decoder(_Envelope)
JOURNAL_ID_REGEX: Final = re.compile(JOURNAL_ID_PATTERN)
SERIAL_REGEX: Final = re.compile(SERIAL_PATTERN)
_READING: Final = msgspec.json.Decoder(Reading)


class _SensorUnchecked(Reading, frozen=True, omit_defaults=True, gc=False):
    """A Reading decoded on the hot path. Everything is checked as the contract says except
    the patterns of the sensor id and serial: a regex search per reading was about half of
    all the checking. `_ValidIds` checks them instead, with the same patterns, once per
    distinct id."""

    sensor: str
    serial: str | None = None


class _FastMessage(ReadingsMessage, frozen=True, omit_defaults=True, gc=False):
    """The readings message on the hot path, with its ids' patterns left to `Intake`: the
    node must be the topic's (whose id is checked when the topic is parsed), and the journal
    id is checked once per distinct id. The node's regex search alone was about a fifth of
    decoding a live message (bench/README.md, "The service's own work per live message")."""

    node: str
    # A list of Readings (subclass instances), never appended to: the override is sound.
    readings: Annotated[  # type: ignore[assignment]
        list[_SensorUnchecked], msgspec.Meta(min_length=1, max_length=MAX_READINGS_PER_MESSAGE)
    ]
    journal: str | None = None


_FAST: Final = msgspec.json.Decoder(_FastMessage)


class _ValidIds:
    """Ids already found to match one of the contract's patterns (msgspec searches the
    pattern's regex at every occurrence). A fleet has a few sensor ids per node and one
    journal per node; the bound keeps a hostile stream of ever new ids from growing it."""

    MAX_IDS: Final = 65_536

    def __init__(self, regex: re.Pattern[str]) -> None:
        self._regex = regex
        self.known: set[str] = set()

    def valid(self, text: str) -> bool:
        """Whether `text` matches the pattern, as msgspec would check it."""
        known = self.known
        if text in known:
            return True
        if self._regex.search(text) is None:
            return False
        if len(known) >= self.MAX_IDS:
            known.clear()
        known.add(text)
        return True


class _NodeTopics:
    """Node topics already parsed: a node sends on the same two topics all its life, and the
    parse (a regex and the id pattern) was about 4 % of the service's time with live
    messages. Only valid topics are kept, and the bound keeps a hostile stream of ever new
    topics from growing it."""

    MAX_TOPICS: Final = 65_536

    def __init__(self) -> None:
        self._parsed: dict[str, topics.NodeTopic] = {}

    def parse(self, topic: str) -> topics.NodeTopic:
        """topics.parse_node_topic, remembered; raises topics.TopicError as it does."""
        parsed = self._parsed.get(topic)
        if parsed is None:
            parsed = topics.parse_node_topic(topic)
            if len(self._parsed) >= self.MAX_TOPICS:
                self._parsed.clear()
            self._parsed[topic] = parsed
        return parsed


class Intake:
    def __init__(self, fleet: Fleet, max_payload_bytes: int) -> None:
        self._fleet = fleet
        self._max = max_payload_bytes
        self._sensor_ids = _ValidIds(ID_REGEX)
        self._serials = _ValidIds(SERIAL_REGEX)
        self._journal_ids = _ValidIds(JOURNAL_ID_REGEX)
        self._topics = _NodeTopics()

    def replace_fleet(self, fleet: Fleet) -> None:
        """A new inventory (hot reload): messages checked from now on are judged by it."""
        self._fleet = fleet

    def readings(self, topic: str, payload: bytes) -> AcceptedBatch | Refusal:
        checked = self._check(topic, payload, "readings")
        if isinstance(checked, Refusal):
            return checked
        message = self._decode_fast(payload, checked.node)
        if message is None:
            try:
                message = codec.READINGS.decode(payload)
            except ContractError as exc:
                if exc.kind == "malformed":
                    return Refusal("malformed", exc.detail, checked.node)
                return self._salvage(checked, payload, exc.detail)
        if message.node != checked.node:
            return _mismatch(checked.node, message.node, message.seq)
        return _accepted(checked, message, content_digest(payload))

    def _decode_fast(self, payload: bytes, node: str) -> ReadingsMessage | None:
        """The message if the hot path accepts it, else None. It accepts exactly what the
        contract accepts from `node`'s topic (tests/unit/aggregator/intake/test_checks.py);
        what it refuses takes the contract's own path, which gives the refusal its usual reason
        and detail (an invalid node id is "invalid", another node's is "node_mismatch"), and
        salvages readings."""
        try:
            fast = _FAST.decode(payload)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            return None
        if fast.node != node:  # `node` came from the topic, its id checked (_NodeTopics)
            return None
        if fast.journal is not None and not self._journal_ids.valid(fast.journal):
            return None
        return fast if self._readings_valid(fast.readings) else None

    def _readings_valid(self, readings: list[_SensorUnchecked]) -> bool:
        """The checks `_SensorUnchecked` leaves out."""
        sensors, serials = self._sensor_ids, self._serials
        known = sensors.known  # inlined first: nearly every sensor id is known
        for r in readings:
            if r.sensor not in known and not sensors.valid(r.sensor):
                return False
            if r.serial is not None and not serials.valid(r.serial):
                return False
        return True

    def status(self, topic: str, payload: bytes) -> AcceptedStatus | Refusal:
        checked = self._check(topic, payload, "status")
        if isinstance(checked, Refusal):
            return checked
        try:
            status = codec.STATUS.decode(payload)
        except ContractError as exc:
            return Refusal(exc.kind, exc.detail, checked.node)
        if status.node != checked.node:
            return _mismatch(checked.node, status.node)
        return AcceptedStatus(checked, status)

    def _check(self, topic: str, payload: bytes, kind: str) -> NodeInfo | Refusal:
        if len(payload) > self._max:
            detail = f"{len(payload)} bytes > limit {self._max}"
            return Refusal("oversized", detail, _topic_node(topic))
        try:
            parsed = self._topics.parse(topic)
        except topics.TopicError as exc:
            return Refusal("bad_topic", str(exc))
        if parsed.kind != kind:
            return Refusal("bad_topic", f"expected a {kind} topic, got {parsed.kind}")
        info = self._fleet.get(parsed.node)
        if info is None:
            return Refusal("unknown_node", f"node {parsed.node!r} is not in the fleet", parsed.node)
        return info

    def _salvage(self, info: NodeInfo, payload: bytes, detail: str) -> AcceptedBatch | Refusal:
        try:
            envelope = _ENVELOPE.decode(payload)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return Refusal("invalid", detail, info.node, _seq_of(payload))
        except RecursionError:
            # The contract's decoder can fail on an early field before reaching the depth.
            return Refusal("malformed", NESTED_TOO_DEEPLY, info.node)
        if envelope.node != info.node:
            return _mismatch(info.node, envelope.node, envelope.seq)
        good: list[Reading] = []
        bad: list[ReadingError] = []
        for index, raw in enumerate(envelope.readings):
            try:
                good.append(_READING.decode(raw))
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                bad.append(ReadingError(index, str(exc)))
        return AcceptedBatch(
            info=info,
            seq=envelope.seq,
            readings=good,
            backlog=envelope.backlog,
            sent_ms=envelope.sent_ms,
            bad_readings=bad,
            journal=envelope.journal or "",
            digest=content_digest(payload),
        )


def _accepted(info: NodeInfo, message: ReadingsMessage, digest: int) -> AcceptedBatch:
    return AcceptedBatch(
        info=info,
        seq=message.seq,
        readings=message.readings,
        backlog=message.backlog,
        sent_ms=message.sent_ms,
        journal=message.journal or "",
        digest=digest,
    )


def _mismatch(topic_node: str, payload_node: str, seq: int | None = None) -> Refusal:
    detail = f"payload node {payload_node!r} differs from topic node {topic_node!r}"
    return Refusal("node_mismatch", detail, topic_node, seq)


def _topic_node(topic: str) -> str | None:
    """The node a topic names, if it is a node topic with a valid id."""
    try:
        return topics.parse_node_topic(topic).node
    except topics.TopicError:
        return None


class _SeqOnly(msgspec.Struct, frozen=True):
    seq: Seq | None = None


_SEQ_ONLY: Final = msgspec.json.Decoder(_SeqOnly)


def _seq_of(payload: bytes) -> int | None:
    """The seq of an invalid readings message, if it has a valid one: the refusal then tells
    the node which batch. Refused messages only, so the second parse costs nothing live."""
    try:
        return _SEQ_ONLY.decode(payload).seq
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None

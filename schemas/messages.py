"""The messages that cross MQTT, as typed msgspec structs.

These types *are* the contract: the JSON Schema files in schemas/json/ are generated from them
(`python -m schemas.export`) and a test proves the committed files match. Receivers ignore
unknown fields, so adding an optional field keeps the schema version; anything else bumps it.
"""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal

import msgspec

from schemas.quantities import SPECS, Quantity, Statistic, Unit

READINGS_SCHEMA: Final = "envnet.readings/1"
STATUS_SCHEMA: Final = "envnet.status/1"
ACK_SCHEMA: Final = "envnet.ack/1"
ALERT_SCHEMA: Final = "envnet.alert/1"
ALERT_EVENT_SCHEMA: Final = "envnet.alert-event/1"
ALERT_COMMAND_SCHEMA: Final = "envnet.alert-command/1"
REFUSAL_SCHEMA: Final = "envnet.refusal/1"

# Ids become MQTT topic levels and InfluxDB tag values. Restricting them to this alphabet
# rules out wildcards (+ #), topic separators and line-protocol metacharacters at the door.
# `(?!\n)$`, not `$`: in Python regexes (msgspec's and jsonschema's) `$` also matches before a
# trailing newline, which would let "pm\n" through to a topic or a line-protocol tag.
ID_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,62}(?!\n)$"
# Compiled once, for code that checks ids by hand (topics, intake's fast path, CLI options).
ID_REGEX: Final = re.compile(ID_PATTERN)
RULE_PATTERN: Final = r"^[a-z0-9][a-z0-9_.-]{0,94}(?!\n)$"
# A sensor's serial number as its maker prints it: case kept, so it matches the calibration
# sheet. Stored as an InfluxDB string field; this alphabet needs no escaping there. (?!\n)
# because Python's `$` (msgspec's validator) also matches before a final newline; JSON
# Schema's (ECMA-262) does not, and both read the lookahead the same way.
SERIAL_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}(?!\n)$"
# A node's journal, named when the journal is created: random, so a new journal (a replaced
# SD card, a reinstalled node) never takes an old one's name while its seqs start over.
# envnet's edge makes 16 digits (64 random bits); 32 fit a UUID's hex.
JOURNAL_ID_PATTERN: Final = r"^[0-9a-f]{16,32}(?!\n)$"

NodeId = Annotated[str, msgspec.Meta(pattern=ID_PATTERN, description="node id")]
SensorId = Annotated[str, msgspec.Meta(pattern=ID_PATTERN, description="sensor id, per node")]
RuleId = Annotated[str, msgspec.Meta(pattern=RULE_PATTERN, description="alert rule id")]
SensorSerial = Annotated[
    str, msgspec.Meta(pattern=SERIAL_PATTERN, description="the physical sensor's serial number")
]
JournalId = Annotated[
    str, msgspec.Meta(pattern=JOURNAL_ID_PATTERN, description="journal id, random, per journal")
]
# Operator names end up in InfluxDB fields and logs: printable, bounded, no control characters.
OperatorId = Annotated[
    str, msgspec.Meta(pattern=r"^[^\x00-\x1f\x7f]{1,64}$", description="operator name")
]

# 2000-01-01 .. 2100-01-01 in ms: anything outside is a clock fault, not a measurement.
EpochMs = Annotated[int, msgspec.Meta(ge=946_684_800_000, lt=4_102_444_800_000)]
# JSON integers above 2**53 lose precision in JavaScript consumers.
Seq = Annotated[int, msgspec.Meta(ge=1, le=2**53 - 1)]
PeriodS = Annotated[int, msgspec.Meta(ge=1, le=31_622_400, description="averaging period, s")]

MAX_READINGS_PER_MESSAGE: Final = 1000
MAX_SEQS_PER_ACK: Final = 10_000

Flag = Literal[
    "simulated",  # produced by a simulator, not a physical sensor
    "replayed",  # historical data replayed, with original or shifted timestamps
    "incomplete",  # fewer samples than 75 % of the period expects
    "out_of_range",  # outside the sensor's rated range; value kept as read
    "calibrating",  # sensor in warm-up or calibration
    "maintenance",  # a technician flagged the node as under maintenance
]


# gc=False on the two hot types: they hold only strings, numbers and each other, so they cannot
# form reference cycles, and an aggregator buffering 200k readings must not have the garbage
# collector walk them on every pass (that halved its throughput, bench/README.md).
class ReadingValues(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    """A reading's fields without the contract's checks on ids, bounds and unit.

    Not part of the contract: what `Reading` carries once it has been checked, for code that
    only ever sees checked readings. The aggregator's alerting worker decodes the readings the
    service already accepted in this form, at less than half the cost of checking them again
    (bench/README.md). The fields, their order and their meaning are `Reading`'s.
    """

    ts: int
    quantity: Quantity
    value: float
    unit: Unit
    period_s: int
    stat: Statistic
    sensor: str
    flags: tuple[Flag, ...] = ()
    serial: str | None = None


class Reading(ReadingValues, frozen=True, omit_defaults=True, gc=False):
    """One interval statistic of one quantity from one sensor.

    `ts` is the *start* of the averaging interval [ts, ts + period_s), so that a clock-hour
    mean has ts on the hour. (node, sensor, quantity, stat, period_s, ts) identifies a
    reading: sending it twice stores it once. `value` is the sensor's own reading in the
    canonical unit: field calibration is applied centrally, by `serial`
    (aggregator.calibration.book).
    """

    ts: EpochMs
    quantity: Quantity
    value: float
    unit: Unit
    period_s: PeriodS
    stat: Statistic
    sensor: SensorId
    # A tuple, not a list: the empty default is then shared, not one new list per reading.
    flags: Annotated[tuple[Flag, ...], msgspec.Meta(max_length=8)] = ()
    # The physical sensor behind `sensor`, when the node knows it: the aggregator calibrates
    # `value` (always the sensor's own, uncalibrated reading) by this serial's records.
    serial: SensorSerial | None = None

    def __post_init__(self) -> None:
        spec = SPECS[self.quantity]
        if self.unit != spec.unit:
            msg = f"unit {self.unit!r} is not the canonical unit {spec.unit!r} of {self.quantity}"
            raise ValueError(msg)
        if not spec.lower <= self.value <= spec.upper:
            msg = (
                f"{self.quantity} value {self.value!r} is outside the physical bounds "
                f"[{spec.lower}, {spec.upper}] {spec.unit}"
            )
            raise ValueError(msg)


class ReadingsMessage(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    """edge → aggregator on envnet/v1/nodes/{node}/readings, QoS 1."""

    schema: Literal["envnet.readings/1"]
    node: NodeId
    seq: Seq
    readings: Annotated[list[Reading], msgspec.Meta(min_length=1, max_length=1000)]
    # The node's clock when this copy was sent, and whether it comes from the backlog.
    # Together they let the aggregator tell live data from a drain after an outage,
    # in the node's own clock domain (simulators run accelerated clocks).
    sent_ms: EpochMs | None = None
    backlog: bool = False
    # The journal that numbered this batch: seqs start again at 1 in a new journal, so a batch
    # is (node, journal, seq). Absent from nodes older than the field.
    journal: JournalId | None = None


class JournalHealth(msgspec.Struct, frozen=True, omit_defaults=True):
    depth: Annotated[int, msgspec.Meta(ge=0)]
    oldest_ts: EpochMs | None = None
    bytes: Annotated[int, msgspec.Meta(ge=0)] = 0
    # Readings dropped (oldest first) over the journal's life: past its age or byte bound,
    # or not journaled at all because the disk was full.
    dropped: Annotated[int, msgspec.Meta(ge=0)] = 0
    last_ack_ms: EpochMs | None = None
    dropped_bytes: Annotated[int, msgspec.Meta(ge=0)] = 0
    # How long the oldest reading has been in the journal, s (the age bound is on this).
    oldest_age_s: Annotated[int, msgspec.Meta(ge=0)] | None = None
    last_ack_seq: Seq | None = None


SensorState = Literal["ok", "degraded", "failed"]


class SensorHealth(msgspec.Struct, frozen=True, omit_defaults=True):
    sensor: SensorId
    driver: Annotated[str, msgspec.Meta(max_length=64)]
    state: SensorState
    errors: Annotated[int, msgspec.Meta(ge=0)] = 0
    last_ok_ms: EpochMs | None = None
    last_error: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class StatusMessage(msgspec.Struct, frozen=True, omit_defaults=True):
    """Retained on envnet/v1/nodes/{node}/status. The offline form is also the MQTT will,
    fixed at connect time, so it carries no timestamp or journal figures."""

    schema: Literal["envnet.status/1"]
    node: NodeId
    state: Literal["online", "offline"]
    ts: EpochMs | None = None
    version: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    reason: Literal["lost", "shutdown"] | None = None
    journal: JournalHealth | None = None
    sensors: Annotated[list[SensorHealth], msgspec.Meta(max_length=64)] = []


class AckMessage(msgspec.Struct, frozen=True, omit_defaults=True):
    """aggregator → edge on envnet/v1/nodes/{node}/ack, QoS 1, sent only once every reading
    of these batches is durably in InfluxDB (or was refused as invalid and counted)."""

    schema: Literal["envnet.ack/1"]
    node: NodeId
    seqs: Annotated[list[Seq], msgspec.Meta(min_length=1, max_length=MAX_SEQS_PER_ACK)]
    # The batches' journal, as they named it; absent for batches that named none.
    journal: JournalId | None = None


AlertKind = Literal["exceedance", "aqi", "health", "liveness"]
AlertState = Literal["firing", "resolved"]
Severity = Literal["info", "warning", "critical"]


class Location(msgspec.Struct, frozen=True):
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)]


class Alert(msgspec.Struct, frozen=True, omit_defaults=True):
    """Retained current state on envnet/v1/alerts/{node}/{rule}."""

    schema: Literal["envnet.alert/1"]
    node: NodeId
    rule: RuleId
    kind: AlertKind
    state: AlertState
    severity: Severity
    standard: Annotated[str, msgspec.Meta(max_length=64)]
    clause: Annotated[str, msgspec.Meta(max_length=64)]
    window_s: PeriodS
    value: float
    limit: float
    since_ms: EpochMs
    updated_ms: EpochMs
    message: Annotated[str, msgspec.Meta(max_length=300)]
    quantity: Quantity | None = None
    unit: Unit | None = None
    site: Annotated[str, msgspec.Meta(max_length=100)] = ""
    location: Location | None = None
    # Raised from data that arrived late (a node draining its backlog): recorded with its
    # true time, but not to be paged as if it were happening now.
    late: bool = False
    # Measured by a sensor that health checks judged unhealthy (stuck, spiking, optical PM in
    # high humidity): recorded, but not paged as a real exceedance.
    suspect: bool = False
    # Start of the averaging window the value belongs to (absent for single readings).
    window_start_ms: EpochMs | None = None
    # Set once an operator acknowledges the alert; cleared when the alert resolves.
    acked_by: OperatorId | None = None
    acked_ms: EpochMs | None = None
    ack_note: Annotated[str, msgspec.Meta(max_length=200)] | None = None


# fired: an alert opened (after its pending time); resolved: it cleared (after its clear time);
# renotified: still firing and unacknowledged after the re-notification interval, or confirmed
# by a healthy sensor after firing as suspect; acknowledged: an operator took it on.
AlertEventKind = Literal["fired", "resolved", "renotified", "acknowledged"]


class AlertEvent(msgspec.Struct, frozen=True):
    """One transition, on envnet/v1/alert-events (not retained)."""

    schema: Literal["envnet.alert-event/1"]
    event: AlertEventKind
    at_ms: EpochMs
    alert: Alert


class AlertCommand(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """operator → aggregator on envnet/v1/alert-commands, QoS 1: acknowledge an open alert."""

    schema: Literal["envnet.alert-command/1"]
    action: Literal["ack"]
    node: NodeId
    rule: RuleId
    by: OperatorId
    note: Annotated[str, msgspec.Meta(max_length=200)] | None = None


# The stable refusal labels (the aggregator's envnet_refused_total{reason}) a node can be told:
# oversized, malformed, invalid, unknown_node, node_mismatch. A pattern, not a list, so that a
# node decodes a reason added later instead of refusing the refusal.
REFUSAL_REASON_PATTERN: Final = r"^[a-z][a-z_]{0,31}(?!\n)$"
MAX_REFUSAL_DETAIL: Final = 300


class RefusalMessage(msgspec.Struct, frozen=True, omit_defaults=True):
    """aggregator → edge on envnet/v1/nodes/{node}/refusal, QoS 1, not retained: why a message
    the node published on its readings or status topic was refused, so that the node can say
    so. Sent at most once per node and reason every few seconds; a refused batch stays in the
    node's journal, unacknowledged."""

    schema: Literal["envnet.refusal/1"]
    node: NodeId
    reason: Annotated[str, msgspec.Meta(pattern=REFUSAL_REASON_PATTERN)]
    detail: Annotated[str, msgspec.Meta(max_length=MAX_REFUSAL_DETAIL)]
    at_ms: EpochMs
    kind: Literal["readings", "status"]
    seq: Seq | None = None

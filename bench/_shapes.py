"""The messages the benchmark sends, and the line protocol they become, built from templates.

A node's readings are numbered k = 0, 1, 2, … Reading k is quantity SAMPLE[k % 6] of sample
k // 6, timestamped at the start of that sample's minute, so every reading is unique per
(node, sensor, quantity, stat, period_s, ts) and none overwrites another in InfluxDB.
Message m of a node (seq m + 1) carries readings m·R … m·R + R − 1.

Payloads are encoded once per node as templates (with msgspec, through the contract codec)
and then only the seq and the timestamps are spliced in, so a publisher spends its time
publishing rather than encoding.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from math import gcd
from typing import Final

from aggregator.fleet import NodeInfo
from aggregator.storage.records import ReadingLines
from schemas import codec, topics
from schemas.messages import READINGS_SCHEMA, Reading, ReadingsMessage
from schemas.quantities import Quantity, Unit

PERIOD_S: Final = 60
PERIOD_MS: Final = PERIOD_S * 1000
HOUR_MS: Final = 3_600_000
# Template timestamps and seq: recognisable, 13 digits like every real ts, and in range.
_TS_SENTINEL_BASE: Final = 4_102_444_000_000
_SEQ_SENTINEL: Final = 2**53 - 1
# Value variants per template pattern, so InfluxDB does not compress constant series.
VALUE_VARIANTS: Final = 4


@dataclass(frozen=True, slots=True)
class Quantum:
    quantity: Quantity
    sensor: str
    unit: Unit
    typical: float


# One node sample: what a street air-quality station reports each minute. Typical values are
# well inside the GB 3095 Grade II limits, so no alert fires during the benchmark.
SAMPLE: Final[tuple[Quantum, ...]] = (
    Quantum("pm2_5", "pm", "ug/m3", 35.0),
    Quantum("pm10", "pm", "ug/m3", 60.0),
    Quantum("o3", "gas", "ug/m3", 80.0),
    Quantum("no2", "gas", "ug/m3", 40.0),
    Quantum("air_temp", "met", "degC", 18.0),
    Quantum("rh", "met", "%", 55.0),
)


# Ten channels at one reading a minute: the catch-up load of bench/scale.py (issue #13).
SAMPLE_10: Final[tuple[Quantum, ...]] = (
    *SAMPLE,
    Quantum("so2", "gas", "ug/m3", 12.0),
    Quantum("co", "gas", "mg/m3", 0.8),
    Quantum("tvoc", "gas", "ug/m3", 150.0),
    Quantum("pressure", "met", "hPa", 1010.0),
)


@dataclass(frozen=True, slots=True)
class Shape:
    """A message shape: `readings` per message, sent as backlog (drain) or live data, each
    node sample being one reading of every quantum of `sample`."""

    mode: str
    readings: int
    backlog: bool
    sample: tuple[Quantum, ...] = SAMPLE
    # At most this many messages per node in a bench phase (0: as many as its seconds allow).
    # The raw publishers outrun the aggregator many times over, and what they send beyond the
    # broker's queue limits (1,000,000 messages or 2 GiB for a session, as deployed) would
    # be dropped by the broker, not measured. 100 nodes: 100,000 backlog messages (10 million
    # readings, about 1.1 GB queued) and 400,000 live ones (about 0.3 GB).
    budget_per_node: int = 0

    @property
    def patterns(self) -> int:
        """Messages repeat their quantity layout with this period."""
        return len(self.sample) // gcd(self.readings, len(self.sample))


SHAPES: Final = {
    "backlog": Shape("backlog", 100, backlog=True, budget_per_node=1000),
    "live": Shape("live", len(SAMPLE), backlog=False, budget_per_node=4000),
    # An edge journal drain: 96 ten-channel samples (960 readings) per batch, under the edge's
    # 1,000-reading cap ([drain] batch_readings, edge/config.py), so a day is 15 batches.
    "catchup": Shape("catchup", 960, backlog=True, sample=SAMPLE_10),
}


def node_ids(publishers: int, nodes_per_publisher: int) -> list[tuple[str, ...]]:
    """Node ids per publisher: publisher p drives nodes b{p}n{i}."""
    return [
        tuple(f"b{p:03d}n{i:03d}" for i in range(nodes_per_publisher)) for p in range(publishers)
    ]


def node_info(node: str) -> NodeInfo:
    """The fleet entry of a bench node: an air station in a Class 2 zone."""
    return NodeInfo(site=f"Bench site {node}", air_zone=2, node=node)


def start_ts_ms(now_s: float | None = None) -> int:
    """Where every node's first reading starts: 30 days ago, on the hour (a backlog)."""
    now_ms = int((time.time() if now_s is None else now_s) * 1000)
    start = now_ms - 30 * 24 * HOUR_MS
    return start - start % HOUR_MS


def reading_ts(t0_ms: int, k: int, channels: int = len(SAMPLE)) -> int:
    return t0_ms + (k // channels) * PERIOD_MS


# How far a value may wander from its typical level, minute to minute. The aggregator judges
# sensor health (aggregator/engine/sensor_health.py): air temperature jumping 5 °C in a minute
# is a spike, and a bench whose sensors looked broken would measure alert handling, not ingest.
SPREAD: Final[dict[Quantity, float]] = {"air_temp": 0.01, "rh": 0.01, "pressure": 0.01}


def _value(quantum: Quantum, rng: random.Random) -> float:
    spread = SPREAD.get(quantum.quantity, 0.3)
    return round(quantum.typical * rng.uniform(1 - spread, 1 + spread), 1)


def _template_readings(shape: Shape, pattern: int, rng: random.Random) -> list[Reading]:
    """The readings of a message of this pattern, with sentinel timestamps."""
    out = []
    for j in range(shape.readings):
        quantum = shape.sample[(pattern * shape.readings + j) % len(shape.sample)]
        out.append(
            Reading(
                ts=_TS_SENTINEL_BASE + j,
                quantity=quantum.quantity,
                value=_value(quantum, rng),
                unit=quantum.unit,
                period_s=PERIOD_S,
                stat="mean",
                sensor=quantum.sensor,
            )
        )
    return out


def _split(payload: bytes, sentinels: list[bytes]) -> list[bytes]:
    """Cut `payload` at each sentinel, in order (each must occur once; check_payload checks
    a spliced message)."""
    chunks = []
    rest = payload
    for sentinel in sentinels:
        head, found, rest = rest.partition(sentinel)
        # Found in order is checked here; that each was the right occurrence, by decoding a
        # spliced message (check_payload): scanning the rest for a second occurrence of each
        # sentinel was quadratic, minutes per node for a 960-reading drain batch.
        if not found:
            raise ValueError(f"template sentinel {sentinel!r} not found")
        chunks.append(head)
    chunks.append(rest)
    return chunks


class PayloadTemplates:
    """Encoded messages of one node, with the seq and timestamps left to fill in."""

    def __init__(self, node: str, shape: Shape, t0_ms: int, sent_ms: int) -> None:
        self.node = node
        self.topic = topics.readings(node)
        self._shape = shape
        self._t0 = t0_ms
        rng = random.Random(node)
        sentinels = [str(_SEQ_SENTINEL).encode()] + [
            str(_TS_SENTINEL_BASE + j).encode() for j in range(shape.readings)
        ]
        self._chunks: list[list[bytes]] = []
        for variant in range(shape.patterns * VALUE_VARIANTS):
            message = ReadingsMessage(
                schema=READINGS_SCHEMA,
                node=node,
                seq=_SEQ_SENTINEL,
                readings=_template_readings(shape, variant % shape.patterns, rng),
                sent_ms=sent_ms,
                backlog=shape.backlog,
            )
            self._chunks.append(_split(codec.READINGS.encode(message), sentinels))

    def payload(self, m: int) -> bytes:
        """Message m (0-based) of this node, seq m + 1."""
        readings = self._shape.readings
        channels = len(self._shape.sample)
        chunks = self._chunks[m % len(self._chunks)]
        first = m * readings
        # Readings of one sample share a timestamp: format each sample's once.
        base = first // channels
        stamps = [
            str(self._t0 + s * PERIOD_MS).encode()
            for s in range(base, (first + readings - 1) // channels + 1)
        ]
        parts = [chunks[0], str(m + 1).encode(), chunks[1]]
        for j in range(readings):
            parts.append(stamps[(first + j) // channels - base])
            parts.append(chunks[j + 2])
        return b"".join(parts)


def check_payload(templates: PayloadTemplates, shape: Shape, t0_ms: int, m: int) -> None:
    """Decode message m with the contract codec and check its seq and readings."""
    message = codec.READINGS.decode(templates.payload(m))
    first = m * shape.readings
    channels = len(shape.sample)
    span = range(first, first + shape.readings)
    expected = [reading_ts(t0_ms, k, channels) for k in span]
    quantities = [shape.sample[k % channels].quantity for k in span]
    if (
        message.node != templates.node
        or message.seq != m + 1
        or [r.ts for r in message.readings] != expected
        or [r.quantity for r in message.readings] != quantities
    ):
        raise ValueError(f"bad bench payload for {templates.node} message {m}")


class LineTemplates:
    """The line protocol the aggregator writes for one node's messages, as in records.py."""

    def __init__(self, node: str, shape: Shape, t0_ms: int) -> None:
        self._shape = shape
        self._t0 = t0_ms
        builder = ReadingLines(node_info(node))
        rng = random.Random(node)
        self._prefixes: list[list[str]] = []
        for variant in range(shape.patterns * VALUE_VARIANTS):
            readings = _template_readings(shape, variant % shape.patterns, rng)
            lines = builder.lines(readings)
            self._prefixes.append([line.rsplit(" ", 1)[0] + " " for line in lines])

    def lines(self, m: int) -> list[str]:
        """The lines of message m of this node."""
        shape = self._shape
        prefixes = self._prefixes[m % len(self._prefixes)]
        first = m * shape.readings
        channels = len(shape.sample)
        return [
            f"{prefix}{reading_ts(self._t0, first + j, channels)}"
            for j, prefix in enumerate(prefixes)
        ]

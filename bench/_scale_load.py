"""The seeded live load of bench/scale.py, pure: which nodes exist, what each sends in each
event minute, when it is due on the wall clock, and what InfluxDB must hold afterwards.

Every node sends one 6-reading sample (bench._shapes.SAMPLE) per event minute as one
`envnet.readings/1` batch: journal id fixed per node, seq = minute + 1, so the aggregator's
acks and its (node, journal, seq) dedup work as for an edge. A seeded tenth of the nodes
report NO2 well above the GB 3095 1-h limit (200 ug/m3), so `air.no2.1h` and `aqi.hour`
alerts fire when the hour closes. Minutes start at hh:14, so the hour holds 46 minutes (a
valid 1-h mean needs 45) and the samples past hh+1:00 close it.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Final

from bench._shapes import PERIOD_MS, SAMPLE
from schemas import codec
from schemas.messages import READINGS_SCHEMA, Reading, ReadingsMessage

HOUR_MS: Final = 3_600_000
FIRST_MINUTE: Final = 14  # of the hour: 46 minutes in it, one more than a valid 1-h mean needs
MINUTES: Final = 48  # hh:14 … hh+1:01: the readings past the hour close its windows
EXCEED_NO2: Final = 280.0  # ug/m3: above the 1-h limit (200) and AQI category III (IAQI > 100)
NO2: Final = [q.quantity for q in SAMPLE].index("no2")
# Minute-to-minute wander (fraction of the typical value), in steps of VARIANCE_STEPS: enough
# that no sensor looks flat-lined, little enough that none looks spiking.
WANDER: Final = 0.02
VARIANCE_STEPS: Final = 11
# Temperature and humidity wander a quarter as much (a degree a minute reads as a spike).
STEADY: Final = frozenset(("air_temp", "rh"))


@dataclass(frozen=True, slots=True)
class LivePlan:
    """The whole live load: `nodes` nodes, `minutes` event minutes from `origin_ms`."""

    nodes: int
    origin_ms: int  # event time of minute 0: an hour boundary + FIRST_MINUTE
    seed: int = 13
    minutes: int = MINUTES
    exceed_fraction: float = 0.1

    def node_id(self, g: int) -> str:
        return f"n{g:05d}"

    def node_ids(self) -> tuple[str, ...]:
        return tuple(self.node_id(g) for g in range(self.nodes))

    def exceeders(self) -> frozenset[int]:
        count = round(self.nodes * self.exceed_fraction)
        return frozenset(random.Random(self.seed).sample(range(self.nodes), count))

    def ts(self, minute: int) -> int:
        return self.origin_ms + minute * PERIOD_MS

    def readings_per_node(self) -> int:
        return self.minutes * len(SAMPLE)


def origin_for(now_ms: int) -> int:
    """A fixed event origin for a whole bench invocation: hh:14 of the hour two hours back."""
    return now_ms - now_ms % HOUR_MS - 2 * HOUR_MS + FIRST_MINUTE * PERIOD_MS


def journal_id(node: str) -> str:
    return hashlib.sha256(node.encode()).hexdigest()[:16]


def values(plan: LivePlan, g: int, minute: int, exceeds: bool) -> tuple[float, ...]:
    """The six values of node g's sample in `minute`, rounded to 0.1 as a station reports."""
    out = []
    for c, quantum in enumerate(SAMPLE):
        step = (g * 7919 + minute * 104_729 + c * 31 + plan.seed) % VARIANCE_STEPS
        wander = WANDER * (step - VARIANCE_STEPS // 2) / (VARIANCE_STEPS // 2)
        if quantum.quantity in STEADY:
            wander /= 4
        typical = EXCEED_NO2 if exceeds and c == NO2 else quantum.typical
        out.append(round(typical * (1 + wander), 1))
    return tuple(out)


def payload(plan: LivePlan, g: int, minute: int, exceeds: bool, sent_ms: int) -> bytes:
    node = plan.node_id(g)
    ts = plan.ts(minute)
    readings = [
        Reading(
            ts=ts,
            quantity=q.quantity,
            value=v,
            unit=q.unit,
            period_s=PERIOD_MS // 1000,
            stat="mean",
            sensor=q.sensor,
        )
        for q, v in zip(SAMPLE, values(plan, g, minute, exceeds), strict=True)
    ]
    message = ReadingsMessage(
        schema=READINGS_SCHEMA,
        node=node,
        seq=minute + 1,
        readings=readings,
        sent_ms=sent_ms,
        journal=journal_id(node),
    )
    return codec.READINGS.encode(message)


def due_wall_ms(plan: LivePlan, g: int, minute: int, anchor_wall_ms: int, rate: float) -> int:
    """When node g sends `minute`'s sample: once the minute is over in event time, spread over
    the next event minute by node index so the fleet does not publish in one burst."""
    event_offset_ms = (minute + 1 + g / plan.nodes) * PERIOD_MS
    return anchor_wall_ms + int(event_offset_ms / rate)


def expected_sums(plan: LivePlan, minutes: range | None = None) -> dict[str, float]:
    """Per node, the sum of every value it sends in `minutes` (all by default)."""
    span = range(plan.minutes) if minutes is None else minutes
    hot = plan.exceeders()
    return {
        plan.node_id(g): sum(sum(values(plan, g, m, g in hot)) for m in span)
        for g in range(plan.nodes)
    }

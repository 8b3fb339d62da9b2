"""What the aggregator stores in InfluxDB: measurements, their tags and fields.

One place that the record builders, the Grafana dashboards' tests and the README all read, so
a dashboard query cannot silently drift from what is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

FieldType = Literal["float", "integer", "string", "boolean"]


@dataclass(frozen=True, slots=True)
class Measurement:
    name: str
    tags: tuple[str, ...]
    fields: dict[str, FieldType]
    description: str


READINGS: Final = Measurement(
    name="readings",
    tags=("node", "site", "family", "quantity", "sensor", "stat", "period_s"),
    fields={"value": "float", "flags": "string"},
    description=(
        "One point per reading, timestamped at the start of its averaging interval. "
        "(node, sensor, quantity, stat, period_s, time) is the series key plus time, so a "
        "batch delivered twice overwrites itself: stored exactly once. 'flags' is a "
        "comma-separated list, present only when the reading carries flags."
    ),
)

ALERTS: Final = Measurement(
    name="alerts",
    tags=("node", "site", "rule", "kind", "severity", "quantity"),
    fields={
        "state": "string",
        "event": "string",
        "value": "float",
        "limit": "float",
        "window_s": "integer",
        "standard": "string",
        "clause": "string",
        "message": "string",
        "late": "boolean",
    },
    description=(
        "One point per alert transition (event 'fired' or 'resolved') at the event time of the "
        "data that caused it. Suited to Grafana annotations and tables."
    ),
)

NODE_STATUS: Final = Measurement(
    name="node_status",
    tags=("node", "site"),
    fields={
        "online": "boolean",
        "journal_depth": "integer",
        "journal_dropped": "integer",
        "sensors_ok": "integer",
        "sensors_failed": "integer",
    },
    description="One point per status message a node publishes.",
)

MEASUREMENTS: Final = {m.name: m for m in (READINGS, ALERTS, NODE_STATUS)}

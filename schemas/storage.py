"""What the aggregator stores in InfluxDB: measurements, their tags and fields.

One place that the record builders, the Grafana dashboards' tests and the README all read, so
a dashboard query cannot silently drift from what is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

FieldType = Literal["float", "integer", "string", "boolean"]
# The `window` tag of the `windows` measurement: the averaging windows the engine closes
# (aggregator.engine.windows) and the dashboards query.
WindowKind = Literal["1h", "24h", "8h", "mda8", "day", "night"]


@dataclass(frozen=True, slots=True)
class Measurement:
    name: str
    tags: tuple[str, ...]
    fields: dict[str, FieldType]
    description: str


READINGS: Final = Measurement(
    name="readings",
    tags=("node", "site", "family", "quantity", "sensor", "stat", "period_s"),
    fields={
        "value": "float",
        "flags": "string",
        "serial": "string",
        "raw": "float",
        "cal": "string",
        "cal_rejected": "string",
    },
    description=(
        "One point per reading, timestamped at the start of its averaging interval. "
        "(node, sensor, quantity, stat, period_s, time) is the series key plus time, so a "
        "batch delivered twice overwrites itself: stored exactly once. 'flags' is a "
        "comma-separated list, present only when the reading carries flags. 'serial' is the "
        "sensor's serial number, present when the node sent one. When a calibration record "
        "applies, 'value' is the calibrated value, 'raw' the sensor's own value and 'cal' the "
        "record's version; when the calibrated value fell outside the physical bounds, 'value' "
        "is the sensor's own value and 'cal_rejected' names the version. Otherwise 'value' is "
        "the sensor's own value. Recalibrated points always carry raw, cal and cal_rejected, "
        "an empty string meaning none (InfluxDB cannot remove a field from a point)."
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
        "suspect": "boolean",
        "since_ms": "integer",
        "window_start_ms": "integer",
        "acked_by": "string",
    },
    description=(
        "One point per alert transition: event 'fired' or 'resolved' at the event time of the "
        "data that caused it, 'renotified' or 'acknowledged' at the aggregator's clock. "
        "late=true marks alerts found in backlog data (not paged); suspect=true marks values "
        "from a sensor judged unhealthy. Suited to Grafana annotations and tables."
    ),
)

NODE_STATUS: Final = Measurement(
    name="node_status",
    tags=("node", "site"),
    fields={
        "online": "boolean",
        "journal_depth": "integer",
        "journal_dropped": "integer",
        "journal_dropped_bytes": "integer",
        "journal_bytes": "integer",
        "journal_oldest_age_s": "integer",
        "sensors_ok": "integer",
        "sensors_failed": "integer",
    },
    description="One point per status message a node publishes.",
)

WINDOWS: Final = Measurement(
    name="windows",
    tags=("node", "site", "sensor", "quantity", "window"),
    fields={
        "value": "float",
        "valid": "boolean",
        "hours": "integer",
        "coverage_s": "integer",
        "l10": "float",
        "l50": "float",
        "l90": "float",
        "revision": "boolean",
    },
    description=(
        "One point per closed averaging window, at its start: window is 1h, 24h (natural local "
        "day), 8h (sliding, O3), mda8, day or night (noise Ld/Ln). valid follows GB 3095-2026 "
        "Table 4 (and envnet's day/night minimums); l10/l50/l90 for noise. A window revised by "
        "late data is written again at the same time (revision=true) and replaces the first."
    ),
)

AQI: Final = Measurement(
    name="aqi",
    tags=("node", "site", "report", "edition"),
    fields={
        "aqi": "integer",
        "level": "integer",
        "category": "string",
        "colour": "string",
        "primary": "string",
        "missing": "string",
        "publishable": "boolean",
        "iaqi_so2": "integer",
        "iaqi_no2": "integer",
        "iaqi_co": "integer",
        "iaqi_o3": "integer",
        "iaqi_pm10": "integer",
        "iaqi_pm2_5": "integer",
    },
    description=(
        "HJ 633 AQI per node: report=hour (real-time, from 1-h means) or day (natural local day, "
        "O3 as MDA8), at the start of its hour or day. publishable follows HJ 633-2026 §5.3. "
        "Good-air days (优良天数) are days with report=day and aqi <= 100."
    ),
)

WATER_QUALITY: Final = Measurement(
    name="water_quality",
    tags=("node", "site", "body"),
    fields={
        "class": "integer",
        "target": "integer",
        "meets_target": "boolean",
        "exceeding": "string",
        "tli": "float",
        "trophic_state": "string",
    },
    description=(
        "GB 3838-2002 single-factor site class (6 = worse than V) from the latest value of each "
        "parameter, at the time of the reading that changed it; exceeding lists item:multiple; "
        "tli and trophic_state for lakes (TLI, 总站生字[2001]090号)."
    ),
)

NODES: Final = Measurement(
    name="nodes",
    tags=("node", "group", "site_type", "air_zone", "noise_zone", "water_body"),
    fields={
        "lat": "float",
        "lon": "float",
        "site": "string",
        "active": "boolean",
    },
    description=(
        "The fleet inventory as node metadata, for the map: one point per node each time the "
        "aggregator starts or its inventory changes, at the aggregator's clock. group, "
        "site_type and the zone classes are tags (empty ones left out), so that a dashboard "
        "can filter on them; lat and lon are absent for a node without a location. A node "
        "removed from the inventory, or whose tags changed, gets active=false under its old "
        "tags, so the newest point of each (node, tags) series says whether it is current."
    ),
)

MEASUREMENTS: Final = {
    m.name: m for m in (READINGS, ALERTS, NODE_STATUS, WINDOWS, AQI, WATER_QUALITY, NODES)
}

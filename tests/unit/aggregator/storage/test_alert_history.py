"""Alert history: the `alerts` query a replica asks at start and the events it reads back,
without a database (the real round trip through influxd: tests/integration/cluster/
test_alert_adoption.py)."""

from __future__ import annotations

from typing import Any

import pytest

from aggregator.storage.alert_history import (
    NODES_PER_QUERY,
    EventCounts,
    chunks,
    parse_events,
    query_for,
)
from aggregator.storage.influx import InfluxTarget
from aggregator.storage.records import alert_line
from schemas.messages import ALERT_SCHEMA, Alert

T = 1_800_000_000_000
ALERT = Alert(
    schema=ALERT_SCHEMA, node="n-1", rule="aqi.hour", kind="aqi", state="firing",
    severity="warning", standard="HJ 633-2012", clause="5.1", window_s=3600, value=200.0,
    limit=100.0, since_ms=T, updated_ms=T, message='AQI 200, "heavy", PM2.5', quantity="pm2_5",
    unit="ug/m3", site="Suzhou SIP", window_start_ms=T - 3_600_000, acked_by="ops",
)  # fmt: skip


def _value(text: str) -> Any:
    if text.startswith('"'):
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if text in ("true", "false"):
        return text == "true"
    return int(text[:-1]) if text.endswith("i") else float(text)


def _split(text: str, sep: str) -> list[str]:
    """Split on `sep` outside double quotes (and not escaped)."""
    out, part, quoted, i = [], "", False, 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            part += text[i : i + 2]
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        if c == sep and not quoted:
            out.append(part)
            part = ""
        else:
            part += c
        i += 1
    return [*out, part]


def as_queried(line: str) -> dict[str, Any]:
    """A line as `SELECT * ... GROUP BY "node", "rule"` gives it back with epoch=ms: one
    series per (node, rule), the other tags and the fields as columns."""
    series, fields, ts = _split(line, " ")
    _, *tag_parts = series.split(",")
    tags = dict(t.replace("\\ ", " ").split("=", 1) for t in tag_parts)
    row = {
        "time": int(ts),
        **{k: _value(v) for k, v in (f.split("=", 1) for f in _split(fields, ","))},
    }
    row |= {k: v for k, v in tags.items() if k not in ("node", "rule")}
    columns = sorted(row)
    return {
        "name": "alerts",
        "tags": {"node": tags["node"], "rule": tags["rule"]},
        "columns": columns,
        "values": [[row[c] for c in columns]],
    }


def test_a_stored_alert_reads_back_as_it_was_written() -> None:
    counts = EventCounts()
    answer = {"series": [as_queried(alert_line(ALERT, "acknowledged", T + 60_000))]}
    (event,) = parse_events(answer, counts)
    assert (event.event, event.at_ms, counts.rows, counts.skipped) == (
        "acknowledged",
        T + 60_000,
        1,
        0,
    )
    # What the point holds comes back; its time is the alert's updated_ms.
    assert event.alert == ALERT.__class__(**{**_fields(ALERT), "updated_ms": T + 60_000})


def _fields(alert: Alert) -> dict[str, Any]:
    return {f: getattr(alert, f) for f in alert.__struct_fields__}


def test_points_that_make_no_valid_alert_are_skipped_and_counted() -> None:
    good = as_queried(alert_line(ALERT, "fired", T))
    bad_event = as_queried(alert_line(ALERT, "fired", T))
    bad_event["values"][0][bad_event["columns"].index("event")] = "exploded"
    no_since = as_queried(alert_line(ALERT, "fired", T))
    no_since["values"][0][no_since["columns"].index("since_ms")] = None
    counts = EventCounts()
    got = list(parse_events({"series": [good, bad_event, no_since]}, counts))
    assert len(got) == 1 and (counts.rows, counts.skipped) == (3, 2)
    assert list(parse_events({"statement_id": 0}, counts)) == []  # nothing matched


def test_integer_fields_given_as_floats_are_read() -> None:
    series = as_queried(alert_line(ALERT, "fired", T))
    i = series["columns"].index("since_ms")
    series["values"][0][i] = float(series["values"][0][i])
    (event,) = parse_events({"series": [series]}, EventCounts())
    assert event.alert.since_ms == T


def test_the_query_names_the_nodes_and_the_derived_retention_policy() -> None:
    q = query_for(InfluxTarget(), T, ["n-1", "n-2"])
    assert q == (
        'SELECT * FROM "alerts" WHERE time >= 1800000000000ms AND "node" =~ /^(?:n-1|n-2)$/ '
        'GROUP BY "node", "rule"'
    )
    split = InfluxTarget(derived_retention_policy="derived")
    assert 'FROM "derived"."alerts"' in query_for(split, T, ["n-1"])
    v2 = InfluxTarget(org="o", bucket="b", token="t", derived_retention_policy="derived")
    assert 'FROM "alerts"' in query_for(v2, T, ["n-1"])  # v2: one bucket, no policies


def test_bad_node_ids_are_refused_and_long_lists_chunked() -> None:
    with pytest.raises(ValueError, match="invalid"):
        query_for(InfluxTarget(), T, ["n-1", "x' OR 1=1 --"])
    with pytest.raises(ValueError, match="no node ids"):
        query_for(InfluxTarget(), T, [])
    nodes = [f"n-{i}" for i in range(2 * NODES_PER_QUERY + 1)]
    parts = chunks(nodes)
    assert [len(p) for p in parts] == [NODES_PER_QUERY, NODES_PER_QUERY, 1]
    assert [n for p in parts for n in p] == nodes

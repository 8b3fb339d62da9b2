"""Line protocol is built by pure functions; hostile text can never add a tag, field or point."""

from __future__ import annotations

import math
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.engine.windows import WindowResult
from aggregator.fleet import NodeInfo
from aggregator.storage.lineprotocol import LineProtocolError, escape_key, format_field, line
from aggregator.storage.records import ReadingLines, WindowLines, alert_line, status_line
from schemas.messages import (
    ALERT_SCHEMA,
    STATUS_SCHEMA,
    Alert,
    Flag,
    JournalHealth,
    Reading,
    SensorHealth,
    StatusMessage,
)
from schemas.storage import WINDOWS, WindowKind
from tests.support.lineproto_parser import parse

FLAGS: tuple[Flag, ...] = get_args(Flag)

HOSTILE = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=40)


def expected_tag(text: str) -> str:
    return text.replace("\\", "/").replace("\n", " ").replace("\r", " ")


@given(HOSTILE, HOSTILE)
def test_hostile_tag_values_stay_inside_their_tag(key: str, value: str) -> None:
    parsed = parse(line("m", [("node", value), ("k" + key, "v")], [("value", 1.0)], 5))
    assert parsed.tags["node"] == expected_tag(value)
    assert parsed.fields == {"value": "1.0"}
    assert parsed.timestamp == 5


@given(HOSTILE)
def test_hostile_string_fields_stay_inside_their_field(text: str) -> None:
    parsed = parse(line("m", [], [("message", text), ("value", 2)], 7))
    assert set(parsed.fields) == {"message", "value"}
    assert parsed.fields["value"] == "2i"


def test_injection_attempt_through_a_site_name() -> None:
    site = "x value=666 1\nreadings,node=evil value=1 2"
    text = line("readings", [("site", site)], [("value", 1.5)], 9)
    assert "\n" not in text
    parsed = parse(text)
    assert parsed.tags == {"site": "x value=666 1 readings,node=evil value=1 2"}
    assert parsed.fields == {"value": "1.5"}


def test_field_formatting() -> None:
    assert format_field(True) == "true"
    assert format_field(3) == "3i"
    assert format_field(2.5) == "2.5"
    assert format_field(1e-7) == "1e-07"
    assert format_field('say "hi" \\') == '"say \\"hi\\" \\\\"'
    with pytest.raises(LineProtocolError):
        format_field(math.nan)
    with pytest.raises(LineProtocolError):
        format_field(math.inf)


def test_a_point_needs_a_field() -> None:
    with pytest.raises(LineProtocolError):
        line("m", [("a", "b")], [("value", None)], 1)


def test_empty_tags_are_omitted_and_tags_sorted() -> None:
    assert line("m", [("z", "1"), ("a", ""), ("b", "2")], [("v", 1.0)], 1) == "m,b=2,z=1 v=1.0 1"


def test_escape_key_replaces_backslash() -> None:
    assert escape_key("a\\") == "a/"


def test_reading_line() -> None:
    info = NodeInfo(site="Gonghu Bay, Taihu", node="sz-taihu")
    reading = Reading(
        ts=1796000400000,
        quantity="chl_a",
        value=23.0,
        unit="ug/L",
        period_s=600,
        stat="mean",
        sensor="sonde",
        flags=("simulated", "incomplete"),
    )
    builder = ReadingLines(info)
    text = builder.line(reading)
    assert builder.line(reading) == text  # the cached series part gives the same line
    assert text == (
        "readings,family=water,node=sz-taihu,period_s=600,quantity=chl_a,sensor=sonde,"
        'site=Gonghu\\ Bay\\,\\ Taihu,stat=mean value=23.0,flags="simulated,incomplete" '
        "1796000400000"
    )
    parsed = parse(text)
    assert parsed.tags["site"] == "Gonghu Bay, Taihu"


def test_alert_and_status_lines() -> None:
    info = NodeInfo(site="S", node="n1")
    alert = Alert(
        schema=ALERT_SCHEMA,
        node="n1",
        rule="odour.h2s",
        kind="exceedance",
        state="firing",
        severity="warning",
        standard="GB 14554-93",
        clause="Table 1",
        window_s=60,
        value=80.0,
        limit=60.0,
        since_ms=1,
        updated_ms=2,
        message='h2s "high"',
        quantity="h2s",
        unit="ug/m3",
        site="S",
        late=True,
    )
    parsed = parse(alert_line(alert, "fired", alert.updated_ms))
    assert parsed.tags["rule"] == "odour.h2s"
    assert parsed.fields["late"] == "true"
    assert parsed.fields["window_s"] == "60i"
    assert parsed.timestamp == 2
    status = StatusMessage(
        schema=STATUS_SCHEMA,
        node="n1",
        state="online",
        ts=10,
        journal=JournalHealth(depth=3, dropped=1),
        sensors=[
            SensorHealth(sensor="a", driver="d", state="ok"),
            SensorHealth(sensor="b", driver="d", state="failed"),
        ],
    )
    parsed = parse(status_line(status, info, received_ms=99))
    assert parsed.fields == {
        "online": "true",
        "journal_depth": "3i",
        "journal_dropped": "1i",
        "journal_dropped_bytes": "0i",
        "journal_bytes": "0i",
        "sensors_ok": "1i",
        "sensors_failed": "1i",
    }
    assert parsed.timestamp == 10
    will = StatusMessage(schema=STATUS_SCHEMA, node="n1", state="offline", reason="lost")
    parsed = parse(status_line(will, info, received_ms=99))
    assert parsed.fields == {"online": "false"}
    assert parsed.timestamp == 99


@given(
    st.floats(-20, 5000, allow_nan=False),
    st.integers(946_684_800_000, 4_102_444_799_999),
    st.lists(st.sampled_from(FLAGS), max_size=3),
)
def test_reading_lines_parse_back(value: float, ts: int, flags: list[Flag]) -> None:
    builder = ReadingLines(NodeInfo(site='A "quoted", spaced=site', node="n-1"))
    reading = Reading(
        ts=ts,
        quantity="o3",
        value=value,
        unit="ug/m3",
        period_s=60,
        stat="mean",
        sensor="s_1",
        flags=tuple(flags),
    )
    parsed = parse(builder.line(reading))
    assert float(parsed.fields["value"]) == value
    assert parsed.timestamp == ts
    assert parsed.tags["site"] == 'A "quoted", spaced=site'
    assert parsed.tags["quantity"] == "o3" and parsed.tags["sensor"] == "s_1"
    assert ("flags" in parsed.fields) == bool(flags)


@given(
    HOSTILE,
    st.sampled_from(get_args(WindowKind)),
    st.floats(min_value=0, max_value=1e6, allow_nan=False),
    st.booleans(),
    st.integers(0, 24),
    st.integers(0, 86_400),
    st.one_of(st.none(), st.floats(min_value=0, max_value=140)),
    st.booleans(),
)
def test_window_lines_are_what_the_generic_builder_makes(
    site: str,
    kind: WindowKind,
    value: float,
    valid: bool,
    hours: int,
    coverage_s: int,
    l50: float | None,
    revision: bool,
) -> None:
    """WindowLines caches each series' measurement and tags: its lines must be byte for byte
    what lineprotocol.line builds from the same record, hostile site names included."""
    info = NodeInfo(node="n1", site=site or "s")
    ls = (None, None, None) if l50 is None else (l50 - 1.5, l50, l50 + 2.5)
    w = WindowResult(
        ("n1", "pm", "pm2_5"), kind, 0, 3_600_000, value, valid, hours, coverage_s,
        l10=ls[0], l50=ls[1], l90=ls[2], revision=revision,
    )  # fmt: skip
    tags = [("node", info.node), ("site", info.site), ("sensor", "pm"),
            ("quantity", "pm2_5"), ("window", kind)]  # fmt: skip
    fields: list[tuple[str, float | int | bool | str | None]] = [
        ("value", value), ("valid", valid), ("hours", hours), ("coverage_s", coverage_s),
        ("l10", ls[0]), ("l50", ls[1]), ("l90", ls[2]), ("revision", revision),
    ]  # fmt: skip
    builder = WindowLines()
    expected = line(WINDOWS.name, tags, fields, 0)
    assert builder.line(w, info) == expected
    assert builder.line(w, info) == expected  # and again, from the cache
    empty = WindowResult(w.key, kind, 0, 3_600_000, math.nan, False, 0, 0)
    assert builder.line(empty, info) is None  # nothing to plot


@given(
    st.lists(
        st.floats(-20, 5000, allow_nan=False) | st.floats(-1e-3, 1e-3, allow_nan=False),
        min_size=1,
        max_size=6,
    ),
    st.lists(st.booleans(), min_size=6, max_size=6),
)
def test_a_batch_of_reading_lines_parses_back_to_its_exact_values(
    values: list[float], flagged: list[bool]
) -> None:
    """`lines` formats a batch's values in one go (msgspec); the first reading of a series
    and flagged ones take `line` (repr): either way each value reads back exactly."""
    builder = ReadingLines(NodeInfo(site="A", node="n-1"))
    readings = [
        Reading(ts=1_800_000_000_000 + i * 60_000, quantity="o3", value=v, unit="ug/m3",
                period_s=60, stat="mean", sensor="s_1", flags=("incomplete",) if f else ())
        for i, (v, f) in enumerate(zip(values, flagged, strict=False))
    ]  # fmt: skip
    lines = builder.lines(readings)
    assert lines == builder.lines(readings)  # the series is cached now: the same lines
    assert builder.lines([]) == []
    for text, reading in zip(lines, readings, strict=True):
        parsed = parse(text)
        assert float(parsed.fields["value"]) == reading.value
        assert parsed.timestamp == reading.ts
        assert ("flags" in parsed.fields) == bool(reading.flags)

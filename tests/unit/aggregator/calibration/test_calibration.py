"""Calibration (issue #4), pure parts: the book, the file, the stored lines, the rewrite plan,
and the serial's way from node.toml onto every reading.

Hand-worked numbers are in the comments; hypothesis checks the identity calibration and that
a lookup answers exactly what a brute-force search of the validity periods answers.
"""

from __future__ import annotations

import json
import math
import random
import tomllib
from pathlib import Path
from typing import Final

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.calibration.batch import calibrate_batch
from aggregator.calibration.book import (
    VERSION_PATTERN,
    CalibratedOutOfBoundsError,
    CalibrationBook,
    CalibrationRecord,
    InvalidCalibrationError,
    Linear,
    OverlappingCalibrationError,
    Polynomial,
)
from aggregator.calibration.file import (
    CalibrationFileError,
    load_calibrations,
    parse_calibrations,
)
from aggregator.calibration.recalibrate import (
    RecalibrationCounts,
    StoredPoint,
    TimeArgumentError,
    parse_points,
    parse_time_ms,
    plan,
    query_for,
)
from aggregator.fleet import NodeInfo
from aggregator.storage.records import ReadingLines
from edge.config import EdgeConfig
from edge.journal import decode_chunk, encode_chunk
from edge.runtime import build_sampler
from edge.stats import IntervalStats
from schemas import codec
from schemas.messages import READINGS_SCHEMA, SERIAL_PATTERN, Reading, ReadingsMessage
from schemas.quantities import SPECS, Quantity
from schemas.runtime.configfile import ConfigError, convert
from tests.support.lineproto_parser import parse

DAY: Final = 86_400_000
DOUBLE_PLUS_ONE: Final = Linear(2.0, 1.0)
T0: Final = 1_796_000_400_000  # 2026-11-30 09:00 UTC+8
EXAMPLE: Final = Path(__file__).resolve().parents[4] / "deploy" / "config" / "calibrations.toml"


def record(
    version: str = "v1",
    start: int = T0,
    until: int | None = None,
    curve: Linear | Polynomial = DOUBLE_PLUS_ONE,
    serial: str = "SN-1",
    quantity: Quantity = "pm2_5",
) -> CalibrationRecord:
    return CalibrationRecord(serial, quantity, version, start, until, curve)


def reading(
    value: float,
    quantity: Quantity = "pm2_5",
    ts: int = T0,
    serial: str | None = "SN-1",
    flags: tuple[str, ...] = (),
) -> Reading:
    spec = SPECS[quantity]
    return msgspec.convert(
        {
            "ts": ts,
            "quantity": quantity,
            "value": value,
            "unit": spec.unit,
            "period_s": 60,
            "stat": spec.default_stat,
            "sensor": "s1",
            "flags": list(flags),
            **({"serial": serial} if serial is not None else {}),
        },
        Reading,
    )


# -- the arithmetic -------------------------------------------------------------------------


def test_linear_hand_worked() -> None:
    book = CalibrationBook([record(curve=Linear(0.87, -1.2))])
    # 0.87 * 50 - 1.2 = 43.5 - 1.2 = 42.3
    value, version = book.calibrate(reading(50.0)) or (math.nan, "")
    assert value == pytest.approx(42.3)
    assert version == "v1"


def test_polynomial_hand_worked() -> None:
    book = CalibrationBook([record(curve=Polynomial((1.5, 0.82, 0.0004)), quantity="pm10")])
    # 1.5 + 0.82 * 100 + 0.0004 * 100^2 = 1.5 + 82 + 4 = 87.5
    result = book.calibrate(reading(100.0, "pm10"))
    assert result is not None and result[0] == pytest.approx(87.5)
    # raw 0: c0 alone
    assert book.calibrate_value("SN-1", "pm10", T0, 0.0) == (1.5, "v1")


def test_reading_without_serial_or_record_is_not_calibrated() -> None:
    book = CalibrationBook([record()])
    assert book.calibrate(reading(10.0, serial=None)) is None
    assert book.calibrate(reading(10.0, serial="SN-2")) is None
    assert book.calibrate(reading(10.0, "pm10")) is None


# -- validity -------------------------------------------------------------------------------


def test_validity_is_half_open_and_matched_by_ts() -> None:
    v1 = record("v1", T0, T0 + DAY, Linear(2.0, 0.0))
    v2 = record("v2", T0 + DAY, None, Linear(3.0, 0.0))
    book = CalibrationBook([v2, v1])  # order in the file does not matter
    assert book.calibrate_value("SN-1", "pm2_5", T0 - 1, 10.0) is None
    assert book.calibrate_value("SN-1", "pm2_5", T0, 10.0) == (20.0, "v1")
    assert book.calibrate_value("SN-1", "pm2_5", T0 + DAY - 1, 10.0) == (20.0, "v1")
    assert book.calibrate_value("SN-1", "pm2_5", T0 + DAY, 10.0) == (30.0, "v2")
    assert book.calibrate_value("SN-1", "pm2_5", T0 + 400 * DAY, 10.0) == (30.0, "v2")


def test_a_gap_between_versions_calibrates_nothing() -> None:
    book = CalibrationBook([record("v1", T0, T0 + DAY), record("v2", T0 + 3 * DAY, None)])
    assert book.record_at("SN-1", "pm2_5", T0 + 2 * DAY) is None
    assert book.record_at("SN-1", "pm2_5", T0 + 3 * DAY) is not None


def test_overlapping_versions_are_refused() -> None:
    with pytest.raises(OverlappingCalibrationError, match="v1 and v2"):
        CalibrationBook([record("v1", T0, None), record("v2", T0 + DAY, None)])
    with pytest.raises(OverlappingCalibrationError, match="v1 and v2"):
        CalibrationBook([record("v1", T0, T0 + DAY + 1), record("v2", T0 + DAY, None)])
    with pytest.raises(OverlappingCalibrationError, match="defined twice"):
        CalibrationBook([record("v1", T0, T0 + DAY), record("v1", T0 + DAY, None)])


def test_overlap_is_per_serial_and_quantity() -> None:
    book = CalibrationBook(
        [
            record("v1", T0, None),
            record("v1", T0, None, quantity="pm10"),
            record("v1", T0, None, serial="SN-2"),
        ]
    )
    assert len(book) == 3
    assert book.serials() == {"SN-1", "SN-2"}


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: record(until=T0), "valid_until must be after"),
        (lambda: record(curve=Linear(0.0, 1.0)), "gain must be above 0"),
        (lambda: record(curve=Linear(math.inf, 1.0)), "finite"),
        (lambda: record(curve=Polynomial((1.0, math.nan))), "finite"),
        (lambda: record(curve=Polynomial((1.0,))), "c0 and c1"),
        (lambda: record(serial='SN "1"'), "serial must match"),
        (lambda: record(version="v 1"), "serial must match"),
    ],
)
def test_unusable_records_are_refused(make: object, match: str) -> None:
    with pytest.raises(InvalidCalibrationError, match=match):
        make()  # type: ignore[operator]


# -- out of bounds --------------------------------------------------------------------------


def test_calibrated_value_outside_the_physical_bounds_is_refused() -> None:
    book = CalibrationBook(
        [
            record(curve=Linear(2.0, 0.0), quantity="rh"),
            record(curve=Linear(1.0, -30.0)),
            record(curve=Polynomial((0.0, 1e308, 1e308)), quantity="pm10"),
        ]
    )
    # rh 60 % * 2 = 120 % > 100 %
    with pytest.raises(CalibratedOutOfBoundsError, match="outside the physical bounds") as raised:
        book.calibrate(reading(60.0, "rh"))
    assert (raised.value.version, raised.value.raw, raised.value.value) == ("v1", 60.0, 120.0)
    # pm2_5 5 - 30 = -25 < -20
    with pytest.raises(CalibratedOutOfBoundsError):
        book.calibrate(reading(5.0))
    # overflow to infinity is out of bounds too
    with pytest.raises(CalibratedOutOfBoundsError):
        book.calibrate(reading(1000.0, "pm10"))
    # the bound itself is inside: rh 50 * 2 = 100
    assert book.calibrate(reading(50.0, "rh")) == (100.0, "v1")


# -- properties -----------------------------------------------------------------------------


@given(st.sampled_from(sorted(SPECS)), st.data())
def test_identity_calibrations_change_nothing(quantity: Quantity, data: st.DataObject) -> None:
    spec = SPECS[quantity]
    raw = data.draw(st.floats(spec.lower, spec.upper, allow_nan=False))
    for curve in (Linear(1.0, 0.0), Polynomial((0.0, 1.0))):
        book = CalibrationBook([record(curve=curve, quantity=quantity)])
        assert book.calibrate(reading(raw, quantity)) == (raw, "v1")


CUTS = st.lists(st.integers(0, 10_000), min_size=1, max_size=8, unique=True).map(sorted)


@given(CUTS, st.lists(st.booleans(), min_size=8, max_size=8), st.booleans(), st.data())
def test_lookup_matches_a_brute_force_search(
    cuts: list[int], gaps: list[bool], open_end: bool, data: st.DataObject
) -> None:
    """Consecutive periods between sorted cut points, some left out (gaps), the last maybe
    open-ended: every ts gets the one record covering it, in any query order and whatever
    order the records were given in."""
    ends: list[int | None] = [*cuts[1:], None] if open_end else [*cuts[1:]]
    records = [
        record(f"v{i}", T0 + start, None if end is None else T0 + end, Linear(1.0 + i, 0.0))
        for i, (start, end) in enumerate(zip(cuts, ends, strict=False))
        if not gaps[i]
    ]
    gains = {r.version: 1.0 + int(r.version[1:]) for r in records}
    book = CalibrationBook(records)
    shuffled = CalibrationBook(data.draw(st.permutations(records)))
    queries = data.draw(st.lists(st.integers(-10, 10_010), max_size=30))
    for offset in queries:
        ts = T0 + offset
        covering = [r for r in records if r.covers(ts)]
        assert len(covering) <= 1
        expected = (10.0 * gains[covering[0].version], covering[0].version) if covering else None
        assert book.calibrate_value("SN-1", "pm2_5", ts, 10.0) == expected
        assert shuffled.calibrate_value("SN-1", "pm2_5", ts, 10.0) == expected


# -- the file -------------------------------------------------------------------------------

GOOD: Final = """
[[calibration]]
serial = "PMS5003-A1B2C3"
quantity = "pm2_5"
version = "2026-03"
valid_from = 2026-03-01T00:00:00+08:00
valid_until = 2026-09-01T00:00:00+08:00
kind = "linear"
gain = 0.9
offset = 1
source = "co-location"

[[calibration]]
serial = "PMS5003-A1B2C3"
quantity = "pm2_5"
version = "2026-09"
valid_from = 2026-09-01T00:00:00+08:00
kind = "polynomial"
coefficients = [0.5, 1.0, 0.001]
"""


def test_file_loads_with_times_in_their_offset() -> None:
    book = parse_calibrations(tomllib.loads(GOOD), "cal.toml")
    first, second = list(book)
    # 2026-03-01 00:00 UTC+8 = 2026-02-28 16:00 UTC
    assert first.valid_from_ms == parse_time_ms("2026-02-28T16:00:00Z")
    assert first.valid_until_ms == second.valid_from_ms
    assert first.curve == Linear(0.9, 1.0)
    assert second.curve == Polynomial((0.5, 1.0, 0.001))
    assert (first.kind, second.kind, first.source) == ("linear", "polynomial", "co-location")


def test_the_shipped_example_loads() -> None:
    book = load_calibrations(EXAMPLE)
    assert len(book) == 3
    # the example's pm10 polynomial: 1.5 + 0.82 * 100 + 0.0004 * 100^2 = 87.5
    result = book.calibrate_value("PMS5003-A1B2C3", "pm10", T0, 100.0)
    assert result is not None and result[0] == pytest.approx(87.5)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (("offset = 1", "ofset = 1"), r"unknown field `ofset` - at `\$.calibration\[0\]`"),
        (('kind = "linear"', 'kind = "quadratic"'), r"Invalid value 'quadratic'"),
        (("+08:00\nvalid_until", "\nvalid_until"), r"timezone .* `\$.calibration\[0\].valid_from`"),
        (("gain = 0.9", "gain = -0.9"), r"calibration\[0\]: PMS5003-A1B2C3 pm2_5 .*gain"),
        (("gain = 0.9", "gain = inf"), r"calibration\[0\]: .*finite"),
        (('quantity = "pm2_5"', 'quantity = "pm1"'), r"`\$.calibration\[0\].quantity`"),
        (('serial = "PMS5003-A1B2C3"', 'serial = "a b"'), r"`\$.calibration\[0\].serial`"),
        (("coefficients = [0.5, 1.0, 0.001]", "coefficients = [0.5]"), r"calibration\[1\]"),
        (("valid_from = 2026-09-01", "valid_from = 2026-08-01"), "2026-03 and 2026-09"),
        (
            ("until = 2026-09-01", "until = 2026-02-01"),
            r"calibration\[0\].*valid_until must be after",
        ),
    ],
)
def test_file_errors_name_the_file_and_the_record(edit: tuple[str, str], match: str) -> None:
    old, new = edit
    assert old in GOOD
    with pytest.raises(CalibrationFileError, match=match) as raised:
        parse_calibrations(tomllib.loads(GOOD.replace(old, new, 1)), "cal.toml")
    assert str(raised.value).startswith("cal.toml: ")
    assert isinstance(raised.value, ConfigError)  # the CLI's exit status 2


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_calibrations(tmp_path / "nope.toml")


# -- stored lines and evaluated readings ----------------------------------------------------


def builder() -> ReadingLines:
    return ReadingLines(NodeInfo(site="Site A", node="n1"))


def test_lines_without_serial_are_exactly_as_before() -> None:
    plain = reading(10.0, serial=None, flags=("incomplete",))
    text = builder().line(plain)
    assert text == (
        "readings,family=air,node=n1,period_s=60,quantity=pm2_5,sensor=s1,site=Site\\ A,"
        'stat=mean value=10.0,flags="incomplete" 1796000400000'
    )


def test_calibrate_batch_stores_raw_and_version_and_evaluates_calibrated() -> None:
    book = CalibrationBook([record(curve=Linear(2.0, 1.0)), record(quantity="rh")])
    readings = [
        reading(10.0, serial=None),  # not touched
        reading(10.0, flags=("incomplete",)),  # 2 * 10 + 1 = 21
        reading(30.0, "pm10"),  # serial, no record
        reading(60.0, "rh"),  # 2 * 60 + 1 = 121 % > 100 %: rejected
    ]
    b = builder()
    batch = calibrate_batch(b, book, readings)
    plain, calibrated, no_record, rejected = (parse(t) for t in batch.lines)
    assert batch.lines[0] == b.line(readings[0])
    assert "serial" not in plain.fields and "raw" not in plain.fields
    assert calibrated.fields == {
        "value": "21.0",
        "raw": "10.0",
        "cal": '"v1"',
        "flags": '"incomplete"',
        "serial": '"SN-1"',
    }
    assert no_record.fields == {"value": "30.0", "serial": '"SN-1"'}
    assert rejected.fields == {
        "value": "60.0",
        "raw": "60.0",
        "cal_rejected": '"v1"',
        "serial": '"SN-1"',
    }
    assert calibrated.tags == plain.tags  # same series: a rewrite hits the same point
    assert (batch.applied, batch.no_record, batch.out_of_bounds) == (1, 1, 1)
    # The standards judge the calibrated value; the rejected one as the sensor sent it.
    assert [r.value for r in batch.readings] == [10.0, 21.0, 30.0, 60.0]
    assert batch.readings[1].serial == "SN-1" and batch.readings[1].flags == ("incomplete",)
    assert [r.value for r in readings] == [10.0, 10.0, 30.0, 60.0]  # input untouched


def test_calibrate_batch_without_calibrations_returns_the_same_readings() -> None:
    readings = [reading(10.0, serial=None), reading(12.0, serial="SN-9")]
    batch = calibrate_batch(builder(), CalibrationBook([record()]), readings)
    assert batch.readings is readings
    assert batch.lines == builder().lines(readings)


# -- rewriting history ----------------------------------------------------------------------

TAGS: Final = (("family", "air"), ("node", "n1"), ("period_s", "60"), ("quantity", "pm2_5"),
               ("sensor", "s1"), ("site", "Site A"), ("stat", "mean"))  # fmt: skip


def stored(
    value: float, raw: float | None = None, cal: str = "", rejected: str = ""
) -> StoredPoint:
    return StoredPoint(TAGS, "pm2_5", T0, value, raw, cal, rejected, "SN-1")


def test_plan_recalibrates_from_raw_and_rewrites_the_same_point() -> None:
    book = CalibrationBook([record("v2", curve=Linear(3.0, 0.0))])
    outcome, text = plan(stored(21.0, raw=10.0, cal="v1"), book)
    assert outcome == "recalibrated" and text is not None
    parsed = parse(text)
    assert parsed.fields == {"value": "30.0", "raw": "10.0", "cal": '"v2"', "cal_rejected": '""'}
    assert parsed.tags == dict(TAGS) and parsed.timestamp == T0
    # the same series key as the live line of that reading
    assert (
        text.split(" ")[0] + " " + text.split(" ")[1]
        == builder().line(reading(1.0, serial=None)).split(" value=")[0]
    )
    # never calibrated: value was the raw value
    outcome, text = plan(stored(10.0), book)
    assert outcome == "recalibrated" and text is not None and "raw=10.0" in text
    # already so: nothing to write
    assert plan(stored(30.0, raw=10.0, cal="v2"), book) == ("recalibrated", None)


def test_plan_reverts_and_rejects() -> None:
    empty = CalibrationBook([])
    outcome, text = plan(stored(21.0, raw=10.0, cal="v1"), empty)
    assert outcome == "no_calibration" and text is not None
    assert parse(text).fields == {"value": "10.0", "raw": "10.0", "cal": '""', "cal_rejected": '""'}
    assert plan(stored(10.0), empty) == ("no_calibration", None)  # nothing to undo
    wild = CalibrationBook([record("v3", curve=Linear(1.0, 9000.0))])
    outcome, text = plan(stored(21.0, raw=10.0, cal="v1"), wild)
    assert outcome == "out_of_bounds" and text is not None
    assert parse(text).fields["cal_rejected"] == '"v3"' and parse(text).fields["value"] == "10.0"


def test_counts() -> None:
    counts = RecalibrationCounts()
    for outcome, rewrite in [("recalibrated", True), ("recalibrated", False),
                             ("no_calibration", True), ("no_calibration", False),
                             ("out_of_bounds", True)]:  # fmt: skip
        counts.add(outcome, rewrite)  # type: ignore[arg-type]
    assert (counts.recalibrated, counts.unchanged, counts.no_calibration, counts.reverted) == (
        1, 1, 2, 1)  # fmt: skip
    assert counts.out_of_bounds == 1


def test_parse_points_reads_an_influxql_answer() -> None:
    answer = {
        "series": [
            {
                "name": "readings",
                "tags": dict(TAGS) | {"extra": ""},
                "columns": ["time", "value", "raw", "cal", "cal_rejected", "serial"],
                "values": [
                    [T0, 21, 10, "v1", None, "SN-1"],
                    [T0 + 60_000, 12.5, None, None, None, "SN-1"],
                    [T0 + 120_000, "x", None, None, None, "SN-1"],  # not a reading
                ],
            }
        ]
    }
    counts = RecalibrationCounts()
    points = list(parse_points(answer, counts))
    assert points[0] == StoredPoint(TAGS, "pm2_5", T0, 21.0, 10.0, "v1", "", "SN-1")
    assert points[1].sensor_value == 12.5 and points[1].raw is None
    assert counts.skipped == 1


def test_query_is_bounded_and_filters_on_serial() -> None:
    q = query_for(1, 2, "n-1")
    assert "time >= 1ms AND time < 2ms" in q and '"serial" =~ /./' in q
    assert "\"node\" = 'n-1'" in q and q.endswith("GROUP BY *")


@pytest.mark.parametrize("text", ["2026-03-01T00:00:00", "yesterday", "2026-13-01T00:00+08:00"])
def test_times_need_iso_with_an_offset(text: str) -> None:
    with pytest.raises(TimeArgumentError):
        parse_time_ms(text)


# -- the serial from node.toml onto readings ------------------------------------------------


def test_node_toml_serial_reaches_every_reading_of_that_sensor() -> None:
    raw = {
        "node": {"id": "n1"},
        "sensors": [
            {"id": "pm", "driver": "sim-air", "options": {"seed": 1}, "serial": "PMS-7"},
            {"id": "met", "driver": "sim-met", "options": {"seed": 1}},
        ],
    }
    config = convert(raw, EdgeConfig, "node.toml")
    sampler = build_sampler(config, start_ms=T0)
    readings = [r for s in range(1, 62) for r in sampler.step(T0 + s * 1000)]
    assert readings
    by_sensor = {(r.sensor, r.serial) for r in readings}
    assert by_sensor == {("pm", "PMS-7"), ("met", None)}
    # on the wire: present for pm, absent (not null) for met
    payload = codec.READINGS.encode(ReadingsMessage(READINGS_SCHEMA, "n1", 1, readings))
    assert payload.count(b'"serial":"PMS-7"') == sum(r.sensor == "pm" for r in readings)
    assert b"null" not in payload
    assert codec.READINGS.decode(payload).readings == readings


def test_node_toml_refuses_a_bad_serial() -> None:
    raw = {"node": {"id": "n1"}, "sensors": [{"id": "pm", "driver": "x", "serial": "a,b=c"}]}
    with pytest.raises(ConfigError, match="serial"):
        convert(raw, EdgeConfig, "node.toml")


def test_interval_stats_put_the_serial_on_readings() -> None:
    stats = IntervalStats(0, 60, 1, serials={"pm": "SN-1"})
    stats.add("pm", "pm2_5", 10.0, ())
    stats.add("met", "rh", 50.0, ())
    assert {r.sensor: r.serial for r in stats.close()} == {"pm": "SN-1", "met": None}


def test_journal_keeps_the_serial_and_old_chunks_unchanged() -> None:
    with_serial = reading(10.0)
    without = reading(10.0, serial=None, flags=("incomplete",))
    assert decode_chunk(encode_chunk([with_serial, without])) == [with_serial, without]
    # A reading without a serial is the 7-element array older agents wrote and read.
    assert encode_chunk([without])[1] == 0x97
    assert encode_chunk([with_serial])[1] == 0x98


def test_random_order_of_records_in_file_gives_the_same_book() -> None:
    records = [record(f"v{i}", T0 + i * DAY, T0 + (i + 1) * DAY) for i in range(20)]
    shuffled = records[:]
    random.Random(4).shuffle(shuffled)
    assert list(CalibrationBook(shuffled)) == records


# -- the command line -----------------------------------------------------------------------


def test_cli_refuses_times_without_offset_and_a_config_without_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from envnet.cli import main

    agg = tmp_path / "agg.toml"
    agg.write_text(f'[calibration]\npath = "{EXAMPLE}"\n')
    apply = ["calibration", "apply", "--config", str(agg)]
    assert main([*apply, "--since", "2026-03-01T00:00"]) == 2
    assert "no UTC offset" in capsys.readouterr().err
    # --until before --since selects nothing: refused, not a run of no rows that exits 0.
    assert main([*apply, "--since", "2026-03-02T00:00Z", "--until", "2026-03-01T00:00Z"]) == 2
    assert "--until must be after --since" in capsys.readouterr().err
    bare = tmp_path / "bare.toml"
    bare.write_text("")
    assert main([*apply[:3], str(bare), "--since", "2026-03-01T00:00+08:00"]) == 2
    assert "calibration.path is not set" in capsys.readouterr().err
    assert main(["calibration", "show", "--config", str(agg), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [(r["version"], r["valid_from"]) for r in shown if r["quantity"] == "pm2_5"] == [
        ("2026-02-colocation", "2026-02-01T00:00:00+08:00"),
        ("2026-08-colocation", "2026-08-01T00:00:00+08:00"),
    ]


SERIALS = st.from_regex(SERIAL_PATTERN, fullmatch=True)
VERSIONS = st.from_regex(VERSION_PATTERN, fullmatch=True)


@given(
    SERIALS,
    VERSIONS,
    st.floats(-20, 5000, allow_nan=False),
    st.floats(-20, 5000, allow_nan=False),
    st.lists(st.sampled_from(["incomplete", "simulated"]), max_size=2, unique=True),
)
def test_serial_and_calibrated_lines_parse_back(
    serial: str, version: str, raw: float, value: float, flags: list[str]
) -> None:
    b = builder()
    sent = reading(raw, serial=serial, flags=tuple(flags))
    for text, expected in (
        (b.line(sent), {"value": repr(raw)}),
        (
            b.calibrated_line(msgspec.structs.replace(sent, value=value), raw, version),
            {"value": repr(value), "raw": repr(raw), "cal": f'"{version}"'},
        ),
        (b.rejected_line(sent, version), {"value": repr(raw), "raw": repr(raw),
                                          "cal_rejected": f'"{version}"'}),
    ):  # fmt: skip
        parsed = parse(text)
        flag_field = {"flags": '"' + ",".join(flags) + '"'} if flags else {}
        assert parsed.fields == expected | flag_field | {"serial": f'"{serial}"'}
        assert parsed.tags["quantity"] == "pm2_5" and parsed.timestamp == T0

"""Replay of the Beijing hourly CSV as a Producer: parsing, units, time, filters, bad rows."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.agent import Producer
from schemas.messages import Reading
from schemas.quantities import SPECS
from simulators.replay_csv import (
    COLUMNS,
    NEVER_MS,
    CsvReplay,
    ParsedRow,
    ReplayFileError,
    RowError,
    iter_rows,
    local_hour_to_utc_ms,
    parse_row,
    rh_from_dewpoint,
)

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
AOTI = DATA / "PRSA_Data_Aotizhongxin_20130301-20170228.csv"
needs_data = pytest.mark.skipif(
    not AOTI.is_file(), reason=f"shared data not found at {AOTI} (../shared/data)"
)

HEADER = ",".join(f'"{c}"' for c in COLUMNS)
FIRST_ROW = '1,2013,3,1,0,4,4,4,7,300,77,-0.7,1023,-18.8,0,"NNW",4.4,"Aotizhongxin"'
START = 1_700_000_000_000


def row(no: int, hour: int, pm25: str = "10", co: str = "500", day: int = 1) -> str:
    return f'{no},2013,3,{day},{hour},{pm25},20,5,30,{co},60,5.0,1015,-5.0,0,"N",2.0,"Test"'


def write_csv(tmp_path: Path, *lines: str, header: str = HEADER) -> Path:
    path = tmp_path / "data.csv"
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def values(parsed: ParsedRow) -> dict[str, float]:
    return {s.quantity: s.value for s in parsed.values}


def assert_valid_readings(parsed: ParsedRow) -> None:
    """A Reading checks unit and bounds itself: every parsed value must make a valid one."""
    for sample in parsed.values:
        reading = Reading(
            ts=parsed.ts_ms,
            quantity=sample.quantity,
            value=sample.value,
            unit=SPECS[sample.quantity].unit,
            period_s=3600,
            stat="mean",
            sensor="ref",
        )
        # Decoding applies the contract's constraints too (e.g. the timestamp range).
        assert msgspec.json.decode(msgspec.json.encode(reading), type=Reading) == reading


def drain(replay: CsvReplay) -> list[Reading]:
    out: list[Reading] = []
    while not replay.exhausted:
        out.extend(replay.step(replay.next_due_ms()))
    return out


# -- pure parsing ------------------------------------------------------------------------------


def test_first_row_of_the_real_file_in_canonical_units() -> None:
    parsed = parse_row(next(csv.reader([FIRST_ROW])))
    v = values(parsed)
    assert v["co"] == pytest.approx(0.3)  # 300 µg/m³ -> 0.3 mg/m³
    assert v["pm2_5"] == 4.0
    assert v["o3"] == 77.0
    assert v["air_temp"] == -0.7
    assert v["pressure"] == 1023.0
    assert v["rh"] == pytest.approx(rh_from_dewpoint(-0.7, -18.8), abs=0.01)
    assert 20.0 < v["rh"] < 30.0  # a dry north-westerly: dew point 18 K below the air
    # 2013-03-01 00:00 in Beijing (UTC+8) is 2013-02-28T16:00Z, the start of the hour.
    assert parsed.ts_ms == int(datetime(2013, 2, 28, 16, tzinfo=UTC).timestamp()) * 1000
    assert parsed.missing == ()


def test_local_time_conversion() -> None:
    assert local_hour_to_utc_ms(2013, 3, 1, 0) == 1_362_067_200_000
    assert local_hour_to_utc_ms(2013, 3, 1, 8) == int(
        datetime(2013, 3, 1, tzinfo=UTC).timestamp() * 1000
    )


def test_magnus_relative_humidity() -> None:
    assert rh_from_dewpoint(20.0, 20.0) == pytest.approx(100.0)
    assert rh_from_dewpoint(20.0, 10.0) == pytest.approx(52.5, abs=0.3)
    assert rh_from_dewpoint(-10.0, -20.0) == pytest.approx(45.0, abs=1.5)
    assert rh_from_dewpoint(10.0, 10.4) == 100.0  # dew point above the air: clipped
    assert 0.0 <= rh_from_dewpoint(40.0, -80.0) < 1.0


def test_na_skips_only_that_quantity() -> None:
    fields = row(1, 0, pm25="NA", co="NA").split(",")
    parsed = parse_row(fields)
    assert set(parsed.missing) == {"pm2_5", "co"}
    assert "pm10" in values(parsed)
    fields = row(1, 0).split(",")
    fields[13] = "NA"  # DEWP: no humidity, temperature still there
    parsed = parse_row(fields)
    assert parsed.missing == ("rh",)
    assert values(parsed)["air_temp"] == 5.0


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda f: f[:-1], "columns"),
        (lambda f: [*f, "x"], "columns"),
        (lambda f: [*f[:5], "abc", *f[6:]], "number"),
        (lambda f: [*f[:5], "", *f[6:]], "number"),
        (lambda f: [*f[:5], "nan", *f[6:]], "number"),
        (lambda f: [*f[:5], "inf", *f[6:]], "number"),
        (lambda f: [*f[:5], "99999", *f[6:]], "bounds"),
        (lambda f: [*f[:12], "1500", *f[13:]], "bounds"),
        (lambda f: [*f[:13], "-300", *f[14:]], "bounds"),
        (lambda f: [f[0], "2013", "13", *f[3:]], "date"),
        (lambda f: [f[0], "2013", "2", "30", *f[4:]], "date"),
        (lambda f: [*f[:4], "24", *f[5:]], "date"),
        (lambda f: [f[0], "1999", *f[2:]], "date"),
        (lambda f: [f[0], "two", *f[2:]], "date"),
    ],
)
def test_malformed_rows_raise_row_error_with_a_reason(mutate: object, reason: str) -> None:
    fields = row(1, 0).split(",")
    with pytest.raises(RowError) as info:
        parse_row(mutate(fields))  # type: ignore[operator]
    assert info.value.reason == reason
    assert str(info.value)


FIELD = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["NA", "", "nan", "-inf", "1e400", "0", "-1", "1_0", " 7 ", "9" * 5000]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers().map(str),
)


@settings(max_examples=300, deadline=None)
@given(fields=st.lists(FIELD, max_size=25))
def test_parse_row_raises_only_row_error_on_arbitrary_fields(fields: list[str]) -> None:
    try:
        parsed = parse_row(fields)
    except RowError:
        return
    assert len(fields) == len(COLUMNS)
    assert_valid_readings(parsed)


@settings(max_examples=300, deadline=None)
@given(
    position=st.integers(0, len(COLUMNS) - 1),
    replacement=FIELD,
)
def test_one_bad_field_in_a_good_row_is_a_row_error_or_a_valid_row(
    position: int, replacement: str
) -> None:
    fields = row(1, 3).split(",")
    fields[position] = replacement
    try:
        parsed = parse_row(fields)
    except RowError:
        return
    assert_valid_readings(parsed)


# -- file errors --------------------------------------------------------------------------------


def test_missing_file_is_a_replay_file_error(tmp_path: Path) -> None:
    with pytest.raises(ReplayFileError, match="cannot open"):
        CsvReplay(tmp_path / "nope.csv", start_ms=START)


@pytest.mark.parametrize(
    "header",
    ["", '"No","year","month"', HEADER.replace("PM2.5", "PM25"), "garbage\x00\xff"],
)
def test_wrong_header_is_a_replay_file_error(tmp_path: Path, header: str) -> None:
    path = write_csv(tmp_path, row(1, 0), header=header)
    with pytest.raises(ReplayFileError, match="not a PRSA hourly file"):
        CsvReplay(path, start_ms=START)


def test_a_directory_is_a_replay_file_error(tmp_path: Path) -> None:
    with pytest.raises(ReplayFileError):
        CsvReplay(tmp_path, start_ms=START)


def test_header_only_file_is_immediately_exhausted(tmp_path: Path) -> None:
    replay = CsvReplay(write_csv(tmp_path), start_ms=START)
    assert replay.exhausted
    assert replay.next_due_ms() == NEVER_MS
    assert replay.step(START + 10**12) == []
    replay.close()


def test_bad_arguments_are_value_errors(tmp_path: Path) -> None:
    path = write_csv(tmp_path, row(1, 0))
    with pytest.raises(ValueError, match="speed"):
        CsvReplay(path, start_ms=START, speed=0)
    with pytest.raises(ValueError, match="sensor id"):
        CsvReplay(path, start_ms=START, sensor="Bad/Id")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        CsvReplay(path, start_ms=START, date_from="March")


# -- malformed rows in a stream ---------------------------------------------------------------


def test_malformed_rows_are_skipped_counted_and_reported(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        row(1, 0),
        "2,2013,3,1,1,10,20",  # too few columns
        row(3, 2, pm25="lots"),  # unparseable
        row(4, 3, pm25="NA"),  # missing PM2.5 only
        row(5, 4, pm25="6000"),  # above the PM2.5 bound of 5000
        row(6, 3),  # an hour already emitted
        "",  # blank line
        row(7, 5, co="1234.5"),
        '8,2013,3,1,6,"unterminated',
    )
    replay = CsvReplay(path, start_ms=START, speed=3600)
    readings = drain(replay)
    counts = replay.counts
    assert counts.rows_emitted == 3
    assert counts.skipped == {"columns": 2, "number": 1, "bounds": 1, "order": 1}
    assert counts.rows_skipped == 5
    assert counts.missing == {"pm2_5": 1}
    hours = sorted({r.ts for r in readings})
    assert hours == [local_hour_to_utc_ms(2013, 3, 1, h) for h in (0, 3, 5)]
    co = [r.value for r in readings if r.quantity == "co"]
    assert co == pytest.approx([0.5, 0.5, 1.2345])
    assert counts.readings_emitted == len(readings) == 9 + 8 + 9
    (health,) = replay.health()
    assert health.errors == 5
    assert health.last_error is not None
    assert "line 10" in health.last_error
    assert health.driver == "replay-csv"


def test_iter_rows_streams_outcomes_with_line_numbers(tmp_path: Path) -> None:
    path = write_csv(tmp_path, row(1, 0), "bad", row(3, 2))
    outcomes = list(iter_rows(path))
    assert [line for line, _ in outcomes] == [2, 3, 4]
    assert isinstance(outcomes[1][1], RowError)
    assert isinstance(outcomes[2][1], ParsedRow)


# -- time scaling, rebasing, filtering --------------------------------------------------------


def test_exactly_the_rows_due_are_emitted(tmp_path: Path) -> None:
    path = write_csv(tmp_path, *(row(h + 1, h) for h in range(6)))
    replay: Producer = CsvReplay(path, start_ms=START, speed=3600)
    # Each hourly row is due when its hour has passed in replayed time: 1 s per row here.
    assert replay.next_due_ms() == START + 1000
    assert replay.step(START) == []
    assert replay.step(START + 999) == []
    first = replay.step(START + 1000)
    assert {r.ts for r in first} == {local_hour_to_utc_ms(2013, 3, 1, 0)}
    two = replay.step(START + 3500)
    assert sorted({r.ts for r in two}) == [local_hour_to_utc_ms(2013, 3, 1, h) for h in (1, 2)]
    assert replay.next_due_ms() == START + 4000
    assert replay.flush(START + 3999) == []
    rest = replay.step(START + 10**9)
    assert len({r.ts for r in rest}) == 3
    assert all(r.period_s == 3600 and r.stat == "mean" for r in first + two + rest)
    assert all(r.flags == ("replayed",) and r.sensor == "ref" for r in first + two + rest)


def test_speed_scales_the_schedule(tmp_path: Path) -> None:
    path = write_csv(tmp_path, *(row(h + 1, h) for h in range(4)))
    replay = CsvReplay(path, start_ms=START, speed=7200, sensor="aoti")
    due = []
    while not replay.exhausted:
        due.append(replay.next_due_ms())
        replay.step(due[-1])
    assert due == [START + 500, START + 1000, START + 1500, START + 2000]
    real_time = CsvReplay(path, start_ms=START, speed=1)
    assert real_time.next_due_ms() == START + 3_600_000
    real_time.close()


def test_rebase_shifts_every_timestamp(tmp_path: Path) -> None:
    path = write_csv(tmp_path, *(row(h + 1, h) for h in range(3)))
    target = 1_750_000_000_000 - 1_750_000_000_000 % 3_600_000
    replay = CsvReplay(path, start_ms=START, rebase_to_ms=target)
    assert sorted({r.ts for r in drain(replay)}) == [target, target + 3_600_000, target + 7_200_000]


def test_rebase_to_an_end_makes_the_data_the_recent_past(tmp_path: Path) -> None:
    """--rebase-now: the last row (of those selected) ends at the given hour, so a replay of
    hours a second never lies in the future of the clock it started on."""
    lines = [
        row(i + 1, h, day=d) for i, (d, h) in enumerate((d, h) for d in (1, 2) for h in (0, 5))
    ]
    lines.append('9,2013,3,2,3,bad,20,5,30,500,60,5.0,1015,-5.0,0,"N",2.0,"Test"')  # skipped
    path = write_csv(tmp_path, *lines, row(10, 9, day=3))
    end = 1_750_000_000_000 - 1_750_000_000_000 % 3_600_000
    replay = CsvReplay(path, start_ms=START, date_to="2013-03-02", rebase_end_ms=end)
    stamps = sorted({r.ts for r in drain(replay)})
    assert stamps[-1] + 3_600_000 == end
    assert stamps == [end - 3_600_000 - (local_hour_to_utc_ms(2013, 3, 2, 5) - t) for t in (
        local_hour_to_utc_ms(2013, 3, 1, 0), local_hour_to_utc_ms(2013, 3, 1, 5),
        local_hour_to_utc_ms(2013, 3, 2, 0), local_hour_to_utc_ms(2013, 3, 2, 5),
    )]  # fmt: skip
    assert replay.counts.rows_skipped == 1  # counted once, not again by the second pass
    with pytest.raises(ValueError, match="exclusive"):
        CsvReplay(path, start_ms=START, rebase_to_ms=end, rebase_end_ms=end)


def test_date_filter_is_inclusive_in_local_days(tmp_path: Path) -> None:
    lines = [
        row(i + 1, h, day=d) for i, (d, h) in enumerate((d, h) for d in (1, 2, 3) for h in (0, 23))
    ]
    path = write_csv(tmp_path, *lines)
    replay = CsvReplay(path, start_ms=START, date_from=date(2013, 3, 2), date_to="2013-03-02")
    readings = drain(replay)
    assert sorted({r.ts for r in readings}) == [
        local_hour_to_utc_ms(2013, 3, 2, 0),
        local_hour_to_utc_ms(2013, 3, 2, 23),
    ]
    assert replay.counts.rows_filtered == 2
    # The schedule starts at the first selected row, not the first row of the file.
    replay = CsvReplay(path, start_ms=START, date_from="2013-03-02")
    assert replay.next_due_ms() == START + 1000
    replay.close()


# -- the real file -------------------------------------------------------------------------------


@needs_data
def test_the_whole_real_file_replays_without_a_skip() -> None:
    replay = CsvReplay(AOTI, start_ms=START, speed=10**9)
    total = 0
    while not replay.exhausted:
        total += len(replay.step(replay.next_due_ms()))
    counts = replay.counts
    assert counts.rows_emitted == 35_064
    assert counts.rows_skipped == 0
    assert counts.missing["pm2_5"] == 925  # as ../shared/data/README.md says
    assert total == counts.readings_emitted == 35_064 * 9 - counts.values_missing
    (health,) = replay.health()
    assert health.state == "ok"


@needs_data
def test_real_first_row_through_the_producer() -> None:
    replay = CsvReplay(AOTI, start_ms=START, date_to="2013-03-01")
    readings = replay.step(START + 1000)
    replay.close()
    by_quantity = {r.quantity: r for r in readings}
    assert by_quantity["co"].value == pytest.approx(0.3)
    assert by_quantity["co"].unit == "mg/m3"
    assert by_quantity["pm2_5"].ts == int(datetime(2013, 2, 28, 16, tzinfo=UTC).timestamp() * 1000)
    assert set(by_quantity) == {
        "pm2_5",
        "pm10",
        "so2",
        "no2",
        "co",
        "o3",
        "air_temp",
        "pressure",
        "rh",
    }


@needs_data
def test_the_march_2013_haze_is_in_the_data() -> None:
    replay = CsvReplay(AOTI, start_ms=START, date_from="2013-03-05", date_to="2013-03-08")
    readings = drain(replay)
    assert replay.counts.rows_emitted == 96
    pm = [r.value for r in readings if r.quantity == "pm2_5"]
    assert max(pm) > 300.0
    assert all(
        local_hour_to_utc_ms(2013, 3, 5, 0) <= r.ts <= local_hour_to_utc_ms(2013, 3, 8, 23)
        for r in readings
    )


@pytest.mark.parametrize(
    ("date_from", "date_to"),
    [(None, None), ("2013-03-02", None), (None, "2013-03-02"), ("2013-03-02", "2013-03-02"),
     ("2013-03-05", None)],
)  # fmt: skip
def test_planned_rows_are_the_rows_the_replay_emits(
    tmp_path: Path, date_from: str | None, date_to: str | None
) -> None:
    lines = [row(i + 1, h, day=d) for i, (d, h) in enumerate((d, h) for d in (1, 2, 3)
                                                              for h in (0, 5, 23))]  # fmt: skip
    lines.insert(2, "garbage")  # skipped: not planned
    lines.insert(5, row(99, 0, day=1))  # out of order: skipped, not planned
    path = write_csv(tmp_path, *lines)
    replay = CsvReplay(path, start_ms=START, date_from=date_from, date_to=date_to)
    planned = replay.planned_rows()
    drain(replay)
    assert planned == replay.counts.rows_emitted
    assert replay.counts.rows_skipped == 2  # the second pass counts nothing

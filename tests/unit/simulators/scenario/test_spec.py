"""The scenario file format: the issue's example parses, and each kind of mistake is a clear
ScenarioFileError naming the field, never a traceback."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.scenario.spec import ScenarioFileError, load_scenario, parse_scenario

# The example of issue 12, verbatim (data/issue12_example.toml): the contract others write
# files against.
ISSUE_EXAMPLE = (Path(__file__).parent / "data" / "issue12_example.toml").read_text(
    encoding="utf-8"
)

SOURCE = Path("/scenarios/wwtp.toml")


def test_the_issue_example_parses_with_every_key_meaning_what_it_says() -> None:
    spec = parse_scenario(ISSUE_EXAMPLE, SOURCE)
    assert spec.header.name == "wwtp-h2s-release"
    assert (spec.header.seed, spec.header.accel, spec.header.duration_s) == (7, 600, 14400)
    assert spec.header.start == datetime(2026, 5, 31, 16, tzinfo=UTC)
    assert spec.header.start.utcoffset() == timedelta(hours=8)
    (node,) = spec.nodes
    assert (node.id, node.kind, node.zone) == ("sz-wwtp-odour", "odour", "plant-boundary-II")
    (replay,) = spec.replays
    assert spec.csv_path(replay) == Path("/scenarios/data/PRSA_Data_X.csv")
    assert (replay.first_day, replay.last_day) == (date(2013, 3, 1), date(2013, 3, 31))
    (event,) = spec.events
    assert (event.kind, event.quantity, event.at_s, event.duration_s, event.value) == (
        "step", "h2s", 1800, 3600, 250.0
    )  # fmt: skip
    (expect,) = spec.expects
    assert (expect.rule, expect.event, expect.within_s) == ("odour.h2s", "fired", (1800, 3000))
    assert (expect.count, expect.lane) == (1, "live")
    assert spec.node_ids == ("sz-wwtp-odour", "bj-x")


def test_start_is_optional_and_a_spike_lasts_one_report_by_default() -> None:
    text = (
        ISSUE_EXAMPLE.replace('start = "2026-06-01T00:00:00+08:00"', "")
        .replace('kind = "step"', 'kind = "spike"')
        .replace("duration_s = 3600\n", "")
    )
    spec = parse_scenario(text, SOURCE)
    assert spec.header.start is None
    assert spec.event_duration_s(spec.events[0]) == spec.header.report_interval_s == 60
    assert spec.sample_interval_s == 60.0


def test_a_toml_datetime_is_accepted_as_well_as_a_string() -> None:
    text = ISSUE_EXAMPLE.replace('"2026-06-01T00:00:00+08:00"', "2026-06-01T00:00:00+08:00")
    start = parse_scenario(text, SOURCE).header.start
    assert start == datetime(2026, 6, 1, tzinfo=timezone(timedelta(hours=8)))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('kind = "step"', 'kind = "stpe"'), "$.event[0].kind"),
        (("value = 250.0", ""), "a step event needs value"),
        (('quantity = "h2s"', 'quantity = "h2z"'), "$.event[0].quantity"),
        (('event = "fired"', 'event = "fire"'), "$.expect[0].event"),
        (('lane = "live"', 'lane = "now"'), "$.expect[0].lane"),
        (("within_s = [1800, 3000]", "within_s = [3000, 1800]"), "within_s must be"),
        (("accel = 600", "accel = 0"), "$.scenario.accel"),
        (("accel = 600", ""), "accel"),
        (('"2026-06-01T00:00:00+08:00"', '"2026-06-01T00:00:00"'), "UTC offset"),
        (('"2026-06-01T00:00:00+08:00"', '"June"'), "$.scenario.start"),
        (('to = "2013-03-31"', 'to = "2013-02-01"'), "is after to"),
        (("seed = 7", "seed = 7\ncolour = 1"), "colour"),
        (('node = "sz-wwtp-odour"\nrule', 'node = "sz-wwtp-0dour"\nrule'), "not a [[node]] or"),
        (('node = "sz-wwtp-odour"\nquantity', 'node = "bj-x"\nquantity'), "is not a [[node]]"),
        (('node = "bj-x"', 'node = "sz-wwtp-odour"'), "declared twice"),
        (("count = 1", "count = -1"), "$.expect[0].count"),
        (('rule = "odour.h2s"', 'rule = "Odour H2S"'), "$.expect[0].rule"),
        (("[scenario]", "[scenari]"), "scenario"),
        (("duration_s = 14400", "duration_s = 14400\nduration_s = 1"), "not valid TOML"),
    ],
)
def test_each_mistake_is_named(change: tuple[str, str], message: str) -> None:
    old, new = change
    assert old in ISSUE_EXAMPLE
    with pytest.raises(ScenarioFileError) as info:
        parse_scenario(ISSUE_EXAMPLE.replace(old, new, 1), SOURCE)
    assert message in str(info.value)
    assert str(SOURCE) in str(info.value)


def test_kind_keys_offline_takes_no_quantity_and_stuck_needs_one() -> None:
    offline = ISSUE_EXAMPLE.replace('kind = "step"', 'kind = "offline"')
    with pytest.raises(ScenarioFileError, match="offline event takes no quantity"):
        parse_scenario(offline, SOURCE)
    stuck = ISSUE_EXAMPLE.replace('kind = "step"', 'kind = "stuck"').replace(
        'quantity = "h2s"\n', ""
    )
    with pytest.raises(ScenarioFileError, match="stuck event needs quantity"):
        parse_scenario(stuck, SOURCE)


def test_a_scenario_with_no_nodes_is_refused() -> None:
    with pytest.raises(ScenarioFileError, match="nothing to play"):
        parse_scenario('[scenario]\nname = "x"\naccel = 1\nduration_s = 60\n', SOURCE)


def test_a_missing_or_undecodable_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioFileError, match="cannot read"):
        load_scenario(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe[scenario]")
    with pytest.raises(ScenarioFileError, match="cannot read"):
        load_scenario(bad)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_any_text_is_a_scenario_or_a_scenario_error(text: str) -> None:
    with contextlib.suppress(ScenarioFileError):
        parse_scenario(text, SOURCE)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=len(ISSUE_EXAMPLE) - 1),
    st.integers(min_value=1, max_value=30),
    st.text(max_size=30),
)
def test_a_damaged_example_is_a_scenario_or_a_scenario_error(at: int, cut: int, junk: str) -> None:
    with contextlib.suppress(ScenarioFileError):
        parse_scenario(ISSUE_EXAMPLE[:at] + junk + ISSUE_EXAMPLE[at + cut :], SOURCE)

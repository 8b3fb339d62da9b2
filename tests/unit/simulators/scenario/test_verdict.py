"""Judging observed alert events against expectations, and the diff a tester reads."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from simulators.scenario.results import RunFacts, junit_xml, result_document
from simulators.scenario.spec import ExpectEntry
from simulators.scenario.verdict import Observed, judge, render_diff

H2S = "odour.h2s"
NODE = "sz-wwtp-odour"


def fired(at_s: float, lane: str = "live", rule: str = H2S, node: str = NODE) -> Observed:
    return Observed(node, rule, "fired", at_s, lane, value=250.0)  # type: ignore[arg-type]


def resolved(at_s: float, rule: str = H2S) -> Observed:
    return Observed(NODE, rule, "resolved", at_s, "live")


def expect(**keys: object) -> ExpectEntry:
    return msgspec.convert({"node": NODE, "rule": H2S, "event": "fired", **keys}, ExpectEntry)


def test_a_fired_event_inside_the_window_holds() -> None:
    verdict = judge([expect(within_s=[1800, 3000], count=1, lane="live")], [fired(2100)], False)
    assert verdict.holds
    assert verdict.outcomes[0].reason == "fired at 2100 s"


def test_outside_the_window_wrong_lane_or_wrong_count_fails() -> None:
    window = expect(within_s=[1800, 3000])
    assert not judge([window], [fired(3001)], False).holds
    assert not judge([expect(lane="live")], [fired(2100, lane="late")], False).holds
    assert not judge([expect(count=1)], [fired(2100), fired(9000)], False).holds
    assert judge([expect(count=2)], [fired(2100), fired(9000)], False).holds
    assert not judge([expect(suspect=True)], [fired(2100)], False).holds


def test_count_zero_and_none_assert_absence() -> None:
    assert judge([expect(event="none")], [resolved(10)], False).holds
    assert not judge([expect(event="none")], [fired(10)], False).holds
    assert judge([expect(event="none", within_s=[0, 5])], [fired(10)], False).holds
    assert not judge([expect(count=0)], [fired(10)], False).holds
    assert judge([expect(count=0)], [], False).holds


def test_a_rule_pattern_names_a_family() -> None:
    silent = Observed(NODE, "liveness.h2s.silent", "fired", 50, "live")
    assert not judge([expect(rule="liveness.*.silent", event="none")], [silent], False).holds
    assert judge([expect(rule="liveness.*.silent")], [silent], False).holds


def test_strict_fails_on_an_event_no_expectation_names() -> None:
    other = fired(100, rule="odour.nh3")
    loose = judge([expect()], [fired(100), other], strict=False)
    strict = judge([expect()], [fired(100), other], strict=True)
    assert loose.holds and loose.unnamed == (other,)
    assert not strict.holds
    # The expectation names the rule for that node, so its resolution is named too.
    assert judge([expect()], [fired(100), resolved(400)], strict=True).holds


def test_the_diff_names_the_false_expectation_and_shows_what_happened() -> None:
    expects = [expect(within_s=[1800, 3000]), expect(event="resolved", within_s=[100, 200])]
    observed = [fired(2100), resolved(5400)]
    text = render_diff("wwtp", judge(expects, observed, False), observed)
    assert "1 of 2 expectations hold: FAILED" in text
    assert "✓ [1] sz-wwtp-odour odour.h2s fired within [1800, 3000] s" in text
    assert "✗ [2] sz-wwtp-odour odour.h2s resolved within [100, 200] s" in text
    assert "- expected: sz-wwtp-odour odour.h2s resolved within [100, 200] s" in text
    assert "+ observed: sz-wwtp-odour odour.h2s resolved at 5400 s (live)" in text


def test_junit_has_one_case_per_expectation_and_the_failure_message() -> None:
    expects = [expect(within_s=[1800, 3000]), expect(event="resolved", within_s=[100, 200])]
    verdict = judge(expects, [fired(2100)], strict=True)
    facts = RunFacts("wwtp", "wwtp.toml", 12.5, 0, 100)
    suite = ET.fromstring(junit_xml(facts, verdict))
    cases = suite.findall("testcase")
    assert [c.get("name", "").split(" ")[0] for c in cases] == ["[1]", "[2]", "strict:"]
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "0")
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None and "no resolved event in [100, 200] s" in failure.get("message", "")


def test_a_run_error_is_a_junit_error_and_fails_the_json() -> None:
    verdict = judge([expect()], [], False)
    facts = RunFacts("wwtp", "wwtp.toml", 1.0, 0, 0, error="influxd did not start")
    suite = ET.fromstring(junit_xml(facts, verdict))
    assert suite.get("errors") == "1"
    document = msgspec.json.decode(result_document(facts, verdict, []))
    assert document["passed"] is False and document["error"] == "influxd did not start"
    assert document["expectations"][0]["expect"]["rule"] == H2S


times = st.floats(min_value=0, max_value=1e6, allow_nan=False)


@given(st.lists(times, max_size=20), times, times)
def test_a_fired_expectation_holds_exactly_when_an_event_lies_in_its_window(
    ats: list[float], a: float, b: float
) -> None:
    low, high = min(a, b), max(a, b)
    verdict = judge([expect(within_s=[low, high])], [fired(t) for t in ats], False)
    assert verdict.holds == any(low <= t <= high for t in ats)
    none = judge([expect(event="none", within_s=[low, high])], [fired(t) for t in ats], False)
    assert none.holds != verdict.holds

"""A scenario run's verdict as JUnit XML (one test case per expectation) and as JSON. Pure."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from simulators.scenario.verdict import Observed, Verdict, describe_expect

STRICT_CASE = "strict: every alert event is named by an expectation"


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What the run did, beside the verdict: for the reports."""

    name: str
    source: str
    wall_s: float
    origin_ms: int
    readings_stored: int
    error: str | None = None


def junit_xml(facts: RunFacts, verdict: Verdict) -> bytes:
    cases = list(verdict.outcomes)
    failures = sum(not o.holds for o in cases) + (1 if verdict.strict and verdict.unnamed else 0)
    errors = 1 if facts.error else 0
    suite = ET.Element(
        "testsuite",
        name=f"scenario.{facts.name}",
        tests=str(len(cases) + (1 if verdict.strict else 0) + errors),
        failures=str(failures),
        errors=str(errors),
        time=f"{facts.wall_s:.3f}",
    )
    classname = f"scenario.{facts.name}"
    if facts.error:
        case = ET.SubElement(suite, "testcase", classname=classname, name="run")
        ET.SubElement(case, "error", message=facts.error[:500]).text = facts.error
    for outcome in cases:
        case = ET.SubElement(suite, "testcase", classname=classname, name=outcome.name)
        if not outcome.holds:
            failure = ET.SubElement(case, "failure", message=outcome.reason)
            failure.text = "\n".join(
                [f"expected: {describe_expect(outcome.expect)}"]
                + [f"observed: {o.describe()}" for o in outcome.matched]
            )
    if verdict.strict:
        case = ET.SubElement(suite, "testcase", classname=classname, name=STRICT_CASE)
        if verdict.unnamed:
            failure = ET.SubElement(
                case, "failure", message=f"{len(verdict.unnamed)} events no expectation names"
            )
            failure.text = "\n".join(o.describe() for o in verdict.unnamed)
    ET.indent(suite)
    text: bytes = ET.tostring(suite, encoding="utf-8", xml_declaration=True)
    return text


def result_document(facts: RunFacts, verdict: Verdict, observed: Sequence[Observed]) -> bytes:
    """The `--json` result: the verdict, every expectation with its outcome, every event."""
    document: dict[str, Any] = {
        "scenario": facts.name,
        "source": facts.source,
        "passed": verdict.holds and facts.error is None,
        "strict": verdict.strict,
        "error": facts.error,
        "wall_s": round(facts.wall_s, 3),
        "origin_ms": facts.origin_ms,
        "readings_stored": facts.readings_stored,
        "expectations": [
            {
                "index": o.index,
                "expect": msgspec.to_builtins(o.expect),
                "holds": o.holds,
                "reason": o.reason,
                "matched": [_event(e) for e in o.matched],
            }
            for o in verdict.outcomes
        ],
        "unnamed": [_event(e) for e in verdict.unnamed],
        "events": [_event(e) for e in observed],
    }
    return msgspec.json.encode(document)


def _event(event: Observed) -> dict[str, Any]:
    return {
        "node": event.node,
        "rule": event.rule,
        "event": event.event,
        "at_s": event.at_s,
        "lane": event.lane,
        "suspect": event.suspect,
        "value": event.value,
    }

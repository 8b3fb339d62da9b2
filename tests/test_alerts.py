"""Alert state: one alert per (node, rule), fired and resolved by observations in event time."""

from __future__ import annotations

from aggregator.alerts import AlertBook
from aggregator.fleet import NodeInfo
from aggregator.rules import Observation, Rule

RULE = Rule("odour.h2s", "exceedance", "warning", "h2s", "GB 14554-93", "Table 1", 60)
INFO = NodeInfo(site="Plant", node="n1")


def obs(exceeded: bool, at_ms: int, late: bool = False) -> Observation:
    return Observation(RULE, "n1", exceeded, 80.0 if exceeded else 10.0, 60.0, at_ms, late, "m")


def test_fire_once_then_resolve() -> None:
    book = AlertBook()
    fired = book.apply(obs(True, 1000), INFO)
    assert fired is not None and fired.event == "fired"
    assert fired.alert.since_ms == 1000 and fired.alert.site == "Plant"
    assert book.apply(obs(True, 2000), INFO) is None  # still firing: no duplicate
    assert len(book.firing()) == 1
    resolved = book.apply(obs(False, 3000), INFO)
    assert resolved is not None and resolved.event == "resolved"
    assert resolved.alert.since_ms == 1000 and resolved.alert.updated_ms == 3000
    assert book.firing() == []


def test_quiet_observations_create_nothing() -> None:
    book = AlertBook()
    assert book.apply(obs(False, 1000), INFO) is None
    assert book.firing() == []


def test_older_observations_cannot_flip_state_backwards() -> None:
    book = AlertBook()
    book.apply(obs(True, 5000), INFO)
    assert book.apply(obs(False, 4000), INFO) is None
    assert len(book.firing()) == 1


def test_late_is_recorded_on_the_alert() -> None:
    book = AlertBook()
    fired = book.apply(obs(True, 1000, late=True), INFO)
    assert fired is not None and fired.alert.late

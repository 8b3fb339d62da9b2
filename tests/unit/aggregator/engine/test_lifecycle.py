"""The alert lifecycle: pending, firing, resolved; hysteresis; late lane; re-notification; ack."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.engine.lifecycle import (
    AckRefusedError,
    AlertBook,
    LifecyclePolicy,
    PolicyTable,
    Transition,
)
from aggregator.engine.observations import Observation, Rule
from aggregator.fleet import NodeInfo

RULE = Rule("odour.h2s", "exceedance", "warning", "h2s", "GB 14554-93", "Table 1", 60)
INFO = NodeInfo(site="Plant", node="n1")
MIN = 60_000
NOW = 1_800_000_000_000


def obs(
    value: float,
    at_ms: int,
    late: bool = False,
    suspect: bool = False,
    limit: float = 60.0,
    clear: float = 54.0,
) -> Observation:
    return Observation(
        RULE,
        "n1",
        exceeded=value > limit,
        value=value,
        limit=limit,
        at_ms=at_ms,
        late=late,
        message="m",
        cleared=value <= clear,
        suspect=suspect,
    )


def book(pending_s: int = 0, clear_s: int = 0, renotify_s: int = 0) -> AlertBook:
    return AlertBook(PolicyTable(LifecyclePolicy(pending_s, clear_s, renotify_s), {}))


def events(transitions: list[Transition | None]) -> list[str]:
    return [t.event for t in transitions if t is not None]


def test_fire_once_then_resolve() -> None:
    b = book()
    fired = b.apply(obs(80, 1000), INFO, NOW)
    assert fired is not None and fired.event == "fired" and fired.pages
    assert fired.alert.since_ms == 1000 and fired.alert.site == "Plant"
    assert b.apply(obs(90, 2000), INFO, NOW) is None  # still firing: no duplicate
    assert len(b.firing()) == 1 and b.firing()[0].value == 90
    resolved = b.apply(obs(10, 3000), INFO, NOW)
    assert resolved is not None and resolved.event == "resolved" and not resolved.pages
    assert resolved.alert.since_ms == 1000 and resolved.alert.updated_ms == 3000
    assert b.firing() == []


def test_quiet_observations_keep_no_state() -> None:
    b = book()
    assert b.apply(obs(10, 1000), INFO, NOW) is None
    assert b.firing() == [] and b.take_dirty() == {}


def test_pending_until_the_exceedance_lasts() -> None:
    b = book(pending_s=300)
    assert b.apply(obs(80, 0), INFO, NOW) is None
    assert b.apply(obs(80, 4 * MIN), INFO, NOW) is None
    fired = b.apply(obs(80, 5 * MIN), INFO, NOW)
    assert fired is not None and fired.alert.since_ms == 0  # since the exceedance began


def test_a_short_exceedance_never_fires() -> None:
    b = book(pending_s=300)
    seen = [b.apply(obs(v, i * MIN), INFO, NOW) for i, v in enumerate([80, 80, 10, 80, 80])]
    assert events(seen) == []


def test_value_hovering_at_the_limit_does_not_flap() -> None:
    # Oscillates 57..63 around the limit 60; the clear level is 54.
    b = book()
    values = [63, 57, 62, 58, 61, 59, 63, 57] * 5
    seen = [b.apply(obs(v, i * MIN), INFO, NOW) for i, v in enumerate(values)]
    assert events(seen) == ["fired"]
    assert events([b.apply(obs(50, len(values) * MIN), INFO, NOW)]) == ["resolved"]


def test_clear_time_must_be_continuous() -> None:
    b = book(clear_s=600)
    b.apply(obs(80, 0), INFO, NOW)
    assert b.apply(obs(10, 1 * MIN), INFO, NOW) is None
    assert b.apply(obs(57, 6 * MIN), INFO, NOW) is None  # back in the band: clock restarts
    assert b.apply(obs(10, 7 * MIN), INFO, NOW) is None
    assert b.apply(obs(10, 16 * MIN), INFO, NOW) is None
    assert events([b.apply(obs(10, 17 * MIN), INFO, NOW)]) == ["resolved"]


def test_late_observations_use_their_own_lane() -> None:
    b = book()
    live = b.apply(obs(80, 10 * MIN), INFO, NOW)
    assert live is not None and live.retained
    # A backlog from before: recorded as late alerts, live state untouched.
    late = b.apply(obs(90, 2 * MIN, late=True), INFO, NOW)
    assert late is not None and late.event == "fired" and late.alert.late
    assert not late.pages and not late.retained
    late_end = b.apply(obs(10, 3 * MIN, late=True), INFO, NOW)
    assert late_end is not None and late_end.event == "resolved" and late_end.alert.late
    assert [a.value for a in b.firing()] == [80]


def test_out_of_order_observation_is_late_even_unflagged() -> None:
    b = book()
    b.apply(obs(80, 10 * MIN), INFO, NOW)
    t = b.apply(obs(10, 5 * MIN), INFO, NOW)  # older than the live state: cannot resolve it
    assert t is None and len(b.firing()) == 1


def test_wall_time_never_closes_a_late_episode() -> None:
    b = book()
    b.apply(obs(80, 2 * MIN, late=True), INFO, NOW)
    assert b.tick(NOW + 900_000) == [] and b.tick(NOW + 10 * 86_400_000) == []


def test_a_late_episode_closes_where_its_data_ended_when_the_node_says_so() -> None:
    b = book()
    b.apply(obs(80, 2 * MIN, late=True), INFO, NOW)
    b.apply(obs(85, 3 * MIN, late=True), INFO, NOW)
    (closed,) = b.close_late("n1", "backlog ended")
    assert closed.event == "resolved" and closed.alert.late and closed.at_ms == 3 * MIN
    assert closed.alert.message.startswith("backlog ended while exceeding")
    assert b.close_late("n1", "backlog ended") == []  # closed once
    assert b.close_late("other", "x") == []


def test_a_second_pass_over_the_same_late_data_does_not_reopen_it() -> None:
    b = book()
    first = [b.apply(obs(v, m * MIN, late=True), INFO, NOW) for m, v in [(2, 80), (3, 85)]]
    assert events(first) == ["fired"]
    assert events(list(b.close_late("n1", "node n1 went offline"))) == ["resolved"]
    # The same replay again, days later on the wall clock: nothing new is recorded.
    later = NOW + 5 * 86_400_000
    again = [b.apply(obs(v, m * MIN, late=True), INFO, later) for m, v in [(2, 80), (3, 85)]]
    assert events(again) == []
    # Data beyond what was recorded is a new episode.
    assert events([b.apply(obs(90, 4 * MIN, late=True), INFO, later)]) == ["fired"]


def test_a_late_episode_left_behind_by_its_node_clock_expires() -> None:
    b = book()
    b.apply(obs(80, 2 * MIN, late=True), INFO, NOW)
    horizon = 48 * 3_600_000
    assert b.expire_late({"n1": 2 * MIN + horizon}, horizon) == []
    (closed,) = b.expire_late({"n1": 2 * MIN + horizon + 1}, horizon)
    assert closed.at_ms == 2 * MIN and "late data ended" in closed.alert.message
    assert b.expire_late({"n1": 10 * horizon}, horizon) == []


def test_a_pending_late_episode_closes_silently() -> None:
    b = book(pending_s=600)
    b.apply(obs(80, 2 * MIN, late=True), INFO, NOW)
    assert b.close_late("n1", "backlog ended") == []
    assert b.take_dirty()


def test_renotify_until_acknowledged() -> None:
    b = book(renotify_s=3600)
    b.apply(obs(80, 0), INFO, NOW)
    assert b.tick(NOW + 3_599_000) == []
    again = b.tick(NOW + 3_600_000)
    assert events(list(again)) == ["renotified"] and again[0].pages
    assert b.tick(NOW + 3_700_000) == []
    acked = b.acknowledge("n1", RULE.id, "Li Wei", "on it", NOW + 3_800_000)
    assert acked.event == "acknowledged" and acked.alert.acked_by == "Li Wei"
    assert b.tick(NOW + 10 * 3_600_000) == []
    # Later observations keep the acknowledgement...
    b.apply(obs(85, MIN), INFO, NOW)
    assert b.firing()[0].acked_by == "Li Wei"
    # ...until the alert resolves; the next exceedance is a new, unacknowledged alert.
    b.apply(obs(10, 2 * MIN), INFO, NOW)
    refired = b.apply(obs(80, 3 * MIN), INFO, NOW)
    assert refired is not None and refired.alert.acked_by is None


def test_ack_of_a_quiet_alert_is_refused() -> None:
    b = book()
    with pytest.raises(AckRefusedError, match="no firing alert"):
        b.acknowledge("n1", RULE.id, "op", None, NOW)
    b.apply(obs(80, 0), INFO, NOW)
    b.apply(obs(10, MIN), INFO, NOW)
    with pytest.raises(AckRefusedError):
        b.acknowledge("n1", RULE.id, "op", None, NOW)


def test_suspect_alert_does_not_page_until_confirmed() -> None:
    b = book(renotify_s=60)
    fired = b.apply(obs(80, 0, suspect=True), INFO, NOW)
    assert fired is not None and fired.alert.suspect and not fired.pages
    assert b.tick(NOW + 600_000) == []  # suspect alerts are not re-notified either
    confirmed = b.apply(obs(80, MIN), INFO, NOW + 1)
    assert confirmed is not None and confirmed.event == "renotified" and confirmed.pages


def test_policy_by_longest_prefix() -> None:
    table = PolicyTable(
        LifecyclePolicy(1, 2, 3),
        {"odour": LifecyclePolicy(pending_s=300), "odour.h2s": LifecyclePolicy(pending_s=60)},
    )
    assert table.for_rule("odour.h2s").pending_s == 60
    assert table.for_rule("odour.nh3").pending_s == 300
    assert table.for_rule("odourx.h2s").pending_s == 1  # whole segments only
    assert table.for_rule("air.so2.1h") == LifecyclePolicy(1, 2, 3)


def test_saved_tracks_reload_with_open_alerts_pending() -> None:
    # What the state store saves (take_dirty) and loads (load) keeps a pending alert's clock.
    b = book(pending_s=120)
    b.apply(obs(80, 0), INFO, NOW)  # pending
    other = book(pending_s=120)
    for key, (live, late) in b.take_dirty().items():
        other.load(key, live, late)
    fired = other.apply(obs(80, 2 * MIN), INFO, NOW)
    assert fired is not None and fired.alert.since_ms == 0


def test_dirty_keys_are_reported_once() -> None:
    b = book()
    b.apply(obs(80, 0), INFO, NOW)
    dirty = b.take_dirty()
    assert list(dirty) == [("n1", RULE.id)]
    live, late = dirty[("n1", RULE.id)]
    assert live is not None and live.state == "firing" and late is None
    assert b.take_dirty() == {}


@given(st.lists(st.floats(min_value=0, max_value=120), min_size=1, max_size=60))
def test_transitions_alternate_and_match_open_state(values: list[float]) -> None:
    b = book(pending_s=120, clear_s=60)
    seen = events([b.apply(obs(v, i * MIN), INFO, NOW) for i, v in enumerate(values)])
    # Exactly one open alert at a time: fired and resolved strictly alternate.
    assert seen == ["fired", "resolved"] * (len(seen) // 2) + ["fired"] * (len(seen) % 2)
    assert len(b.firing()) == len(seen) % 2

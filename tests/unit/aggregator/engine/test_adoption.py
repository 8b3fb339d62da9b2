"""Adopting open alerts from the stored `alerts` events (aggregator.engine.adoption): which
tracks a replica without the old owner's state file rebuilds, and that a rebuilt track then
behaves as the old owner's would have (no second fire, a normal resolution)."""

from __future__ import annotations

import random

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.engine.adoption import StoredEvent, plan_adoption
from aggregator.engine.lifecycle import AlertBook, LifecyclePolicy, PolicyTable, Track, Transition
from aggregator.engine.observations import Observation, Rule
from aggregator.fleet import NodeInfo
from schemas.messages import Location

RULE = Rule("aqi.hour", "aqi", "warning", "pm2_5", "HJ 633-2012", "5.1", 3600)
INFO = NodeInfo(site="Suzhou SIP", node="n1", location=Location(lat=31.3, lon=120.7))
HOUR = 3_600_000
T0 = 1_800_000_000_000
NOW = T0 + 100 * HOUR


def obs(value: float, at_ms: int, late: bool = False) -> Observation:
    return Observation(
        RULE, "n1", exceeded=value > 100, value=value, limit=100.0, at_ms=at_ms, late=late,
        message=f"AQI {value}", cleared=value <= 90,
    )  # fmt: skip


def book(pending_s: int = 0, clear_s: int = 0) -> AlertBook:
    return AlertBook(PolicyTable(LifecyclePolicy(pending_s, clear_s, 0), {}))


def stored(t: Transition) -> StoredEvent:
    """What InfluxDB gives back of a transition (aggregator.storage.records.alert_line): no
    location, acknowledgement time or note; updated_ms is the point's time."""
    alert = msgspec.structs.replace(
        t.alert, location=None, acked_ms=None, ack_note=None, updated_ms=t.at_ms
    )
    return StoredEvent(t.event, t.at_ms, alert)


def lookup(node: str) -> NodeInfo | None:
    return INFO if node == "n1" else None


def run(b: AlertBook, values: list[tuple[float, int]], wall: int = NOW) -> list[StoredEvent]:
    out = []
    for value, at in values:
        t = b.apply(obs(value, at), INFO, wall)
        if t is not None:
            out.append(stored(t))
    return out


KEY = ("n1", "aqi.hour")


def test_an_open_alert_is_adopted_and_neither_fires_again_nor_stays_open() -> None:
    old = book()
    events = run(old, [(200, T0), (210, T0 + HOUR)])
    assert [e.event for e in events] == ["fired"]
    plan = plan_adoption(events, {}, lookup, NOW)
    assert set(plan.adopted) == {KEY} and not plan.superseded
    track = plan.adopted[KEY]
    assert track.state == "firing" and track.alert is not None
    assert track.alert.since_ms == T0 and track.alert.location == INFO.location
    new = book()
    new.install(KEY, track)
    assert set(new.take_dirty()) == {KEY}  # saved to the state file at once
    assert new.apply(obs(220, T0 + 2 * HOUR), INFO, NOW) is None  # no second fire
    resolved = new.apply(obs(30, T0 + 3 * HOUR), INFO, NOW)
    assert resolved is not None and resolved.event == "resolved"
    assert resolved.alert.since_ms == T0  # the same episode the old owner fired


def test_the_clear_time_runs_again_on_the_new_owner() -> None:
    events = run(book(clear_s=7200), [(200, T0)])
    new = book(clear_s=7200)
    new.install(KEY, plan_adoption(events, {}, lookup, NOW).adopted[KEY])
    assert new.apply(obs(30, T0 + HOUR), INFO, NOW) is None
    assert new.apply(obs(30, T0 + 2 * HOUR), INFO, NOW) is None
    resolved = new.apply(obs(30, T0 + 3 * HOUR), INFO, NOW)
    assert resolved is not None and resolved.event == "resolved"


def test_a_resolved_alert_is_not_adopted() -> None:
    events = run(book(), [(200, T0), (30, T0 + HOUR)])
    assert [e.event for e in events] == ["fired", "resolved"]
    assert plan_adoption(events, {}, lookup, NOW).tracks() == {}


def test_an_acknowledgement_is_kept_with_its_operator_and_time() -> None:
    old = book()
    events = run(old, [(200, T0)])
    events.append(stored(old.acknowledge("n1", "aqi.hour", "ops", "on it", T0 + HOUR)))
    track = plan_adoption(events, {}, lookup, NOW).adopted[KEY]
    assert track.alert is not None
    assert track.alert.acked_by == "ops" and track.alert.acked_ms == T0 + HOUR
    assert track.alert.ack_note is None  # not stored in the point
    new = book()
    new.install(KEY, track)
    assert new.tick(NOW + 100 * HOUR) == []  # acknowledged: never re-notified


def test_an_acknowledgement_stamped_after_the_resolution_does_not_reopen_it() -> None:
    # The operator's ack (wall clock) was heard while the node's clearing readings were
    # still on their way: its time stamp is later than the resolution's event time.
    old = book()
    events = run(old, [(200, T0)])
    ack = stored(old.acknowledge("n1", "aqi.hour", "ops", None, T0 + 2 * HOUR))
    events += run(old, [(30, T0 + HOUR)])
    assert plan_adoption([*events, ack], {}, lookup, NOW).tracks() == {}


def test_an_alert_that_fired_before_the_look_back_is_found_by_its_renotification() -> None:
    old = AlertBook(PolicyTable(LifecyclePolicy(0, 0, 3600), {}))
    fired = run(old, [(200, T0)], wall=T0)
    renotified = [stored(t) for t in old.tick(T0 + 5 * HOUR)]
    assert [e.event for e in renotified] == ["renotified"]
    track = plan_adoption(renotified, {}, lookup, NOW).adopted[KEY]
    assert track.alert is not None and track.alert.since_ms == T0
    assert track.paged_wall_ms == T0 + 5 * HOUR  # the re-notification schedule goes on
    assert fired and track.updated_ms == T0  # no event time known but the episode's start


def test_the_newest_episode_decides_even_if_an_older_one_lost_its_resolution() -> None:
    first = run(book(), [(200, T0)])  # its resolved point was never written
    second = run(book(), [(200, T0 + 5 * HOUR), (30, T0 + 6 * HOUR)])
    assert plan_adoption([*first, *second], {}, lookup, NOW).tracks() == {}


def test_late_points_and_other_replicas_nodes_are_left_alone() -> None:
    late = book()
    t = late.apply(obs(200, T0, late=True), INFO, NOW)
    assert t is not None and t.alert.late
    assert plan_adoption([stored(t)], {}, lookup, NOW).tracks() == {}
    events = run(book(), [(200, T0)])
    assert plan_adoption(events, {}, lambda node: None, NOW).tracks() == {}


def test_a_local_track_that_saw_the_episode_wins() -> None:
    old = book()
    events = run(old, [(200, T0)])
    local = dict(old.live_tracks())
    assert plan_adoption(events, local, lookup, NOW).tracks() == {}
    # A local pending track that has seen data from the episode's start on: kept too.
    pending = book(pending_s=7200)
    run(pending, [(200, T0)])
    assert plan_adoption(events, dict(pending.live_tracks()), lookup, NOW).tracks() == {}


def test_a_local_track_older_than_the_stored_episode_gives_way() -> None:
    # This host owned the node once (resolved here), another host fired it since.
    mine = book()
    run(mine, [(200, T0), (30, T0 + HOUR)])
    events = run(book(), [(200, T0 + 10 * HOUR)])
    plan = plan_adoption(events, dict(mine.live_tracks()), lookup, NOW)
    assert set(plan.adopted) == {KEY}
    adopted = plan.adopted[KEY].alert
    assert adopted is not None and adopted.since_ms == T0 + 10 * HOUR


def test_a_stale_local_firing_track_resolved_elsewhere_is_superseded() -> None:
    mine = book()
    run(mine, [(200, T0)])  # fired here; then the node moved to another host
    other = book()
    other.install(KEY, plan_adoption(run(book(), [(200, T0)]), {}, lookup, NOW).adopted[KEY])
    events = [*run(book(), [(200, T0)]), *run(other, [(30, T0 + 3 * HOUR)])]
    plan = plan_adoption(events, dict(mine.live_tracks()), lookup, NOW)
    assert set(plan.superseded) == {KEY} and not plan.adopted
    track = plan.superseded[KEY]
    assert track.state == "resolved" and track.alert is not None
    assert track.alert.state == "resolved" and track.alert.updated_ms == T0 + 3 * HOUR
    mine.install(KEY, track)
    fired = mine.apply(obs(200, T0 + 4 * HOUR), INFO, NOW)  # a new episode fires here
    assert fired is not None and fired.event == "fired"


# -- properties -----------------------------------------------------------------------------

Step = tuple[str, float]  # ("obs", value) or ("ack", 0)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("obs"), st.sampled_from([30.0, 95.0, 150.0, 200.0])),
        st.tuples(st.just("ack"), st.just(0.0)),
    ),
    max_size=25,
)


def drive(b: AlertBook, plan: list[Step], start: int, out: list[Transition]) -> int:
    """Apply `plan` an hour apart from `start` (event and wall time alike); the next hour."""
    at = start
    for kind, value in plan:
        if kind == "obs":
            t = b.apply(obs(value, at), INFO, at)
            if t is not None:
                out.append(t)
        else:
            track = b.live_tracks().get(KEY)
            if track is not None and track.state == "firing":
                out.append(b.acknowledge("n1", "aqi.hour", "ops", None, at))
        at += HOUR
    return at


@settings(max_examples=200, deadline=None)
@given(before=steps, after=steps, seed=st.integers(0, 2**32 - 1))
def test_an_adopted_track_continues_as_the_old_owners_would(
    before: list[Step], after: list[Step], seed: int
) -> None:
    """Whatever the old owner went through, a replica that adopts from its stored events (in
    any order, as a query may return them) then produces the same transitions as the old
    owner would have on the same readings: no second fire, the same resolution. (Pending
    time 0 and clear time 0: a pending track or a clearance under way is not stored, by
    design, and restarts on the new owner; tested above.)"""
    old = book()
    history: list[Transition] = []
    at = drive(old, before, T0, history)
    events = [stored(t) for t in history]
    random.Random(seed).shuffle(events)
    plan = plan_adoption(events, {}, lookup, at)
    mine = old.live_tracks().get(KEY)
    firing = mine is not None and mine.state == "firing"
    assert set(plan.adopted) == ({KEY} if firing else set())
    new = book()
    for key, track in plan.tracks().items():
        new.install(key, track)
    if firing:
        assert mine is not None and mine.alert is not None
        adopted = plan.adopted[KEY].alert
        assert adopted is not None
        assert adopted.since_ms == mine.alert.since_ms
        assert adopted.acked_by == mine.alert.acked_by
    theirs: list[Transition] = []
    ours: list[Transition] = []
    drive(old, after, at, theirs)
    drive(new, after, at, ours)
    assert [(t.event, t.alert.since_ms, t.at_ms) for t in ours] == [
        (t.event, t.alert.since_ms, t.at_ms) for t in theirs
    ]


@given(
    since=st.lists(st.integers(0, 20), min_size=1, max_size=6),
    closed=st.sets(st.integers(0, 20)),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_decision_does_not_depend_on_the_order_of_the_points(
    since: list[int], closed: set[int], seed: int
) -> None:
    events = []
    for s in since:
        fired = run(book(), [(200, T0 + s * HOUR)])
        events += fired
        if s in closed:
            events += [stored(t) for t in _resolve(fired[0], T0 + (s + 1) * HOUR)]
    shuffled = list(events)
    random.Random(seed).shuffle(shuffled)
    a, b = plan_adoption(events, {}, lookup, NOW), plan_adoption(shuffled, {}, lookup, NOW)
    assert a.adopted == b.adopted
    newest = max(since)
    assert (KEY in a.adopted) == (newest not in closed)


def _resolve(fired: StoredEvent, at_ms: int) -> list[Transition]:
    b = book()
    b.install(KEY, Track(state="firing", alert=fired.alert, updated_ms=fired.at_ms))
    t = b.apply(obs(30, at_ms), INFO, NOW)
    return [] if t is None else [t]

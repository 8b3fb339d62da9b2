"""Windows that no newer reading closes: closed in the node's own clock, by time after the
allowed lateness, or at once when the node says it has sent all it has; each exactly once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aggregator.engine.window_closing import NodeClocks
from aggregator.engine.windows import AIR_DAILY, HOUR_MS, WindowEngine, WindowResult
from schemas.messages import Reading

DAY_MS = 24 * HOUR_MS
# 2013-03-01 00:00 China Standard Time, a local midnight (a replay's clock), and a wall clock.
E0 = 1_362_067_200_000
W0 = 1_796_000_000_000
LATENESS = 300_000


def pm(ts: int, value: float = 50.0, period_s: int = 3600) -> Reading:
    return Reading(
        ts=ts, quantity="pm2_5", value=value, unit="ug/m3", period_s=period_s, stat="mean",
        sensor="ref",
    )  # fmt: skip


def test_a_live_node_s_last_hour_closes_lateness_after_its_end() -> None:
    clocks = NodeClocks(LATENESS)
    # A live node: its reading of [10:00, 11:00) arrives at 11:00:05.
    end = W0 - W0 % HOUR_MS
    clocks.observe("n", end, end + 5_000)
    assert clocks.due(end + 5_000 + LATENESS - 1) == [("n", end - HOUR_MS)]  # nothing new
    assert clocks.due(end + 5_000 + LATENESS) == [("n", end)]
    assert clocks.due(end + 5_000 + LATENESS + HOUR_MS - 1) == []  # claimed once


def test_an_old_replay_is_not_closed_by_the_wall_clock() -> None:
    """Data of 2013 judged in 2026: its clock is carried from its newest reading, so the
    wall clock's thirteen years never close anything."""
    clocks = NodeClocks(LATENESS)
    clocks.observe("replay", E0 + 5 * HOUR_MS, W0)
    assert clocks.node_now_ms("replay", W0 + 60_000) == E0 + 5 * HOUR_MS + 60_000
    ((_, until),) = clocks.due(W0 + 60_000)
    assert until == E0 + 4 * HOUR_MS  # an hour it has already closed by its own readings


def test_the_node_s_word_closes_up_to_its_newest_reading_at_once() -> None:
    clocks = NodeClocks(LATENESS)
    clocks.observe("n", E0 + 48 * HOUR_MS, W0)
    assert clocks.drained("n") == E0 + 48 * HOUR_MS
    assert clocks.drained("n") is None
    assert clocks.drained("unknown") is None


def test_grace_carries_no_clock_over_our_own_outage() -> None:
    clocks = NodeClocks(LATENESS)
    clocks.observe("n", E0, W0)
    clocks.grace(W0 + DAY_MS)
    assert clocks.node_now_ms("n", W0 + DAY_MS + 1000) == E0 + 1000


# -- properties ----------------------------------------------------------------------------

# A node's life: readings in order with gaps (hours), wall ticks between them (seconds), and
# sometimes the node saying it has sent all it has.
Step = tuple[int, int, bool]
steps = st.lists(
    st.tuples(
        st.integers(0, 30),  # hours of the node's clock since its last reading (gap)
        st.integers(0, 4 * 3600),  # wall seconds until the next tick
        st.booleans(),  # the node says it has sent everything (status)
    ),
    min_size=1,
    max_size=40,
)


@given(steps, st.integers(0, 2 * 3600))
def test_closing_by_time_never_closes_a_window_before_its_end_plus_lateness(
    life: list[Step], lateness_s: int
) -> None:
    engine, clocks = WindowEngine(), NodeClocks(lateness_s * 1000)
    key = ("n", "ref", "pm2_5")
    event, wall = E0, W0
    for gap_h, wait_s, _ in life:
        event += gap_h * HOUR_MS
        engine.add(key, pm(event), AIR_DAILY)
        clocks.observe("n", event + HOUR_MS, wall)
        event += HOUR_MS
        wall += wait_s * 1000
        for node, until in clocks.due(wall):
            node_now = clocks.node_now_ms(node, wall)
            assert node_now is not None
            for w in engine.advance_node(node, until):
                assert w.end_ms + lateness_s * 1000 <= node_now


@given(steps, st.lists(st.integers(0, 60), max_size=10))
def test_every_window_is_closed_exactly_once_and_late_data_revises(
    life: list[Step], late_hours_back: list[int]
) -> None:
    engine, clocks = WindowEngine(), NodeClocks(LATENESS)
    key = ("n", "ref", "pm2_5")
    emitted: list[WindowResult] = []
    data_hours: set[int] = set()
    event, wall = E0, W0
    for gap_h, wait_s, drained in life:
        event += gap_h * HOUR_MS
        data_hours.add(event)
        emitted += engine.add(key, pm(event), AIR_DAILY)
        clocks.observe("n", event + HOUR_MS, wall)
        event += HOUR_MS
        wall += wait_s * 1000
        for node, until in clocks.due(wall):
            emitted += engine.advance_node(node, until)
        if drained and (said := clocks.drained("n")) is not None:
            emitted += engine.advance_node("n", said)
    # Readings for windows already closed arrive late: they take the revision path.
    for back in late_hours_back:
        ts = event - (back + 1) * HOUR_MS + 1_800_000
        emitted += engine.add(key, pm(ts, 70.0, 60), AIR_DAILY)
    # The node ends: every window up to its newest reading closes.
    end = clocks.drained("n")
    if end is not None:
        emitted += engine.advance_node("n", end)
    firsts = [(w.kind, w.start_ms) for w in emitted if not w.revision]
    assert len(firsts) == len(set(firsts)), "a window was closed twice"
    closed = set(firsts)
    for w in emitted:
        assert (w.kind, w.start_ms) in closed, "a revision of a window never closed"
    # Every hour and every day with data, up to the node's newest reading, is closed.
    assert all(("1h", h) in closed for h in data_hours)
    days = {(h + 8 * HOUR_MS) // DAY_MS * DAY_MS - 8 * HOUR_MS for h in data_hours}
    assert all(("24h", d) in closed for d in days if d + DAY_MS <= event)

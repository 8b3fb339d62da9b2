"""The aggregator's state file: alert tracks and snapshots survive a reopen."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.engine.lifecycle import AlertBook, LifecyclePolicy, PolicyTable
from aggregator.engine.observations import Observation, Rule
from aggregator.fleet import NodeInfo
from aggregator.worker.state_store import StateStore, StateStoreError

RULE = Rule("odour.h2s", "exceedance", "warning", "h2s", "GB 14554-93", "Table 1", 60)
INFO = NodeInfo(site="Plant", node="n1")
NOW = 1_800_000_000_000
T0 = NOW - 3_600_000  # event times, an hour before the wall clock


def observe(book: AlertBook, value: float, at_ms: int, late: bool = False) -> None:
    obs = Observation(RULE, "n1", value > 60, value, 60, T0 + at_ms, late, "m")
    book.apply(obs, INFO, NOW)


def new_book() -> AlertBook:
    return AlertBook(PolicyTable(LifecyclePolicy(), {}))


def reload(path: Path) -> AlertBook:
    store = StateStore(path)
    book = new_book()
    rows: dict[tuple[str, str], dict[str, object]] = {}
    for key, lane, track in store.load_tracks():
        rows.setdefault(key, {})[lane] = track
    for key, lanes in rows.items():
        book.load(key, lanes.get("live"), lanes.get("late"))  # type: ignore[arg-type]
    store.close()
    return book


def test_open_alert_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    book = new_book()
    observe(book, 80, 1000)
    store = StateStore(path)
    store.save_tracks(book.take_dirty())
    store.close()
    again = reload(path)
    assert [a.since_ms for a in again.firing()] == [T0 + 1000]
    observe(again, 90, 2000)
    assert again.take_dirty()  # still firing, no new transition
    assert len(again.firing()) == 1


def test_a_closed_late_episode_is_kept_closed(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    book = new_book()
    store = StateStore(path)
    observe(book, 80, 5000)
    observe(book, 80, 1000, late=True)
    store.save_tracks(book.take_dirty())
    book.close_late("n1", "backlog ended")  # its data ended while exceeding
    store.save_tracks(book.take_dirty())
    tracks = {lane: track for _, lane, track in store.load_tracks()}
    store.close()
    assert sorted(tracks) == ["late", "live"]
    assert tracks["late"].closed and tracks["late"].state == "resolved"


def test_snapshots_round_trip(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.sqlite")
    assert store.load_snapshot("windows") is None
    store.save_snapshots({"windows": b"abc", "health": b"\x00\x01"}, 42)
    store.save_snapshots({"windows": b"xyz"}, 43)
    assert store.load_snapshot("windows") == (b"xyz", 43)
    assert store.load_snapshot("health") == (b"\x00\x01", 42)
    store.close()


def test_not_a_state_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StateStoreError, match="not a usable envnet state file"):
        StateStore(path)


def test_corrupt_track_row_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    store = StateStore(path)
    store._db.execute(  # a row written by something else
        "INSERT INTO alert_tracks VALUES ('n1', 'r', 'live', x'00ff')"
    )
    with pytest.raises(StateStoreError, match="alert n1/r"):
        list(store.load_tracks())
    store.close()

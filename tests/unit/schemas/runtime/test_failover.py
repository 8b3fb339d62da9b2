"""BrokerRotation: next broker on failure, backoff once a round has failed, home again later."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.runtime.backoff import Backoff
from schemas.runtime.failover import Attempt, BrokerRotation


def _rotation(brokers: int, seed: int = 0, return_home_s: float = 600.0) -> BrokerRotation:
    return BrokerRotation(brokers, Backoff(0.5, 30.0, rng=random.Random(seed)), return_home_s)


# An event the caller can report: a failure, a success, time passing, or going home if due.
_events = st.lists(
    st.one_of(
        st.just("fail"),
        st.just("connect"),
        st.just("home"),
        st.floats(0, 1000, allow_nan=False).map(lambda dt: ("wait", dt)),
    ),
    max_size=200,
)


@given(st.integers(1, 6), st.integers(0, 2**32), _events)
def test_any_sequence_stays_in_range_and_never_waits_past_the_cap(
    brokers: int, seed: int, events: list[object]
) -> None:
    rotation = _rotation(brokers, seed, return_home_s=60.0)
    now = 0.0
    for event in events:
        if event == "fail":
            attempt = rotation.failed(now)
            assert 0 <= attempt.index < brokers
            assert now <= attempt.at_s <= now + 30.0
        elif event == "connect":
            rotation.connected_at(now)
        elif event == "home":
            if rotation.home_due(now):
                assert rotation.go_home(now) == Attempt(0, now)
        else:
            assert isinstance(event, tuple)
            now += event[1]
        assert 0 <= rotation.current < brokers


@given(st.integers(1, 6), st.integers(0, 5), st.integers(0, 2**32))
def test_every_broker_is_tried_within_one_round(brokers: int, start: int, seed: int) -> None:
    rotation = _rotation(brokers, seed)
    for _ in range(start % brokers):  # start somewhere in the list, connected there
        rotation.failed(0.0)
    rotation.connected_at(0.0)
    first = rotation.current
    tried = [rotation.failed(1.0).index for _ in range(brokers)]
    assert sorted(tried) == list(range(brokers))
    assert tried[-1] == first  # the round ends back where it started


@given(st.integers(2, 6), st.integers(0, 2**32))
def test_the_first_round_is_immediate_then_backoff_applies(brokers: int, seed: int) -> None:
    rotation = _rotation(brokers, seed)
    rotation.connected_at(0.0)
    waits = [rotation.failed(10.0).at_s - 10.0 for _ in range(brokers * 4)]
    assert waits[: brokers - 1] == [0.0] * (brokers - 1)
    assert all(0 <= w <= 30.0 for w in waits[brokers - 1 :])
    # jittered, not all zero: the backoff is in effect
    assert any(w > 0 for w in waits[brokers - 1 :])


def test_one_broker_backs_off_from_the_first_failure() -> None:
    backoff = Backoff(1.0, 8.0, jitter=0.0)
    rotation = BrokerRotation(1, backoff, 600.0)
    assert [rotation.failed(0.0) for _ in range(5)] == [
        Attempt(0, 1.0),
        Attempt(0, 2.0),
        Attempt(0, 4.0),
        Attempt(0, 8.0),
        Attempt(0, 8.0),
    ]
    rotation.connected_at(100.0)  # a success resets the backoff
    assert rotation.failed(100.0) == Attempt(0, 101.0)


def test_backoff_is_capped_even_after_many_rounds() -> None:
    rotation = BrokerRotation(3, Backoff(1.0, 8.0, jitter=0.0), 600.0)
    waits = [rotation.failed(0.0).at_s for _ in range(60)]
    assert max(waits) == 8.0
    assert waits[:2] == [0.0, 0.0]


def test_goes_home_after_return_home_s_on_another_broker() -> None:
    rotation = _rotation(3, return_home_s=600.0)
    rotation.connected_at(0.0)
    assert rotation.home_at() is None  # home already
    assert rotation.failed(5.0) == Attempt(1, 5.0)
    rotation.connected_at(6.0)
    assert rotation.home_at() == 606.0
    assert not rotation.home_due(605.9)
    assert rotation.home_due(606.0)
    assert rotation.go_home(606.0) == Attempt(0, 606.0)
    assert rotation.going_home and rotation.current == 0
    rotation.connected_at(606.5)
    assert not rotation.going_home and rotation.home_at() is None


def test_a_failed_return_home_falls_back_at_once_without_backoff() -> None:
    rotation = BrokerRotation(3, Backoff(1.0, 8.0, jitter=0.0), 100.0)
    rotation.connected_at(0.0)
    rotation.failed(1.0)
    rotation.failed(1.0)  # now on broker 2
    rotation.connected_at(2.0)
    for round_ in range(5):  # home keeps failing: back to 2 each time, no growing wait
        now = 2.0 + 100.0 * (round_ + 1) + round_
        assert rotation.go_home(now) == Attempt(0, now)
        assert rotation.failed(now + 0.5) == Attempt(2, now + 0.5)
        assert not rotation.going_home
        rotation.connected_at(now + 1.0)
        assert rotation.home_at() == now + 101.0  # the timer starts again
    # and the failure count was not touched: a real loss of broker 2 moves on at once
    assert rotation.failed(1000.0) == Attempt(0, 1000.0)


def test_return_home_zero_stays_put() -> None:
    rotation = _rotation(2, return_home_s=0.0)
    rotation.failed(0.0)
    rotation.connected_at(0.0)
    assert rotation.current == 1 and rotation.home_at() is None
    assert not rotation.home_due(1e9)


def test_not_due_while_disconnected_and_nonsense_is_refused() -> None:
    rotation = _rotation(2, return_home_s=10.0)
    rotation.failed(0.0)
    assert not rotation.home_due(1e9)  # not connected anywhere
    with pytest.raises(ValueError, match="already home"):
        _rotation(2).go_home(0.0)
    with pytest.raises(ValueError, match="at least one"):
        _rotation(0)
    with pytest.raises(ValueError, match="negative"):
        _rotation(2, return_home_s=-1.0)

"""The resend schedule: due at once, then after a timeout that doubles per attempt up to a
cap; everything due again after a reconnect; oldest first."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edge.resend import ResendSchedule


def test_a_new_batch_is_due_at_once_then_after_its_doubling_timeout() -> None:
    schedule = ResendSchedule(timeout_ms=1000, cap_ms=8000)
    schedule.add(7, 0)
    assert schedule.next_due(0) == 7
    schedule.sent(7, 0)
    assert schedule.next_due(999) is None and schedule.next_due(1000) == 7
    schedule.sent(7, 1000)  # second attempt: the wait doubles
    assert schedule.next_due(2999) is None and schedule.next_due(3000) == 7
    for _ in range(10):
        schedule.sent(7, 10_000)
    assert schedule.next_due_ms() == 18_000  # capped at 8 s
    assert schedule.attempts(7) == 12


def test_reconnect_makes_everything_due_oldest_first() -> None:
    schedule = ResendSchedule(timeout_ms=1000, cap_ms=8000)
    for added in (5, 3, 9):
        schedule.add(added, 0)
        schedule.sent(added, 0)
    assert schedule.next_due(10) is None
    schedule.all_due(10)
    order = []
    while (seq := schedule.next_due(10)) is not None:
        order.append(seq)
        schedule.sent(seq, 10)
    assert order == [3, 5, 9]
    assert schedule.attempts(3) == 2  # the backoff goes on where it was


def test_removed_batches_are_never_due() -> None:
    schedule = ResendSchedule(timeout_ms=1000, cap_ms=8000)
    schedule.add(1, 0)
    schedule.add(2, 0)
    schedule.remove(1)
    assert schedule.next_due(0) == 2 and len(schedule) == 1 and 1 not in schedule
    schedule.remove(2)
    assert schedule.next_due(10**9) is None and schedule.next_due_ms() is None


@given(
    timeout=st.integers(1, 10_000),
    cap=st.integers(1, 100_000),
    sends=st.lists(st.integers(0, 50_000), min_size=1, max_size=30),
)
def test_the_wait_after_the_nth_send_is_the_capped_doubled_timeout(
    timeout: int, cap: int, sends: list[int]
) -> None:
    schedule = ResendSchedule(timeout_ms=timeout, cap_ms=cap)
    schedule.add(1, 0)
    now = 0
    for n, step in enumerate(sends, start=1):
        now += step
        schedule.sent(1, now)
        assert schedule.next_due_ms() == now + min(cap, timeout * 2 ** min(n - 1, 20))


@given(st.lists(st.tuples(st.sampled_from(["add", "sent", "remove", "all"]), st.integers(1, 8))))
def test_next_due_is_always_the_earliest_tracked_batch(ops: list[tuple[str, int]]) -> None:
    schedule = ResendSchedule(timeout_ms=100, cap_ms=1000)
    model: dict[int, tuple[int, int]] = {}  # seq -> (due, attempts)
    for now, (op, seq) in enumerate(ops):
        if op == "add":
            schedule.add(seq, now)
            model[seq] = (now, 0)
        elif op == "sent" and seq in model:
            schedule.sent(seq, now)
            attempts = model[seq][1] + 1
            model[seq] = (now + min(1000, 100 * 2 ** (attempts - 1)), attempts)
        elif op == "remove":
            schedule.remove(seq)
            model.pop(seq, None)
        elif op == "all":
            schedule.all_due(now)
            model = {s: (now, a) for s, (_, a) in model.items()}
        expected = min(((due, s) for s, (due, _) in model.items()), default=None)
        assert schedule.next_due_ms() == (None if expected is None else expected[0])
        assert schedule.next_due(now) == (
            expected[1] if expected is not None and expected[0] <= now else None
        )
        assert len(schedule) == len(model)

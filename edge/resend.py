"""When each unacknowledged batch is due to be sent (again). Pure: the caller passes the time.

A batch is due at once when it is created or the link reconnects. After each transmission it
is due again when its ack timeout has passed; the timeout doubles per attempt, up to a cap,
so a node whose aggregator is down does not resend its whole journal every minute. Not
durable on purpose: after a restart the journal's contents are all backlog again.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Final

# Doubling stops here: 2**20 timeouts is far past any cap.
_MAX_DOUBLINGS: Final = 20


@dataclass(slots=True)
class _State:
    due_ms: int
    attempts: int


class ResendSchedule:
    def __init__(self, timeout_ms: int, cap_ms: int) -> None:
        if timeout_ms <= 0 or cap_ms <= 0:
            raise ValueError("timeouts must be positive")
        self._timeout_ms = timeout_ms
        self._cap_ms = cap_ms
        self._states: dict[int, _State] = {}
        # (due_ms, seq); an entry whose due_ms no longer matches its state is stale and
        # skipped. Equal due times come out oldest seq first.
        self._heap: list[tuple[int, int]] = []

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, seq: int) -> bool:
        return seq in self._states

    def add(self, seq: int, now_ms: int) -> None:
        """A new batch, due now."""
        self._set(seq, _State(now_ms, 0))

    def sent(self, seq: int, now_ms: int) -> None:
        """A transmission of `seq` at `now_ms`: due again after its (doubled) timeout."""
        attempts = self._states[seq].attempts + 1 if seq in self._states else 1
        wait = min(self._cap_ms, self._timeout_ms * 2 ** min(attempts - 1, _MAX_DOUBLINGS))
        self._set(seq, _State(now_ms + wait, attempts))

    def attempts(self, seq: int) -> int:
        state = self._states.get(seq)
        return 0 if state is None else state.attempts

    def remove(self, seq: int) -> None:
        """Acknowledged, or gone from the journal."""
        self._states.pop(seq, None)

    def all_due(self, now_ms: int) -> None:
        """After a reconnect every unacknowledged batch is due at once (attempts are kept,
        so the backoff goes on where it was)."""
        for state in self._states.values():
            state.due_ms = now_ms
        self._heap = sorted((now_ms, seq) for seq in self._states)

    def next_due(self, now_ms: int) -> int | None:
        """The seq due soonest if it is due by `now_ms`, else None. It stays scheduled until
        `sent` or `remove`."""
        top = self._top()
        return top[1] if top is not None and top[0] <= now_ms else None

    def next_due_ms(self) -> int | None:
        """When the next batch falls due; None if none is waiting for an ack."""
        top = self._top()
        return None if top is None else top[0]

    def _top(self) -> tuple[int, int] | None:
        heap = self._heap
        while heap:
            due_ms, seq = heap[0]
            state = self._states.get(seq)
            if state is not None and state.due_ms == due_ms:
                return heap[0]
            heapq.heappop(heap)
        return None

    def _set(self, seq: int, state: _State) -> None:
        self._states[seq] = state
        heapq.heappush(self._heap, (state.due_ms, seq))
        if len(self._heap) > 2 * len(self._states) + 64:
            self._heap = [(s.due_ms, q) for q, s in self._states.items()]
            heapq.heapify(self._heap)

"""When a node's windows close without a newer reading: its own clock, carried forward. Pure.

A series' windows close when a newer reading moves its watermark (aggregator.engine.windows).
A node that stops sending (the end of a replay, a node gone offline, a sensor that died)
would leave its last hour and its last day open for ever: never judged, no daily mean, no
daily AQI, no alert. This module says when to close them, in the node's own clock domain,
never on the aggregator's clock alone (a replay of 2013 is not thirteen years late, and an
accelerated simulator is not in the future):

- `event_ms` is the end of the node's newest windowed reading, in the node's clock, and
  `wall_ms` the aggregator's clock when it was judged. Between readings the node's clock is
  carried forward at wall rate: node_now(W) = event_ms + (W - wall_ms). That is the node's
  clock for a live node, and behind it for an accelerated simulator or a fast replay, so it
  never closes a window early.
- By time (`due`): every window ending at or before node_now(W) - lateness is closed. For a
  live node that is "`lateness` after the window's end" on the wall clock; the lateness
  leaves room for readings still on their way ([alerts.windows] close_after_s).
- On the node's word (`drained`): an offline status, or a status saying its journal holds
  nothing unacknowledged, means the node has sent everything it measured up to `event_ms`:
  the windows ending by then close at once.
- While our own intake is down (`grace`), nodes' readings wait at the broker, and silence
  proves nothing: the clocks are not carried forward over that spell.

Each node's windows are closed up to an hour boundary once (`closed_ms` only grows), so the
engine is asked again only when a new hour is due. Windows end on hour boundaries, so closing
"up to the hour" closes exactly the windows that are over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

HOUR_MS: Final = 3_600_000


@dataclass(slots=True)
class _NodeClock:
    event_ms: int  # end of the newest windowed reading, node clock
    wall_ms: int  # aggregator clock when event_ms was last moved
    closed_ms: int  # windows ending at or before this are closed (an hour boundary)


class NodeClocks:
    def __init__(self, lateness_ms: int) -> None:
        if lateness_ms < 0:
            raise ValueError("lateness_ms must be >= 0")
        self.lateness_ms = lateness_ms
        self._nodes: dict[str, _NodeClock] = {}
        self._grace_ms = -1

    def observe(self, node: str, end_ms: int, wall_ms: int) -> None:
        """A reading of `node` ending at `end_ms` (its clock) was judged at `wall_ms`."""
        clock = self._nodes.get(node)
        if clock is None:
            self._nodes[node] = _NodeClock(end_ms, wall_ms, -1)
        elif end_ms > clock.event_ms:
            clock.event_ms, clock.wall_ms = end_ms, wall_ms

    def grace(self, wall_ms: int) -> None:
        """Our intake could hear nobody until `wall_ms`: carry no clock forward over it."""
        self._grace_ms = max(self._grace_ms, wall_ms)

    def node_now_ms(self, node: str, wall_ms: int) -> int | None:
        """The node's clock at wall time `wall_ms`, as far as we can vouch for it."""
        clock = self._nodes.get(node)
        if clock is None:
            return None
        since = max(clock.wall_ms, self._grace_ms)
        return clock.event_ms + max(0, wall_ms - since)

    def newest_ms(self, node: str) -> int | None:
        clock = self._nodes.get(node)
        return None if clock is None else clock.event_ms

    def due(self, wall_ms: int) -> list[tuple[str, int]]:
        """(node, until_ms) for every node with windows newly over at `wall_ms`: those ending
        at or before until_ms, its clock minus the lateness, to the hour."""
        out: list[tuple[str, int]] = []
        for node in self._nodes:
            now = self.node_now_ms(node, wall_ms)
            assert now is not None
            until = self._claim(node, now - self.lateness_ms)
            if until is not None:
                out.append((node, until))
        return out

    def drained(self, node: str) -> int | None:
        """The node has sent all it has: until_ms to close its windows to (its newest
        reading's end, to the hour), or None if nothing new is over."""
        clock = self._nodes.get(node)
        return None if clock is None else self._claim(node, clock.event_ms)

    def _claim(self, node: str, until_ms: int) -> int | None:
        clock = self._nodes[node]
        hour = until_ms - until_ms % HOUR_MS
        if hour <= clock.closed_ms:
            return None
        clock.closed_ms = hour
        return hour

"""Which broker to use, of an ordered list: move on when one fails, come back home later.

Pure: the caller passes the time (monotonic seconds) and does the waiting; the random source
for the jitter is the injected `Backoff`'s. Shared by the edge link and the aggregator's
MQTT sessions.

- Index 0 is "home", the broker the list names first.
- A failure (a connection lost, refused or never made) moves to the next broker in the list.
  Within the first round after a success the next broker is tried at once: a broker that
  died says nothing about the others. Once a whole round has failed, every further attempt
  waits a capped, jittered exponential backoff, so a node whose uplink is down does not
  spin, and a fleet that lost everything does not come back in the same second.
- Connected to a broker other than home for `return_home_s`, the caller is told to go home
  (a clean disconnect, then a connect to index 0). If that attempt fails, the next attempt
  is the broker it came from, at once and without counting toward the backoff, and the home
  timer starts again once connected there.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.runtime.backoff import Backoff

# The default stay on a non-home broker before going back (node.toml / agg.toml [mqtt]).
DEFAULT_RETURN_HOME_S = 600.0


@dataclass(frozen=True, slots=True)
class Attempt:
    """Connect to broker `index` at monotonic time `at_s`."""

    index: int
    at_s: float


class BrokerRotation:
    def __init__(self, brokers: int, backoff: Backoff, return_home_s: float) -> None:
        """`return_home_s` 0 means never go home on its own (only by failing over)."""
        if brokers < 1:
            raise ValueError("need at least one broker")
        if return_home_s < 0:
            raise ValueError("return_home_s must not be negative")
        self._brokers = brokers
        self._backoff = backoff
        self._return_home_s = return_home_s
        self._index = 0
        # Failures since the last successful connection; a round is `brokers` of them.
        self._failures = 0
        self._connected_since: float | None = None
        # Set while trying home from a working broker: where to fall back to.
        self._fallback: int | None = None

    @property
    def brokers(self) -> int:
        return self._brokers

    @property
    def current(self) -> int:
        """The broker in use, or to be tried next."""
        return self._index

    @property
    def connected(self) -> bool:
        return self._connected_since is not None

    @property
    def going_home(self) -> bool:
        return self._fallback is not None

    def connected_at(self, now_s: float) -> None:
        """The attempt at `current` succeeded."""
        self._connected_since = now_s
        self._failures = 0
        self._fallback = None
        self._backoff.reset()

    def failed(self, now_s: float) -> Attempt:
        """The connection to `current` was lost, refused or never made: what to try next."""
        self._connected_since = None
        if self._fallback is not None:
            # Home did not answer: back to the broker that worked, at once. Data is safe either
            # way (the edge journals it), but there is no reason to wait.
            self._index, self._fallback = self._fallback, None
            return Attempt(self._index, now_s)
        self._failures += 1
        self._index = (self._index + 1) % self._brokers
        if self._failures < self._brokers:
            return Attempt(self._index, now_s)
        return Attempt(self._index, now_s + self._backoff.next_delay())

    def home_at(self) -> float | None:
        """When to go home, while connected elsewhere; None when there is nothing to do."""
        if self._connected_since is None or self._index == 0 or self._return_home_s == 0:
            return None
        return self._connected_since + self._return_home_s

    def home_due(self, now_s: float) -> bool:
        at = self.home_at()
        return at is not None and now_s >= at

    def go_home(self, now_s: float) -> Attempt:
        """Leave the current (working) broker for home, now; call when `home_due`."""
        if self._index == 0:
            raise ValueError("already home")
        self._fallback, self._index = self._index, 0
        self._connected_since = None
        return Attempt(0, now_s)

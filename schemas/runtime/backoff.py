"""Capped exponential backoff with full jitter, shared by the edge and the aggregator.

Pure: the random source is injected, and the caller does the waiting. Full jitter
(a uniform draw in [0, ceiling]) spreads a fleet of nodes that lost the broker at the same
moment, so they do not all reconnect in the same second.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    initial_s: float = 0.5
    cap_s: float = 60.0
    multiplier: float = 2.0
    # Fraction of the delay that is randomised: 1.0 is full jitter, 0.0 is none.
    jitter: float = 1.0
    rng: random.Random = field(default_factory=random.Random)
    _attempt: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.cap_s:
            msg = f"need 0 < initial_s <= cap_s, got {self.initial_s} and {self.cap_s}"
            raise ValueError(msg)
        if self.multiplier < 1 or not 0 <= self.jitter <= 1:
            msg = "need multiplier >= 1 and 0 <= jitter <= 1"
            raise ValueError(msg)

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one failed attempt."""
        ceiling = min(self.cap_s, self.initial_s * self.multiplier**self._attempt)
        self._attempt = min(self._attempt + 1, 64)
        fixed = ceiling * (1 - self.jitter)
        return fixed + self.rng.uniform(0, ceiling * self.jitter)

    def reset(self) -> None:
        """Call after a success."""
        self._attempt = 0

    @property
    def attempts(self) -> int:
        return self._attempt

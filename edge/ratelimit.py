"""A token bucket for the backlog drain. Pure: the caller passes the time."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    rate_per_s: float
    burst: float
    _tokens: float = 0.0
    _last_ms: int | None = None

    def __post_init__(self) -> None:
        if self.rate_per_s <= 0 or self.burst <= 0:
            raise ValueError("rate and burst must be positive")
        self._tokens = self.burst

    def _refill(self, now_ms: int) -> None:
        if self._last_ms is not None and now_ms > self._last_ms:
            elapsed_s = (now_ms - self._last_ms) / 1000.0
            self._tokens = min(self.burst, self._tokens + elapsed_s * self.rate_per_s)
        if self._last_ms is None or now_ms > self._last_ms:
            self._last_ms = now_ms

    def try_take(self, amount: float, now_ms: int) -> bool:
        """Take `amount` tokens if the bucket holds them. An amount above the burst size is
        allowed once the bucket is full, so one oversized batch cannot block forever."""
        self._refill(now_ms)
        if self._tokens >= min(amount, self.burst):
            self._tokens -= amount
            return True
        return False

    def ms_until(self, amount: float, now_ms: int) -> int:
        """How long until `try_take(amount)` can succeed."""
        self._refill(now_ms)
        missing = min(amount, self.burst) - self._tokens
        return 0 if missing <= 0 else int(missing / self.rate_per_s * 1000.0) + 1

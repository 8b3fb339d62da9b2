"""What the storage writes have been doing: the last success, the current failure streak, and
when to say so in the log.

Time is passed in (wall seconds). A failing database is logged at a steady rate: the first
failure of a streak at once, then at most one warning per `warn_every_s` of wall time with
the attempt count and how long it has been failing, whatever the number of concurrent writes
retrying, and once more when writes succeed again.
"""

from __future__ import annotations

from dataclasses import dataclass

from aggregator.service_health import StorageObservation


@dataclass(frozen=True, slots=True)
class Recovered:
    failed_for_s: float
    attempts: int


class StorageStatus:
    def __init__(self, warn_every_s: float) -> None:
        self._warn_every_s = warn_every_s
        self.last_success_at: float | None = None
        self.failing_since: float | None = None
        self.attempts = 0
        self.last_error: str | None = None
        self._warned_at: float | None = None

    def failed(self, error: str, now: float) -> bool:
        """Record a failed attempt; True when this one should be logged."""
        if self.failing_since is None:
            self.failing_since = now
            self._warned_at = None
        self.attempts += 1
        self.last_error = error
        if self._warned_at is None or now - self._warned_at >= self._warn_every_s:
            self._warned_at = now
            return True
        return False

    def failing_for(self, now: float) -> float:
        return 0.0 if self.failing_since is None else max(0.0, now - self.failing_since)

    def succeeded(self, now: float) -> Recovered | None:
        """Record a successful write; the streak it ends, if any."""
        recovered = None
        if self.failing_since is not None:
            recovered = Recovered(round(self.failing_for(now), 1), self.attempts)
        self.last_success_at = now
        self.failing_since = None
        self.attempts = 0
        self.last_error = None
        return recovered

    def observation(self, buffered_readings: int) -> StorageObservation:
        return StorageObservation(
            last_success_at=self.last_success_at,
            failing_since=self.failing_since,
            failed_attempts=self.attempts,
            last_error=self.last_error,
            buffered_readings=buffered_readings,
        )

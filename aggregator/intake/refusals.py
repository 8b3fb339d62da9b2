"""Counting and reporting refused input without letting a flood of it flood the log."""

from __future__ import annotations

from dataclasses import dataclass, field

from aggregator.intake.checks import Refusal
from aggregator.metrics import Metrics
from schemas.runtime.logs import get_logger

log = get_logger("aggregator.intake.checks")


@dataclass(slots=True)
class RefusalReporter:
    """Every refusal is counted; per reason, one is logged per `interval_s`, with how many
    were suppressed since the last one."""

    metrics: Metrics
    interval_s: float = 10.0
    _last: dict[str, float] = field(default_factory=dict)
    _suppressed: dict[str, int] = field(default_factory=dict)

    def report(self, refusal: Refusal, now_s: float) -> None:
        self.metrics.refused.labels(refusal.reason).inc()
        self._log(refusal.reason, now_s, node=refusal.node, detail=refusal.detail[:300])

    def report_readings(self, node: str, count: int, detail: str, now_s: float) -> None:
        self.metrics.readings_refused.labels("invalid_reading").inc(count)
        self._log("invalid_reading", now_s, node=node, count=count, detail=detail[:300])

    def report_failure(self, kind: str, exc: Exception, now_s: float) -> None:
        """A message whose handling failed with an unexpected error: a bug, counted and
        logged (with its traceback, rate-limited like refusals); the service carries on."""
        self.metrics.message_failures.labels(kind).inc()
        if self._due(f"failure:{kind}", now_s):
            log.exception(
                "message_failed",
                kind=kind,
                error_type=type(exc).__name__,
                error=str(exc)[:300],
                suppressed_since_last=self._suppressed.pop(f"failure:{kind}", 0),
            )

    def _log(self, reason: str, now_s: float, **fields: object) -> None:
        if not self._due(reason, now_s):
            return
        suppressed = self._suppressed.pop(reason, 0)
        log.warning("refused", reason=reason, suppressed_since_last=suppressed, **fields)

    def _due(self, key: str, now_s: float) -> bool:
        """Whether a record for `key` may be logged now; if not, it is counted suppressed."""
        last = self._last.get(key)
        if last is not None and now_s - last < self.interval_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._last[key] = now_s
        return True

"""Which refusals to tell the refused node, on its refusal topic. Pure: time is a parameter.

A node whose messages are refused otherwise sees only that its journal does not drain (a
replay as a node missing from the fleet exited with `unacked=432` and nothing else). A
refusal is told only when its topic names a node with a valid id, and it is rate-limited so
that a node sending garbage, or a flood of made-up node ids, cannot make the aggregator flood
the broker: at most one per (node, reason) every `per_node_interval_ms`, and at most
`max_per_s` in all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from aggregator.intake.checks import Refusal
from schemas.messages import ID_REGEX, MAX_REFUSAL_DETAIL, REFUSAL_SCHEMA, RefusalMessage

# bad_topic is missing on purpose: its topic names no valid node to tell.
TOLD_REASONS: Final = frozenset(
    {"oversized", "malformed", "invalid", "unknown_node", "node_mismatch"}
)
# Entries of (node, reason) remembered at most; past it, the expired ones are forgotten.
MAX_REMEMBERED: Final = 10_000


@dataclass(slots=True)
class RefusalNotices:
    per_node_interval_ms: int = 10_000
    max_per_s: int = 20
    _last: dict[tuple[str, str], int] = field(default_factory=dict)
    _second: int = -1
    _in_second: int = 0

    def notice(
        self, refusal: Refusal, kind: Literal["readings", "status"], now_ms: int
    ) -> RefusalMessage | Literal["suppressed"] | None:
        """The message to publish; 'suppressed' if rate-limited; None if not to be told."""
        node = refusal.node
        if node is None or refusal.reason not in TOLD_REASONS or not ID_REGEX.match(node):
            return None
        key = (node, refusal.reason)
        last = self._last.get(key)
        if last is not None and now_ms - last < self.per_node_interval_ms:
            return "suppressed"
        second = now_ms // 1000
        if second != self._second:
            self._second, self._in_second = second, 0
        if self._in_second >= self.max_per_s:
            return "suppressed"
        self._in_second += 1
        self._remember(key, now_ms)
        return RefusalMessage(
            schema=REFUSAL_SCHEMA,
            node=node,
            reason=refusal.reason,
            detail=refusal.detail[:MAX_REFUSAL_DETAIL],
            at_ms=now_ms,
            kind=kind,
            seq=refusal.seq,
        )

    def _remember(self, key: tuple[str, str], now_ms: int) -> None:
        if len(self._last) >= MAX_REMEMBERED:
            cutoff = now_ms - self.per_node_interval_ms
            self._last = {k: t for k, t in self._last.items() if t > cutoff}
            if len(self._last) >= MAX_REMEMBERED:
                # All recent: a flood of made-up ids. The global rate still bounds it.
                self._last.clear()
        self._last[key] = now_ms

"""Which batches of each node are being stored or were stored recently. Pure.

Nodes resend unacknowledged batches, and the broker may redeliver. A batch already stored is
not written again, only acknowledged again; one still being stored is skipped (its own write
will be acked). Memory is bounded per node: an older duplicate is simply written again, which
InfluxDB absorbs (same series and time).
"""

from __future__ import annotations

from collections import OrderedDict
from enum import Enum
from typing import Final

RECENT_PER_NODE: Final = 4096


class SeqState(Enum):
    NEW = "new"
    IN_FLIGHT = "in_flight"
    STORED = "stored"


class SeqTracker:
    def __init__(self, recent_per_node: int = RECENT_PER_NODE) -> None:
        self._limit = recent_per_node
        self._inflight: dict[str, set[int]] = {}
        self._stored: dict[str, OrderedDict[int, None]] = {}

    def state(self, node: str, seq: int) -> SeqState:
        if seq in self._inflight.get(node, ()):
            return SeqState.IN_FLIGHT
        if seq in self._stored.get(node, ()):
            return SeqState.STORED
        return SeqState.NEW

    def begin(self, node: str, seq: int) -> None:
        self._inflight.setdefault(node, set()).add(seq)

    def stored(self, node: str, seq: int) -> None:
        self._inflight.get(node, set()).discard(seq)
        recent = self._stored.setdefault(node, OrderedDict())
        recent[seq] = None
        while len(recent) > self._limit:
            recent.popitem(last=False)

    def abandon(self, node: str, seq: int) -> None:
        """Forget an in-flight batch that was not stored (shutdown); it may come again."""
        self._inflight.get(node, set()).discard(seq)

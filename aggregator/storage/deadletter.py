"""The dead-letter file: batches the database refused as data, kept for an operator.

Append-only JSON lines, capped in size so a persistent fault cannot fill the disk; what does
not fit is counted and logged instead.
"""

from __future__ import annotations

import json
from pathlib import Path

from schemas.runtime.logs import get_logger

log = get_logger("aggregator.storage.deadletter")


class DeadLetters:
    def __init__(self, path: Path | None, max_bytes: int = 100 * 1024 * 1024) -> None:
        self._path = path
        self._max_bytes = max_bytes
        self.recorded = 0
        self.discarded = 0

    def record(self, *, node: str | None, seq: int | None, reason: str, lines: list[str]) -> None:
        entry = json.dumps({"node": node, "seq": seq, "reason": reason, "lines": lines}) + "\n"
        if self._path is None or self._size() + len(entry) > self._max_bytes:
            self.discarded += 1
            log.error("dead_letter_discarded", node=node, seq=seq, lines=len(lines))
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with self._path.open("a", encoding="utf-8") as handle:
            handle.write(entry)
        self.recorded += 1

    def _size(self) -> int:
        assert self._path is not None
        try:
            return self._path.stat().st_size
        except FileNotFoundError:
            return 0

"""Garbage-collector settings for the aggregator's long-running processes."""

from __future__ import annotations

import gc
from typing import Final

GC_GEN0_THRESHOLD: Final = 10_000


def tune_gc() -> None:
    """Fewer collections: the aggregator keeps up to `max_buffered_readings` readings in flight
    and allocates per message; at the default threshold (700) the collector took a large share
    of its time (bench/README.md). Readings themselves are not tracked (schemas/messages.py);
    freezing moves start-up objects out of every later collection. The alerting worker calls
    this too, and freezes again after its warm start: the windows rebuilt then live as long as
    the process, and a full collection walking them stalled evaluation for 30-170 ms each."""
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])

"""A write's line protocol from live messages: each batch formatted alone (as before
`chunk_lines`) against `aggregator.storage.pipeline.chunk_lines` (the values of the whole
write formatted in one call). Pure CPU, no services, one process, rounds interleaved, CPU time
(time.process_time) so that other processes on a shared machine count less.

A write holds 5,000 readings ([influx] batch_readings): 833 live bench messages (6 readings,
bench/_shapes.py) of 100 nodes. Both build the request body (the joined, encoded lines).

    .venv/bin/python bench/write_lines.py [--writes 20] [--rounds 15]

Last line: `before_ns=… after_ns=… ratio=…` (best per message; ratio = after/before).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

if not __package__:  # run as a script: make the repository root importable for bench.*
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aggregator.fleet import Fleet
from aggregator.intake.checks import AcceptedBatch, Intake
from aggregator.storage.pipeline import PendingBatch, chunk_lines
from aggregator.storage.records import ReadingLines
from bench._shapes import SHAPES, PayloadTemplates, node_info, start_ts_ms
from schemas.messages import ReadingValues

NODES = [f"b000n{i:03d}" for i in range(100)]
MESSAGES_PER_WRITE = 833
_JSON = msgspec.json.Encoder()


class BeforeLines(ReadingLines):
    """`ReadingLines.lines` as it was before chunk_lines (commit 6eb71ff), verbatim."""

    __slots__ = ()

    def lines(self, readings: Sequence[ReadingValues]) -> list[str]:
        if not readings:
            return []
        texts = _JSON.encode([r.value for r in readings])[1:-1].decode().split(",")
        series = self._series
        out: list[str] = []
        append = out.append
        for r, value in zip(readings, texts, strict=True):
            if r.serial is None and not r.flags:
                prefix = series.get((r.sensor, r.quantity, r.stat, r.period_s))
                if prefix is not None:
                    append(f"{prefix}{value} {r.ts}")
                    continue
            append(self._formatted(r, value))
        return out


@dataclass(slots=True)
class BeforeItem:
    """The part of PendingBatch a write used before chunk_lines (commit 6eb71ff)."""

    batch: AcceptedBatch
    render: Callable[[Sequence[ReadingValues]], list[str]]
    lines: list[str] = field(default_factory=list)

    def text(self) -> list[str]:
        if self.render is not None and self.batch is not None:
            return self.render(self.batch.readings)
        return self.lines


def live_batches(count: int) -> list[AcceptedBatch]:
    shape = SHAPES["live"]
    t0, sent = start_ts_ms(), int(time.time() * 1000)
    intake = Intake(Fleet({node: node_info(node) for node in NODES}), 1 << 20)
    templates = [PayloadTemplates(node, shape, t0, sent) for node in NODES]
    out = []
    for m in range(count):
        t = templates[m % len(templates)]
        accepted = intake.readings(t.topic, t.payload(m // len(templates)))
        assert isinstance(accepted, AcceptedBatch)
        out.append(accepted)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--writes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    batches = live_batches(args.writes * MESSAGES_PER_WRITE)
    writes = [
        batches[i : i + MESSAGES_PER_WRITE] for i in range(0, len(batches), MESSAGES_PER_WRITE)
    ]
    before_lines = {node: BeforeLines(node_info(node)) for node in NODES}
    after_lines = {node: ReadingLines(node_info(node)) for node in NODES}

    # Made at intake, not at the write: outside the timing.
    before_items = [[BeforeItem(b, before_lines[b.info.node].lines) for b in w] for w in writes]
    after_items = [
        [PendingBatch([], b, builder=after_lines[b.info.node]) for b in w] for w in writes
    ]

    def before() -> None:
        # What Pipeline._bodies did: each item's text() (its batch's `lines`), joined.
        for items in before_items:
            "\n".join(line for item in items for line in item.text()).encode()

    def after() -> None:
        for items in after_items:
            "\n".join(chunk_lines(items)).encode()

    first = writes[0]
    assert [line for b in first for line in before_lines[b.info.node].lines(b.readings)] == (
        chunk_lines([PendingBatch([], b, builder=after_lines[b.info.node]) for b in first])
    )
    cases: dict[str, Callable[[], None]] = {"before": before, "after": after}
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(args.rounds):  # interleaved, so machine noise hits both alike
        for name, run in cases.items():
            started = time.process_time()
            run()
            best[name] = min(best[name], (time.process_time() - started) / len(batches))
    ratio = best["after"] / best["before"]
    print(f"before_ns={best['before'] * 1e9:.0f} after_ns={best['after'] * 1e9:.0f} "
          f"ratio={ratio:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()

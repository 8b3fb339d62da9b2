"""Intake and the batch dedup, per reading, as the aggregator's service runs them on each
readings message: `Intake.readings`, then `SeqTracker.claim` and `stored` with the
batch's (node, journal, seq, digest). Pure CPU, no MQTT or InfluxDB.

300 backlog-mode bench payloads (100 readings, bench/_shapes.py) over 10 nodes, sent as nodes
without a journal id and as nodes with one; and `content_digest` alone. Best of --rounds.

    .venv/bin/python bench/intake_dedup.py [--rounds 15]

Last line, machine-readable: `no_journal_ns=… journal_ns=… digest_ns=…` (per reading).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

if not __package__:  # run as a script: make the repository root importable for bench.*
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aggregator.fleet import Fleet
from aggregator.intake.checks import AcceptedBatch, Intake
from aggregator.intake.seqs import SeqTracker, content_digest
from bench._shapes import SHAPES, PayloadTemplates, node_info, start_ts_ms

NODES = [f"b000n{i:03d}" for i in range(10)]
MESSAGES_PER_NODE = 30
JOURNAL = b',"journal":"5f0c2a9be41d7368"}'

Payloads = list[tuple[str, bytes]]


def payloads(*, journal: bool) -> Payloads:
    shape = SHAPES["backlog"]
    t0 = start_ts_ms()
    out = []
    for node in NODES:
        templates = PayloadTemplates(node, shape, t0, t0)
        for m in range(MESSAGES_PER_NODE):
            payload = templates.payload(m)
            # The edge encodes `journal` last (ReadingsMessage's field order).
            out.append(
                (f"envnet/v1/nodes/{node}/readings", payload[:-1] + JOURNAL if journal else payload)
            )
    return out


def intake_and_dedup(batch: Payloads) -> Callable[[], None]:
    fleet = Fleet({node: node_info(node) for node in NODES})

    def run() -> None:
        intake = Intake(fleet, 1 << 20)
        seqs = SeqTracker()
        for topic, payload in batch:
            accepted = intake.readings(topic, payload)
            assert isinstance(accepted, AcceptedBatch)
            key = (accepted.info.node, accepted.journal, accepted.seq, accepted.digest)
            seqs.claim(*key)  # as the service does
            seqs.stored(*key)

    return run


def digests(batch: Payloads) -> Callable[[], None]:
    def run() -> None:
        for _, payload in batch:
            content_digest(payload)

    return run


def best_ns_per_reading(run: Callable[[], None], readings: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best / readings * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    plain, named = payloads(journal=False), payloads(journal=True)
    readings = len(plain) * SHAPES["backlog"].readings
    results = {
        "no_journal_ns": best_ns_per_reading(intake_and_dedup(plain), readings, args.rounds),
        "journal_ns": best_ns_per_reading(intake_and_dedup(named), readings, args.rounds),
        "digest_ns": best_ns_per_reading(digests(named), readings, args.rounds),
    }
    print(f"intake + dedup, nodes without a journal id: {results['no_journal_ns']:.0f} ns/reading")
    print(f"intake + dedup, nodes with a journal id:    {results['journal_ns']:.0f} ns/reading")
    print(f"content_digest alone:                       {results['digest_ns']:.0f} ns/reading")
    print(" ".join(f"{k}={v:.1f}" for k, v in results.items()))


if __name__ == "__main__":
    main()

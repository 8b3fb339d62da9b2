"""kill -9 at random points, 200 times: the journal loses nothing it acknowledged as journaled.

A forked child opens the journal and works it as an agent does, as fast as it can: appends
live and backlog chunks, packs backlog batches, acknowledges some, enforces a small byte
bound (so drops happen too). After each call returns it reports on a pipe what it may now
rely on. The parent kills it with SIGKILL after a random delay (during open, a commit, a
checkpoint, a drop...), reopens the journal and checks:

- every reading reported journaled is still there, unless it was reported acknowledged or
  it was dropped by the bound: dropped readings are all older than every reading left, and
  the persistent drop counter grew by at least their number;
- no reading is there twice; SQLite's integrity check passes and the file was never judged
  damaged; the in-memory depth the journal rebuilds matches its rows;
- seqs only grow across crashes: every seq handed out is below the next start's first seq.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from edge.journal import Journal, decode_chunk
from schemas.messages import Reading

ITERATIONS = 200
EXTRA_ITERATIONS = 200
BASE = 1_796_000_000_000
# Each child gets its own range of timestamps, so readings never repeat across children.
TS_RANGE = 10_000_000
MAX_BYTES = 192 * 1024


def reading(ts: int) -> Reading:
    return Reading(
        ts=ts, quantity="pm2_5", value=12.5, unit="ug/m3", period_s=1, stat="mean", sensor="pm"
    )


def child(path: Path, first_ts: int, fd: int, seed: int) -> NoReturn:
    """Work the journal until killed. Reports, each after the call returned:
    J first n (journaled), A ts... (about to acknowledge), S seq (handed out)."""
    try:
        rng = random.Random(seed)
        journal = Journal(path, MAX_BYTES, 10**6)
        outstanding: list[int] = []
        ts = first_ts
        while True:
            n = rng.randint(1, 60)
            live = rng.random() < 0.5
            batches = journal.append([reading(ts + i) for i in range(n)], BASE, live=live)
            os.write(fd, f"J {ts} {n}\n".encode())
            ts += n
            for batch in batches:
                outstanding.append(batch.seq)
                os.write(fd, f"S {batch.seq}\n".encode())
            roll = rng.random()
            if roll < 0.3:
                seq = journal.pack_backlog(rng.randint(1, 120))
                if seq is not None:
                    outstanding.append(seq)
                    os.write(fd, f"S {seq}\n".encode())
            elif roll < 0.6 and outstanding:
                seq = outstanding.pop(rng.randrange(len(outstanding)))
                acking = journal.batch(seq)
                if acking is not None:
                    keys = " ".join(str(r.ts) for r in acking.readings)
                    os.write(fd, f"A {keys}\n".encode())
                journal.ack([seq], BASE)
            elif roll < 0.65:
                journal.enforce_bounds(BASE)
    finally:
        os._exit(1)


@dataclass
class Reports:
    journaled: set[int] = field(default_factory=set)
    acked: set[int] = field(default_factory=set)
    seqs: list[int] = field(default_factory=list)

    def parse(self, data: bytes) -> None:
        for line in data.decode().splitlines():
            kind, *values = line.split()
            if kind == "J":
                first, n = int(values[0]), int(values[1])
                self.journaled.update(range(first, first + n))
            elif kind == "A":
                self.acked.update(int(v) for v in values)
            elif kind == "S":
                self.seqs.append(int(values[0]))


def run_child(path: Path, first_ts: int, seed: int, delay_s: float) -> bytes:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        child(path, first_ts, write_end, seed)
    os.close(write_end)
    time.sleep(delay_s)  # the random crash point, not a wait for an event
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    chunks = []
    while data := os.read(read_end, 65536):
        chunks.append(data)
    os.close(read_end)
    return b"".join(chunks)


def contents(path: Path) -> tuple[list[int], int, str]:
    db = sqlite3.connect(path)
    try:
        present = [
            r.ts
            for (body,) in db.execute("SELECT body FROM chunks ORDER BY id")
            for r in decode_chunk(body)
        ]
        dropped = db.execute("SELECT value FROM meta WHERE key='dropped'").fetchone()
        check = db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()
    return present, 0 if dropped is None else int(dropped[0]), check


def test_kill_9_at_random_points_loses_nothing_journaled(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    rng = random.Random(20261130)
    must_have: set[int] = set()  # journaled, not acknowledged, not dropped
    dropped_before = 0
    max_seq = 0
    i = 0
    # On a loaded machine every child may die before its journal reaches the byte bound: then
    # go on, killing later, until the bound has dropped something (so that it is tested).
    while i < ITERATIONS or (dropped_before == 0 and i < ITERATIONS + EXTRA_ITERATIONS):
        late = i >= ITERATIONS
        delay_s = rng.uniform(0.04, 0.5) if late else rng.uniform(0, 0.04)
        data = run_child(path, BASE + i * TS_RANGE, rng.randrange(2**32), delay_s)
        reports = Reports()
        reports.parse(data)
        journal = Journal(path, MAX_BYTES, 10**6)  # what the agent does on restart
        assert journal.quarantined is None, f"iteration {i}: a crash damaged the journal"
        depth = journal.depth()
        first_new_seq = journal.pack_backlog(10**6) if depth else None
        journal._db.close()  # leave it as found (marked open), like another crash
        present, dropped, check = contents(path)
        assert check == "ok", f"iteration {i}: {check}"
        assert len(present) == len(set(present)), f"iteration {i}: a reading is there twice"
        assert depth == len(present), f"iteration {i}: depth {depth} != {len(present)} rows"
        must_have = (must_have | reports.journaled) - reports.acked
        missing = must_have - set(present)
        assert len(missing) <= dropped - dropped_before, (
            f"iteration {i}: {len(missing)} journaled readings lost, "
            f"{dropped - dropped_before} dropped by the bound"
        )
        if missing and present:
            assert max(missing) < min(present), f"iteration {i}: a drop was not oldest first"
        must_have -= missing
        dropped_before = dropped
        max_seq = max([max_seq, *reports.seqs])
        if first_new_seq is not None:
            assert first_new_seq > max_seq, f"iteration {i}: seq {first_new_seq} reused"
            max_seq = first_new_seq
        i += 1
    assert dropped_before > 0, "the byte bound never dropped anything: not tested"

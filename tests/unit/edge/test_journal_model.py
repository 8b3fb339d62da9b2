"""The journal against a model, under random sequences of appends, packs, acks, age drops,
clean restarts and crashes (hypothesis stateful testing).

The model keeps chunks in journal order, each waiting (backlog), out (in a batch), acked
(deleted at the next commit) or gone. A crash forgets batches and uncommitted deletes: out
and acked chunks are waiting again. The journal must agree on depth, backlog, each batch's
readings, the drop count, and hand out ever-growing seqs.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from edge.journal import Journal
from schemas.messages import Reading

BASE = 1_796_000_000_000
MAX_AGE_S = 100


@dataclass
class Chunk:
    ts: list[int]
    journaled_ms: int
    state: str = "waiting"  # waiting | out | acked | gone
    seq: int = 0


def reading(ts: int) -> Reading:
    return Reading(
        ts=ts, quantity="no2", value=40.0, unit="ug/m3", period_s=60, stat="mean", sensor="gas"
    )


class JournalMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp())
        self.journal = Journal(self.directory / "j.sqlite", 1 << 30, MAX_AGE_S)
        self.chunks: list[Chunk] = []
        self.next_ts = BASE
        self.now_ms = BASE
        self.last_seq = 0
        self.dropped = 0

    def teardown(self) -> None:
        self.journal.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- helpers --------------------------------------------------------------------------

    def _commit(self) -> None:
        for chunk in self.chunks:
            if chunk.state == "acked":
                chunk.state = "gone"

    def _new_seq(self, seq: int) -> None:
        assert seq > self.last_seq, f"seq {seq} after {self.last_seq}"
        self.last_seq = seq

    def _of(self, seq: int) -> list[Chunk]:
        return [c for c in self.chunks if c.state == "out" and c.seq == seq]

    # -- rules ----------------------------------------------------------------------------

    @rule(n=st.integers(1, 30), live=st.booleans(), advance=st.integers(0, 60_000))
    def append(self, n: int, live: bool, advance: int) -> None:
        self.now_ms += advance
        ts = list(range(self.next_ts, self.next_ts + n))
        self.next_ts += n
        batches = self.journal.append([reading(t) for t in ts], self.now_ms, live=live)
        self._commit()
        chunk = Chunk(ts, self.now_ms)
        if live:
            (batch,) = batches
            self._new_seq(batch.seq)
            chunk.state, chunk.seq = "out", batch.seq
            assert [r.ts for r in batch.readings] == ts
        else:
            assert batches == []
        self.chunks.append(chunk)

    @rule(max_readings=st.integers(1, 80))
    def pack(self, max_readings: int) -> None:
        seq = self.journal.pack_backlog(max_readings)
        waiting = [c for c in self.chunks if c.state == "waiting"]
        if not waiting:
            assert seq is None
            return
        assert seq is not None
        self._new_seq(seq)
        taken = 0
        for chunk in waiting:
            if taken and taken + len(chunk.ts) > max_readings:
                break
            chunk.state, chunk.seq = "out", seq
            taken += len(chunk.ts)
            if taken >= max_readings:
                break

    @precondition(lambda self: any(c.state == "out" for c in self.chunks))
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        seqs = sorted({c.seq for c in self.chunks if c.state == "out"})
        seq = data.draw(st.sampled_from(seqs))
        acked = self.journal.ack([seq], self.now_ms)
        chunks = self._of(seq)
        assert acked == sum(len(c.ts) for c in chunks)
        for chunk in chunks:
            chunk.state = "acked"

    @rule(advance=st.integers(0, 150_000))
    def enforce_age(self, advance: int) -> None:
        self.now_ms += advance
        dropped = self.journal.enforce_bounds(self.now_ms)
        cutoff = self.now_ms - MAX_AGE_S * 1000
        present = [c for c in self.chunks if c.state != "gone"]
        if present and present[0].journaled_ms < cutoff:
            self._commit()  # over a bound: one transaction, with the acknowledged deletes
        expected = 0
        for chunk in [c for c in self.chunks if c.state in ("waiting", "out")]:
            if chunk.journaled_ms >= cutoff:
                break
            if chunk.state == "out":  # its batch is dissolved: the rest waits again
                for other in self._of(chunk.seq):
                    other.state = "waiting"
            chunk.state = "gone"
            expected += len(chunk.ts)
        assert dropped == expected
        self.dropped += expected

    @rule()
    def flush(self) -> None:
        self.journal.flush()
        self._commit()

    @rule()
    def restart_cleanly(self) -> None:
        self.journal.close()
        self._commit()
        self._reopen()

    @rule()
    def crash(self) -> None:
        self.journal._db.close()  # nothing more reaches the disk
        self._reopen()

    def _reopen(self) -> None:
        for chunk in self.chunks:
            if chunk.state in ("out", "acked"):
                chunk.state = "waiting"  # not acked on disk: all of it is backlog now
        self.journal = Journal(self.directory / "j.sqlite", 1 << 30, MAX_AGE_S)
        assert self.journal.quarantined is None

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def agrees_with_the_model(self) -> None:
        live = [c for c in self.chunks if c.state in ("waiting", "out")]
        assert self.journal.depth() == sum(len(c.ts) for c in live)
        waiting = sum(len(c.ts) for c in self.chunks if c.state == "waiting")
        assert self.journal.backlog == waiting
        for seq in {c.seq for c in live if c.state == "out"}:
            batch = self.journal.batch(seq)
            assert batch is not None
            assert [r.ts for r in batch.readings] == [t for c in self._of(seq) for t in c.ts]
        assert self.journal.health(self.now_ms).dropped == self.dropped


JournalMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=30)
TestJournalModel = JournalMachine.TestCase

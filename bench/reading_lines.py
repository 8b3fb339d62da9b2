"""Line building for readings: the calibration change must not slow the no-serial fast path.

Pure CPU, no services. Times, interleaved and best of `--rounds`:

- baseline: a verbatim copy of `ReadingLines` as it was before readings had a serial (below);
- current: `aggregator.storage.records.ReadingLines.lines` on the same readings, none with a serial;
- calibrate_batch/no serial: the same readings through `calibrate_batch` with a loaded book
  (what every node's batch goes through once a calibration file is configured);
- calibrate_batch/serial: readings that all carry a serial with a record (linear).

Each batch is 100 readings of 6 series (the bench's backlog message), a fifth with flags.

    .venv/bin/python bench/reading_lines.py [--batches 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

from aggregator.calibration.batch import calibrate_batch
from aggregator.calibration.book import CalibrationBook, CalibrationRecord, Linear
from aggregator.fleet import NodeInfo
from aggregator.storage.records import ReadingLines
from schemas.messages import Reading, ReadingValues
from schemas.quantities import SPECS, Quantity

START_MS = 1_796_000_400_000
SAMPLE: tuple[tuple[Quantity, float], ...] = (
    ("pm2_5", 38.4),
    ("pm10", 61.0),
    ("o3", 80.5),
    ("no2", 33.3),
    ("air_temp", 21.7),
    ("rh", 71.5),
)


class BaselineLines(ReadingLines):
    """records.ReadingLines before the serial field (git HEAD at the time), for comparison.
    The series cache has not changed since, so it is inherited; the line is the old one."""

    __slots__ = ()

    def line(self, r: ReadingValues) -> str:
        if r.flags:
            return f'{self._series_key(r)}{float(r.value)!r},flags="{",".join(r.flags)}" {r.ts}'
        return f"{self._series_key(r)}{float(r.value)!r} {r.ts}"

    def lines(self, readings: Sequence[ReadingValues]) -> list[str]:
        line = self.line
        return [line(r) for r in readings]


def batch(first: int, serial: str | None) -> list[Reading]:
    readings = []
    for k in range(first, first + 100):
        quantity, base = SAMPLE[k % len(SAMPLE)]
        spec = SPECS[quantity]
        readings.append(
            Reading(
                ts=START_MS + (k // len(SAMPLE)) * 60_000,
                quantity=quantity,
                value=base + (k % 17) * 0.1,
                unit=spec.unit,
                period_s=60,
                stat=spec.default_stat,
                sensor="s",
                flags=("incomplete",) if k % 5 == 0 else (),
                serial=serial,
            )
        )
    return readings


def book() -> CalibrationBook:
    return CalibrationBook(
        CalibrationRecord("SN-1", q, "v1", 0, None, Linear(0.95, 0.5)) for q, _ in SAMPLE
    )


def best_rate(run: Callable[[], object], readings: int, rounds: int) -> list[float]:
    rates = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        rates.append(readings / (time.perf_counter() - started))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    info = NodeInfo(site="SIP Xinghu Street roadside", node="sz-sip-roadside")
    plain = [batch(i * 100, None) for i in range(args.batches)]
    with_serial = [batch(i * 100, "SN-1") for i in range(args.batches)]
    baseline, current, cal = BaselineLines(info), ReadingLines(info), book()
    assert [baseline.lines(b) for b in plain[:3]] == [current.lines(b) for b in plain[:3]]
    cases: dict[str, Callable[[], object]] = {
        "baseline (before serial)": lambda: [baseline.lines(b) for b in plain],
        "current, no serial": lambda: [current.lines(b) for b in plain],
        "calibrate_batch, no serial": lambda: [calibrate_batch(current, cal, b) for b in plain],
        "calibrate_batch, serial": lambda: [calibrate_batch(current, cal, b) for b in with_serial],
    }
    results: dict[str, list[float]] = {name: [] for name in cases}
    total = args.batches * 100
    for _ in range(args.rounds):  # interleaved, so machine noise hits every case alike
        for name, run in cases.items():
            results[name].extend(best_rate(run, total, 1))
    base = max(results["baseline (before serial)"])
    for name, rates in results.items():
        best = max(rates)
        print(f"{name:30s} best {best / 1e6:6.3f} M readings/s  ({best / base:6.1%} of baseline)")


if __name__ == "__main__":
    main()

"""A batch of readings under the calibration book: what is stored, and what is evaluated.

Pure. For each reading:

- no serial: the line exactly as without calibration, the reading evaluated as sent;
- a serial and a record valid at its ts: value = the calibrated value, with `raw`, `cal` (the
  version) and `serial` fields; the standards evaluate the calibrated reading;
- a serial and no record: the value as sent, with the `serial` field (so that history can be
  calibrated later, aggregator.calibration.recalibrate);
- a calibrated value outside the physical bounds: the value as sent, with `raw`,
  `cal_rejected` (the version) and `serial`, counted. The standards evaluate the reading as
  sent: a wrong record must not mute alerts, and the sensor's own value is still a reading
  the contract accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from aggregator.calibration.book import CalibratedOutOfBoundsError, CalibrationBook
from aggregator.storage.records import ReadingLines
from schemas.messages import Reading


@dataclass(frozen=True, slots=True)
class CalibratedBatch:
    lines: list[str]
    # The readings the standards evaluate: the input list itself when nothing was calibrated.
    readings: list[Reading]
    applied: int = 0
    no_record: int = 0
    out_of_bounds: int = 0


def calibrate_batch(
    builder: ReadingLines, book: CalibrationBook, readings: list[Reading]
) -> CalibratedBatch:
    lines: list[str] = []
    append = lines.append
    line = builder.line
    evaluated: list[Reading] | None = None
    applied = no_record = out_of_bounds = 0
    for index, reading in enumerate(readings):
        if reading.serial is None:
            append(line(reading))
            continue
        try:
            result = book.calibrate(reading)
        except CalibratedOutOfBoundsError as exc:
            out_of_bounds += 1
            append(builder.rejected_line(reading, exc.version))
            continue
        if result is None:
            no_record += 1
            append(line(reading))
            continue
        applied += 1
        value, version = result
        calibrated = msgspec.structs.replace(reading, value=value)
        append(builder.calibrated_line(calibrated, reading.value, version))
        if evaluated is None:
            evaluated = list(readings)
        evaluated[index] = calibrated
    return CalibratedBatch(
        lines,
        readings if evaluated is None else evaluated,
        applied=applied,
        no_record=no_record,
        out_of_bounds=out_of_bounds,
    )

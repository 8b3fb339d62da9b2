"""Sensor calibration, applied centrally: records, the book that finds them, the arithmetic.

Nodes send what their sensors measured (schemas/README.md: `value` is the sensor's own
reading). A calibration record maps that raw value to a calibrated one for one physical sensor
(its serial number) and one quantity, over a validity period. Records are versioned: a sensor
recalibrated in the field gets a new version valid from then on, and history can be
recalibrated with the book as it is now (aggregator.calibration.recalibrate).

Pure and deterministic: no I/O, no clock. The file format is aggregator.calibration.file.

- Validity is half-open, [valid_from_ms, valid_until_ms), and a reading is matched by its `ts`
  (the start of its averaging interval), so every reading has exactly one answer.
- Versions of one (serial, quantity) must not overlap: the book refuses to load otherwise,
  rather than guess which one was meant.
- A calibrated value outside the quantity's physical bounds (schemas.quantities) cannot be a
  measurement: the record is wrong for that reading, or the sensor is. It is refused
  (CalibratedOutOfBoundsError) and the caller keeps the raw value, marked and counted.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from schemas.messages import SERIAL_PATTERN, Reading
from schemas.quantities import SPECS, Quantity

CalibrationKind = Literal["linear", "polynomial"]

# Versions and serials go into InfluxDB string fields unescaped (records.ReadingLines), so a
# record only exists with ones that need no escaping.
VERSION_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}\Z"
_VERSION: Final = re.compile(VERSION_PATTERN)
_SERIAL: Final = re.compile(SERIAL_PATTERN)


class CalibrationError(ValueError):
    """Base of the calibration failures."""


class InvalidCalibrationError(CalibrationError):
    """A record that cannot be used: a bad validity period or non-finite numbers."""


class OverlappingCalibrationError(CalibrationError):
    """Two versions of one (serial, quantity) are valid at the same time, or share a name."""


class CalibratedOutOfBoundsError(CalibrationError):
    """The calibrated value lies outside the quantity's physical bounds."""

    def __init__(self, record: CalibrationRecord, raw: float, value: float) -> None:
        spec = SPECS[record.quantity]
        super().__init__(
            f"{record.serial} {record.quantity} version {record.version}: raw {raw!r} "
            f"calibrates to {value!r}, outside the physical bounds "
            f"[{spec.lower}, {spec.upper}] {spec.unit}"
        )
        self.version = record.version
        self.raw = raw
        self.value = value


@dataclass(frozen=True, slots=True)
class Linear:
    """value = gain · raw + offset."""

    gain: float
    offset: float = 0.0

    def apply(self, raw: float) -> float:
        return self.gain * raw + self.offset


@dataclass(frozen=True, slots=True)
class Polynomial:
    """value = Σ c_i · raw^i, coefficients (c0, c1, …, cn), evaluated by Horner's rule."""

    coefficients: tuple[float, ...]

    def apply(self, raw: float) -> float:
        value = 0.0
        for c in reversed(self.coefficients):
            value = value * raw + c
        return value


Curve = Linear | Polynomial


@dataclass(frozen=True, slots=True)
class CalibrationRecord:
    serial: str
    quantity: Quantity
    version: str
    valid_from_ms: int
    valid_until_ms: int | None  # exclusive; None: until further notice
    curve: Curve
    source: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        if not _SERIAL.match(self.serial) or not _VERSION.match(self.version):
            raise InvalidCalibrationError(
                f"{self._name()}: serial must match {SERIAL_PATTERN}, version {VERSION_PATTERN}"
            )
        if self.valid_until_ms is not None and self.valid_until_ms <= self.valid_from_ms:
            raise InvalidCalibrationError(f"{self._name()}: valid_until must be after valid_from")
        numbers = (
            (self.curve.gain, self.curve.offset)
            if isinstance(self.curve, Linear)
            else self.curve.coefficients
        )
        if not all(math.isfinite(n) for n in numbers):
            raise InvalidCalibrationError(f"{self._name()}: coefficients must be finite")
        if isinstance(self.curve, Polynomial) and len(self.curve.coefficients) < 2:
            raise InvalidCalibrationError(f"{self._name()}: a polynomial needs c0 and c1 at least")
        if isinstance(self.curve, Linear) and self.curve.gain <= 0:
            # Raw values are already in the canonical unit: a field correction is near the
            # identity, and a gain of zero or below is a typo, not a calibration.
            raise InvalidCalibrationError(f"{self._name()}: gain must be above 0")

    @property
    def kind(self) -> CalibrationKind:
        return "linear" if isinstance(self.curve, Linear) else "polynomial"

    def covers(self, ts_ms: int) -> bool:
        return self.valid_from_ms <= ts_ms and (
            self.valid_until_ms is None or ts_ms < self.valid_until_ms
        )

    def overlaps(self, other: CalibrationRecord) -> bool:
        """Whether two validity periods share an instant (half-open intervals)."""
        self_end = math.inf if self.valid_until_ms is None else self.valid_until_ms
        other_end = math.inf if other.valid_until_ms is None else other.valid_until_ms
        return self.valid_from_ms < other_end and other.valid_from_ms < self_end

    def calibrated(self, raw: float) -> float:
        """The calibrated value of `raw`; raises CalibratedOutOfBoundsError."""
        value = self.curve.apply(raw)
        spec = SPECS[self.quantity]
        # `not (a <= v <= b)` is also true for NaN; an overflow to ±inf is out of bounds.
        if not spec.lower <= value <= spec.upper:
            raise CalibratedOutOfBoundsError(self, raw, value)
        return value

    def _name(self) -> str:
        return f"{self.serial} {self.quantity} version {self.version}"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


# (calibrated value, version of the record that made it). A plain tuple: a NamedTuple costs
# ten times as much to create, per calibrated reading.
Calibrated = tuple[float, str]


class _Versions:
    """The versions of one (serial, quantity), sorted by valid_from, none overlapping."""

    __slots__ = ("last", "lower", "records", "starts", "upper")

    def __init__(self, records: list[CalibrationRecord]) -> None:
        records.sort(key=lambda r: r.valid_from_ms)
        names: dict[str, CalibrationRecord] = {}
        for record in records:
            if record.version in names:
                raise OverlappingCalibrationError(
                    f"{record.serial} {record.quantity}: version {record.version} is defined twice"
                )
            names[record.version] = record
        for earlier, later in itertools.pairwise(records):
            if earlier.overlaps(later):
                raise OverlappingCalibrationError(
                    f"{later.serial} {later.quantity}: versions {earlier.version} and "
                    f"{later.version} are both valid at {_iso(later.valid_from_ms)}: end "
                    f"{earlier.version} (valid_until) where {later.version} begins"
                )
        self.records = records
        self.starts = [r.valid_from_ms for r in records]
        spec = SPECS[records[0].quantity]
        self.lower, self.upper = spec.lower, spec.upper
        # The record found last: a sensor's readings arrive in time order and almost all of
        # them fall in the version that was valid for the one before.
        self.last = records[0]

    def at(self, ts_ms: int) -> CalibrationRecord | None:
        last = self.last
        until = last.valid_until_ms
        if last.valid_from_ms <= ts_ms and (until is None or ts_ms < until):
            return last
        index = bisect.bisect_right(self.starts, ts_ms) - 1
        if index < 0:
            return None
        record = self.records[index]
        if not record.covers(ts_ms):
            return None
        self.last = record
        return record


class CalibrationBook:
    """Every calibration record, indexed by (serial, quantity). The records are fixed once
    built; only a lookup cache changes."""

    __slots__ = ("_by_key", "_count")

    def __init__(self, records: Iterable[CalibrationRecord]) -> None:
        grouped: dict[tuple[str, str], list[CalibrationRecord]] = {}
        count = 0
        for record in records:
            grouped.setdefault((record.serial, record.quantity), []).append(record)
            count += 1
        self._by_key = {key: _Versions(group) for key, group in grouped.items()}
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[CalibrationRecord]:
        """Every record, by serial, quantity and validity."""
        for key in sorted(self._by_key):
            yield from self._by_key[key].records

    def serials(self) -> frozenset[str]:
        return frozenset(serial for serial, _ in self._by_key)

    def record_at(self, serial: str, quantity: str, ts_ms: int) -> CalibrationRecord | None:
        versions = self._by_key.get((serial, quantity))
        return None if versions is None else versions.at(ts_ms)

    def calibrate_value(
        self, serial: str, quantity: str, ts_ms: int, raw: float
    ) -> Calibrated | None:
        """The calibrated value and the version that made it; None when no record applies.
        Raises CalibratedOutOfBoundsError."""
        # Inlined (record.calibrated is the same arithmetic): this runs for every reading
        # that carries a serial.
        versions = self._by_key.get((serial, quantity))
        if versions is None:
            return None
        record = versions.at(ts_ms)
        if record is None:
            return None
        value = record.curve.apply(raw)
        if not versions.lower <= value <= versions.upper:
            raise CalibratedOutOfBoundsError(record, raw, value)
        return value, record.version

    def calibrate(self, reading: Reading) -> Calibrated | None:
        """`calibrate_value` for a reading; None also for a reading without a serial."""
        if reading.serial is None:
            return None
        return self.calibrate_value(reading.serial, reading.quantity, reading.ts, reading.value)

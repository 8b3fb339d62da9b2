"""The calibration file: TOML records, validated with msgspec, into a CalibrationBook.

```toml
[[calibration]]
serial = "PMS5003-A1B2C3"           # the sensor's serial, as the node sends it
quantity = "pm2_5"
version = "2026-03-colocation"      # unique per serial and quantity
valid_from = 2026-03-01T00:00:00+08:00
valid_until = 2026-09-01T00:00:00+08:00   # exclusive; leave out: until further notice
kind = "linear"                     # value = gain * raw + offset
gain = 0.87
offset = -2.1
source = "co-location with the SIP national station, February 2026"
```

`kind = "polynomial"` takes `coefficients = [c0, c1, c2, …]` instead (value = Σ c_i·raw^i).
Times must carry a UTC offset: a calibration valid "from midnight" is otherwise ambiguous by
eight hours in Suzhou. Unknown keys are refused, so a misspelt `ofset` is not silently 0.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Final

import msgspec

from aggregator.calibration.book import (
    VERSION_PATTERN,
    CalibrationBook,
    CalibrationError,
    CalibrationRecord,
    Curve,
    Linear,
    Polynomial,
)
from schemas.messages import SensorSerial
from schemas.quantities import Quantity
from schemas.runtime.configfile import ConfigError, read_toml

MAX_COEFFICIENTS: Final = 8

Version = Annotated[str, msgspec.Meta(pattern=VERSION_PATTERN)]
AwareTime = Annotated[datetime, msgspec.Meta(tz=True)]
Text = Annotated[str, msgspec.Meta(pattern=r"^[^\x00-\x1f\x7f]{0,200}$")]


class CalibrationFileError(ConfigError):
    """The calibration file cannot be used; the message names the file and the record."""


class _Entry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    serial: SensorSerial
    quantity: Quantity
    version: Version
    valid_from: AwareTime
    valid_until: AwareTime | None = None
    source: Text = ""
    note: Text = ""


class _LinearEntry(_Entry, frozen=True, tag="linear", tag_field="kind", kw_only=True):
    gain: float
    offset: float = 0.0


class _PolynomialEntry(_Entry, frozen=True, tag="polynomial", tag_field="kind", kw_only=True):
    coefficients: Annotated[list[float], msgspec.Meta(min_length=2, max_length=MAX_COEFFICIENTS)]


class _File(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    calibration: list[_LinearEntry | _PolynomialEntry] = []


def _ms(at: datetime) -> int:
    return round(at.timestamp() * 1000)


def _curve(entry: _LinearEntry | _PolynomialEntry) -> Curve:
    if isinstance(entry, _LinearEntry):
        return Linear(entry.gain, entry.offset)
    return Polynomial(tuple(entry.coefficients))


def _record(entry: _LinearEntry | _PolynomialEntry) -> CalibrationRecord:
    return CalibrationRecord(
        serial=entry.serial,
        quantity=entry.quantity,
        version=entry.version,
        valid_from_ms=_ms(entry.valid_from),
        valid_until_ms=None if entry.valid_until is None else _ms(entry.valid_until),
        curve=_curve(entry),
        source=entry.source,
        note=entry.note,
    )


def parse_calibrations(raw: dict[str, object], source: str) -> CalibrationBook:
    """A book from a parsed TOML table; `source` names the file in errors."""
    try:
        parsed = msgspec.convert(raw, _File, strict=True)
    except msgspec.ValidationError as exc:
        raise CalibrationFileError(f"{source}: {exc}") from None
    records = []
    for index, entry in enumerate(parsed.calibration):
        try:
            records.append(_record(entry))
        except CalibrationError as exc:
            raise CalibrationFileError(f"{source}: $.calibration[{index}]: {exc}") from None
    try:
        return CalibrationBook(records)
    except CalibrationError as exc:
        raise CalibrationFileError(f"{source}: {exc}") from None


def load_calibrations(path: Path) -> CalibrationBook:
    return parse_calibrations(read_toml(path), str(path))

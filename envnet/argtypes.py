"""Value types for the commands' options, checked when the command line is parsed.

argparse calls each with the option's text; an ArgumentTypeError becomes a one-line usage
error naming the option, with exit status 2, instead of a traceback from deep inside a run.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TypeVar

from schemas.messages import ID_REGEX
from schemas.runtime.configfile import ConfigError

T = TypeVar("T")


def node_id(text: str) -> str:
    """A node or sensor id as the contract allows it (also the MQTT topic level)."""
    if not ID_REGEX.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an id: 1 to 63 of a-z, 0-9, '-' and '_', not starting with - or _"
        )
    return text


def _converted(text: str, convert: Callable[[str], T], what: str) -> T:
    try:
        return convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def positive_int(text: str) -> int:
    value = _converted(text, int, "a whole number")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _number(text: str) -> float:
    value = _converted(text, float, "a number")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def day(text: str) -> date:
    """A calendar day, YYYY-MM-DD."""
    return _converted(text, date.fromisoformat, "a date (YYYY-MM-DD)")


def instant(text: str) -> datetime:
    """An ISO 8601 date and time; one without a UTC offset is taken as UTC."""
    example = "an ISO 8601 time, e.g. 2026-03-01T08:00:00+08:00"
    parsed = _converted(text, datetime.fromisoformat, example)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def ordered_days(first: date | None, last: date | None) -> None:
    """--from must not come after --to: such a range selects nothing, and a run that does
    nothing and succeeds hides the typo. A ConfigError: the command exits 2."""
    if first is not None and last is not None and first > last:
        raise ConfigError(f"--from {first} is after --to {last}: the range selects no day")

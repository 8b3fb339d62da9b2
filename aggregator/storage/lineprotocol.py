"""InfluxDB line protocol, built by pure functions.

Escaping follows the InfluxDB line protocol reference: in measurements, commas and spaces are
escaped; in tag keys, tag values and field keys, commas, equals signs and spaces; in string
field values, double quotes and backslashes. Newlines cannot be escaped at all and are
replaced, since a newline would start a new, attacker-chosen point.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Final

FieldValue = float | int | bool | str

_MEASUREMENT: Final = str.maketrans({",": r"\,", " ": r"\ ", "\\": "/", "\n": r"\ ", "\r": r"\ "})
# InfluxDB's parser skips the character after any backslash in a tag or key, so a literal
# backslash has no unambiguous escape there (a value ending in one swallows the separator).
# It is replaced by '/'; the fleet inventory refuses site names that contain one anyway.
_KEY: Final = str.maketrans(
    {",": r"\,", "=": r"\=", " ": r"\ ", "\\": "/", "\n": r"\ ", "\r": r"\ "}
)
_STRING: Final = str.maketrans({'"': r"\"", "\\": "\\\\", "\n": " ", "\r": " "})


class LineProtocolError(ValueError):
    """A value that has no line-protocol representation (NaN, infinity, empty keys)."""


def escape_measurement(name: str) -> str:
    return name.translate(_MEASUREMENT)


def escape_key(text: str) -> str:
    """For tag keys, tag values and field keys."""
    return text.translate(_KEY)


def format_field(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LineProtocolError(f"no line-protocol form for {value!r}")
        return repr(value)
    return '"' + value.translate(_STRING) + '"'


def tag_set(tags: Iterable[tuple[str, str]]) -> str:
    """',k=v' pairs sorted by key (what InfluxDB prefers); empty values are left out."""
    return "".join(
        f",{escape_key(k)}={escape_key(v)}" for k, v in sorted(tags) if v != "" and k != ""
    )


def line(
    measurement: str,
    tags: Iterable[tuple[str, str]],
    fields: Iterable[tuple[str, FieldValue | None]],
    ts_ms: int,
) -> str:
    field_text = ",".join(f"{escape_key(k)}={format_field(v)}" for k, v in fields if v is not None)
    if not field_text:
        raise LineProtocolError(f"{measurement}: a point needs at least one field")
    return f"{escape_measurement(measurement)}{tag_set(tags)} {field_text} {ts_ms}"

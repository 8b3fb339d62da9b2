"""A hardware driver's `options` table from node.toml, validated into a typed struct.

Every option struct forbids unknown fields, so a typo is a clear ValueError naming the driver
and the field; the driver registry reports it as a configuration error (exit status 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from schemas.messages import Flag

T = TypeVar("T", bound=msgspec.Struct)


class HardwareOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Options every hardware driver accepts.

    flags: quality flags every reading of the sensor carries. A node wired to the byte-level
    simulators of `envnet sim devices` sets ["simulated"]: the driver cannot tell a pty from
    a UART, so the operator says so.
    """

    flags: list[Flag] = []


def parse_options(options: Mapping[str, Any], kind: type[T], driver: str) -> T:
    """Validate a driver's options table, or raise ValueError naming the driver and field."""
    try:
        table = dict(options)
    except (TypeError, ValueError):
        raise ValueError(
            f"{driver} options must be a table, got {type(options).__name__}"
        ) from None
    try:
        return msgspec.convert(table, kind, strict=True)
    except msgspec.ValidationError as exc:
        valid = ", ".join(field.name for field in msgspec.structs.fields(kind))
        raise ValueError(f"{driver} options: {exc} (valid options: {valid})") from None

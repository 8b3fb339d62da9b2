"""TOML configuration files, overlaid with ENVNET_* environment variables, into typed structs.

Environment variables win over the file so that ops and tests can point every command at one
stack without editing files. The overlay is applied to the raw table *before* validation, so a
bad value from the environment gets the same clear error as a bad value in the file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration that cannot be used, with the file and the field at fault."""


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def overlay_env(
    raw: dict[str, Any],
    mapping: Mapping[str, tuple[str, ...]],
    environ: Mapping[str, str],
) -> dict[str, Any]:
    """Return a copy of `raw` with each set variable written at its key path."""
    result = _deep_copy(raw)
    for variable, path in mapping.items():
        value = environ.get(variable)
        if value is None or value == "":
            continue
        table = result
        for key in path[:-1]:
            table = table.setdefault(key, {})
            if not isinstance(table, dict):
                raise ConfigError(f"{'.'.join(path)} (from {variable}): parent is not a table")
        table[path[-1]] = value
    return result


def convert(raw: dict[str, Any], config_type: type[T], source: str) -> T:
    try:
        return msgspec.convert(raw, config_type, strict=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _deep_copy(table: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in table.items()}

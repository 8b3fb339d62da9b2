"""TOML text from nested mappings, for the config files envnet writes for its own processes.

Python reads TOML (tomllib) but does not write it; this covers what envnet's generated files
hold: tables, strings, numbers, booleans, and lists of those or of inline tables. Pure.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Final

_BARE_KEY: Final = re.compile(r"^[A-Za-z0-9_-]+$")
# TOML basic strings forbid these raw (TOML 1.0 §String): escape them.
_ESCAPED: Final = re.compile(r'["\\\x00-\x1f\x7f]')
_ESCAPES: Final = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t"}


class TomlTextError(ValueError):
    """A value TOML cannot hold (NaN, None, an unsupported type)."""


def dumps(document: Mapping[str, object]) -> str:
    """The document as TOML: its scalar keys first, then each table under its own header."""
    lines: list[str] = []
    _table(document, (), lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _table(table: Mapping[str, object], path: tuple[str, ...], lines: list[str]) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, Mapping)}
    if path and (scalars or not table):
        lines.append("")
        lines.append("[" + ".".join(key(p) for p in path) + "]")
    lines.extend(f"{key(k)} = {value(v)}" for k, v in scalars.items())
    for name, sub in table.items():
        if isinstance(sub, Mapping):
            _table(sub, (*path, name), lines)


def key(name: str) -> str:
    return name if _BARE_KEY.match(name) else string(name)


def string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    return '"' + _ESCAPED.sub(lambda m: _ESCAPES.get(m[0], f"\\u{ord(m[0]):04x}"), text) + '"'


def value(item: object) -> str:
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, float):
        if not math.isfinite(item):
            raise TomlTextError(f"TOML holds no {item!r} here")
        return repr(item)
    if isinstance(item, str):
        return string(item)
    if isinstance(item, Mapping):
        return "{ " + ", ".join(f"{key(k)} = {value(v)}" for k, v in item.items()) + " }"
    if isinstance(item, Sequence):
        return "[" + ", ".join(value(v) for v in item) + "]"
    raise TomlTextError(f"TOML cannot hold {type(item).__name__} {item!r}")

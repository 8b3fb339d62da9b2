"""A reference line-protocol tokenizer for tests, following InfluxDB's scanning rules: outside a
quoted string, a backslash escapes the next character; a string field runs to the next
unescaped double quote."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ParsedLine:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, str]
    timestamp: int


def _split(text: str, sep: str, *, quotes: bool = False) -> list[str]:
    parts, current, i, in_string = [], [], 0, False
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if quotes and c == '"':
            in_string = not in_string
        if c == sep and not in_string:
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in ',= "\\':
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _head(line: str) -> tuple[str, str, str]:
    first = _split(line, " ")[0]
    return first, " ", line[len(first) + 1 :]


def parse(line: str) -> ParsedLine:
    assert "\n" not in line, "a point must be one line"
    # Quotes mean nothing in the series key; they delimit string values in the field set.
    head, _, rest = _head(line)
    sections = _split(rest, " ", quotes=True)
    assert len(sections) == 2, f"expected fields and timestamp, got {sections}"
    fields_text, ts = sections
    series = _split(head, ",")
    tags = {}
    for pair in series[1:]:
        key, value = _split(pair, "=")
        tags[_unescape(key)] = _unescape(value)
    fields = {}
    for pair in _split(fields_text, ",", quotes=True):
        key, value = _split(pair, "=", quotes=True)
        fields[_unescape(key)] = value
    return ParsedLine(_unescape(series[0]), tags, fields, int(ts))

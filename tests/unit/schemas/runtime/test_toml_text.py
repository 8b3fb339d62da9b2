"""TOML text written by envnet reads back as the same document."""

from __future__ import annotations

import math
import tomllib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.runtime.toml_text import TomlTextError, dumps

scalars = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
)
keys = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=10)
inline_tables = st.lists(st.dictionaries(keys, scalars, max_size=3), max_size=2)
values = scalars | st.lists(scalars, max_size=4) | inline_tables
documents = st.recursive(
    st.dictionaries(keys, values, max_size=4),
    lambda children: st.dictionaries(keys, values | children, max_size=4),
    max_leaves=12,
)


@given(documents)
def test_what_is_written_reads_back_the_same(document: dict[str, Any]) -> None:
    assert tomllib.loads(dumps(document)) == document


def test_a_config_reads_as_written() -> None:
    text = dumps({"fleet": {"path": "/x/fleet.toml"}, "alerts": {"late_after_s": 900,
                  "windows": {"max_future_s": 0}}, "top": True})  # fmt: skip
    assert text.startswith("top = true\n")
    assert "[alerts.windows]\nmax_future_s = 0" in text
    assert tomllib.loads(text)["alerts"]["windows"]["max_future_s"] == 0


@pytest.mark.parametrize("bad", [math.nan, math.inf, None, object()])
def test_what_toml_cannot_hold_is_refused(bad: object) -> None:
    with pytest.raises(TomlTextError):
        dumps({"a": {"b": bad}})

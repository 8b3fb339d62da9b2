"""The node condition of InfluxQL queries (aggregator.storage.influxql). Pure."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.storage.influxql import node_condition
from schemas.messages import ID_PATTERN

IDS = st.from_regex(ID_PATTERN, fullmatch=True)


def _regex(condition: str) -> re.Pattern[str]:
    prefix, suffix = '"node" =~ /', "/"
    assert condition.startswith(prefix) and condition.endswith(suffix)
    return re.compile(condition[len(prefix) : -len(suffix)])


@given(chosen=st.lists(IDS, min_size=1, max_size=20), others=st.lists(IDS, max_size=20))
def test_the_condition_selects_exactly_the_nodes(chosen: list[str], others: list[str]) -> None:
    # InfluxDB's regular expressions are Go's RE2; anchors, a non-capturing group and plain
    # [a-z0-9_-] alternatives mean the same there as in Python's re.
    pattern = _regex(node_condition(chosen))
    for node in chosen:
        assert pattern.search(node)
    for node in others:
        assert bool(pattern.search(node)) == (node in chosen)
        # Anchored: a chosen id inside a longer one does not select it.
        assert not pattern.search(node + "x") or node + "x" in chosen


def test_the_condition_never_carries_anything_but_node_ids() -> None:
    for bad in (["x/ OR 1=1"], ["n.1"], ["N1"], []):
        with pytest.raises(ValueError, match="node ids"):
            node_condition(bad)

"""Warm start parsing: InfluxDB /query answers back into readings, without a database."""

from __future__ import annotations

import pytest

from aggregator.storage.warm_start import ParseCounts, WarmStartError, parse_series, query_for

T = 1_800_000_000_000


def answer(*rows: list[object], tags: dict[str, str] | None = None) -> dict[str, object]:
    tags = tags or {"node": "n1", "sensor": "pm", "stat": "mean", "period_s": "60"}
    series = {"name": "readings", "tags": tags, "columns": ["time", "value", "flags"]}
    return {"results": [{"statement_id": 0, "series": [{**series, "values": list(rows)}]}]}


def test_rows_become_readings() -> None:
    counts = ParseCounts()
    got = list(
        parse_series("pm2_5", answer([T, 35.5, None], [T + 60_000, 40.0, "simulated"]), counts)
    )
    assert [(r.node, r.reading.ts, r.reading.value) for r in got] == [
        ("n1", T, 35.5),
        ("n1", T + 60_000, 40.0),
    ]
    assert got[0].reading.unit == "ug/m3" and got[0].reading.period_s == 60
    assert got[1].reading.flags == ("simulated",)
    assert (counts.rows, counts.skipped) == (2, 0)


def test_rows_that_break_the_contract_are_skipped_and_counted() -> None:
    counts = ParseCounts()
    rows: list[list[object]] = [
        [T, -999.0, None],
        [T, 1.0, "bogus"],
        [5, 1.0, None],
        [T, 1.0, None],
    ]
    got = list(parse_series("pm2_5", answer(*rows), counts))
    assert len(got) == 1 and (counts.rows, counts.skipped) == (4, 3)


def test_missing_tag_is_skipped() -> None:
    counts = ParseCounts()
    tags = {"node": "n1", "stat": "mean", "period_s": "60"}
    assert list(parse_series("pm2_5", answer([T, 1.0, None], tags=tags), counts)) == []
    assert counts.skipped == 1


def test_empty_result_is_no_readings() -> None:
    assert list(parse_series("o3", {"results": [{"statement_id": 0}]}, ParseCounts())) == []


def test_server_error_is_raised_clearly() -> None:
    with pytest.raises(WarmStartError, match="database not found"):
        list(parse_series("o3", {"results": [{"error": "database not found: x"}]}, ParseCounts()))
    with pytest.raises(WarmStartError, match="unexpected"):
        list(parse_series("o3", {"oops": 1}, ParseCounts()))


def test_query_names_the_quantity_and_time() -> None:
    q = query_for("o3", T)
    assert "\"quantity\" = 'o3'" in q and f"time >= {T}ms" in q


def test_a_partitioned_replica_reads_back_its_own_nodes_only() -> None:
    q = query_for("pm2_5", T, ["sz-1", "sz-2"])
    assert f'time >= {T}ms AND "node" =~ /^(?:sz-1|sz-2)$/ GROUP BY' in q
    assert query_for("pm2_5", T) == query_for("pm2_5", T, None)
    for bad in (["x' OR 1=1"], []):
        with pytest.raises(ValueError, match="node ids"):
            query_for("pm2_5", T, bad)

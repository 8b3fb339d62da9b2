"""`envnet report` as a user runs it: outputs, and every way it refuses (exit 2 for bad usage,
1 when InfluxDB cannot be asked), each with a message and no traceback. InfluxDB is replaced
by canned /query answers; the real one is in tests/integration/envnet/test_report.py."""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from aggregator.reports import kinds
from aggregator.storage.influx import InfluxTarget
from envnet.cli import main

DAY_MS = 86_400_000
MARCH_1_MS = 1362067200000  # 2013-03-01 00:00 +08:00
INVENTORY = {
    "series": [
        {"tags": {"node": "bj-x", "group": "BJ", "air_zone": "2"}, "columns": ["time", "last"],
         "values": [[1, True]]},
    ]
}  # fmt: skip


def windows_answer(days: int) -> dict[str, Any]:
    series = []
    values = {"so2": 10, "no2": 30, "co": 0.8, "o3": 60, "pm10": 40, "pm2_5": 100}
    for q, v in values.items():
        window = "mda8" if q == "o3" else "24h"
        rows = [[MARCH_1_MS + n * DAY_MS, v, True] for n in range(days)]
        series.append({"tags": {"node": "bj-x", "sensor": "s", "quantity": q, "window": window},
                       "columns": ["time", "value", "valid"], "values": rows})  # fmt: skip
    return {"series": series}


def o3_max_answer(days: int) -> dict[str, Any]:
    maxima = [[MARCH_1_MS + n * DAY_MS, 60] for n in range(days)]
    return {"series": [{"tags": {"node": "bj-x"}, "columns": ["time", "max"], "values": maxima}]}


@pytest.fixture
def influx(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Canned answers: the inventory, then 3 days of windows; the queries asked are kept."""
    asked: list[str] = []

    async def ask(target: InfluxTarget, queries: Sequence[str]) -> list[Mapping[str, Any]]:
        asked.extend(queries)
        return [
            INVENTORY if '"nodes"' in q else o3_max_answer(3) if "max(" in q else windows_answer(3)
            for q in queries
        ]

    monkeypatch.setattr(kinds, "ask", ask)
    return asked


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exited:
        code = int(exited.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


MARCH = ["report", "air", "--from", "2013-03-01", "--to", "2013-03-31"]


def test_json_of_a_node(influx: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run([*MARCH, "--node", "bj-x", "--json"], capsys)
    assert code == 0, err
    node = json.loads(out)["air"]["nodes"]["bj-x"]
    assert (node["valid_days"], node["good_days"], node["exceedance_days"]["pm2_5"]) == (3, 0, 3)
    assert [d["missing"] for d in node["daily"]] == [[], [], []]  # the 2012 O3 1-h max too
    # A handful of queries for the month: the inventory, the daily windows, the O3 1-h means.
    assert len(influx) == 3


def test_text_csv_and_html(
    influx: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run([*MARCH, "--group", "BJ"], capsys)
    assert code == 0 and "group BJ" in out and "node bj-x" in out
    code, out, _ = run([*MARCH, "--csv"], capsys)
    assert code == 0 and out.startswith("kind,scope,id,figure,key,value\n")
    page = tmp_path / "air.html"
    code, out, _ = run([*MARCH, "--html", str(page)], capsys)
    assert code == 0 and f"wrote {page}" in out
    assert "#FF7E00" in page.read_text(encoding="utf-8")  # lightly polluted days


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--node", "nope"], "unknown node(s) nope"),
        (["--group", "Nope"], "unknown group 'Nope'"),
    ],
)
def test_unknown_node_or_group_exits_2(
    influx: list[str], capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run([*MARCH, *argv], capsys)
    assert (code, out) == (2, "")
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("dates", "message"),
    [
        (["--from", "2013-03-32", "--to", "2013-04-01"], "is not a date"),
        (["--from", "2013-03-31", "--to", "2013-03-01"], "is after --to"),
        (["--to", "2013-03-01"], "required: --from"),
    ],
)
def test_bad_dates_exit_2(
    capsys: pytest.CaptureFixture[str], dates: list[str], message: str
) -> None:
    code, _, err = run(["report", "air", *dates], capsys)
    assert code == 2 and message in err and "Traceback" not in err


@pytest.mark.parametrize("kind", ["water", "noise", "bloom"])
def test_kinds_not_built_yet_say_so(capsys: pytest.CaptureFixture[str], kind: str) -> None:
    code, out, err = run(["report", kind, "--from", "2013-03-01", "--to", "2013-03-02"], capsys)
    assert (code, out) == (2, "")
    assert f"the {kind} report is not built yet" in err


def test_unreachable_influxdb_exits_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("ENVNET_INFLUX_URL", f"http://127.0.0.1:{port}")
    code, out, err = run(MARCH, capsys)
    assert (code, out) == (1, "")
    assert "envnet report air: InfluxDB" in err and "Traceback" not in err


def test_a_bad_config_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "agg.toml"
    bad.write_text('[report]\no3_percentile_method = "median"\n', encoding="utf-8")
    code, _, err = run([*MARCH, "--config", str(bad)], capsys)
    assert code == 2 and "o3_percentile_method" in err


def test_an_unwritable_html_file_exits_2(
    influx: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run([*MARCH, "--html", str(tmp_path / "missing" / "a.html")], capsys)
    assert code == 2 and "cannot write" in err

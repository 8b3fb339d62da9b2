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

from aggregator.reports import kinds, noise_source, water_source
from aggregator.storage.influx import InfluxTarget
from envnet.cli import main

DAY_MS = 86_400_000
MARCH_1_MS = 1362067200000  # 2013-03-01 00:00 +08:00
HOUR_MS = 3_600_000
INVENTORY = {
    "series": [
        {"tags": {"node": "bj-x", "group": "BJ", "air_zone": "2"}, "columns": ["time", "last"],
         "values": [[1, True]]},
        {"tags": {"node": "th-w", "group": "Taihu", "water_body": "lake"},
         "columns": ["time", "last"], "values": [[1, True]]},
        {"tags": {"node": "sz-n", "group": "Gusu", "noise_zone": "2"},
         "columns": ["time", "last"], "values": [[1, True]]},
    ]
}  # fmt: skip


def readings_answer(values: Mapping[str, float]) -> dict[str, Any]:
    """One reading of each quantity at th-w in each hour of 2013-03-01."""
    rows = [[MARCH_1_MS + h * HOUR_MS + 600_000, 0.0, None] for h in range(24)]
    return {"series": [
        {"tags": {"node": "th-w", "quantity": q}, "columns": ["time", "value", "flags"],
         "values": [[t, v, f] for t, _, f in rows]}
        for q, v in values.items()
    ]}  # fmt: skip


def noise_answer() -> dict[str, Any]:
    """sz-n (zone 2: 60 dB day, 50 dB night) on 2013-03-01: day 55 complies, night 52 not."""
    return {"series": [
        {"tags": {"node": "sz-n", "sensor": "mic", "quantity": "laeq", "window": w},
         "columns": ["time", "value", "valid"], "values": [[MARCH_1_MS + h * HOUR_MS, v, True]]}
        for w, h, v in (("day", 6, 55.0), ("night", 22, 52.0))
    ]}  # fmt: skip


def canned(q: str) -> Mapping[str, Any]:
    if '"nodes"' in q:
        return INVENTORY
    if "chl_a" in q:
        return readings_answer({"chl_a": 20.0})
    if '"readings"' in q:
        return readings_answer({"do": 7.0, "nh3_n": 0.8})
    if "laeq" in q:
        return noise_answer()
    return o3_max_answer(3) if "max(" in q else windows_answer(3)


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
        return [canned(q) for q in queries]

    for module in (kinds, water_source, noise_source):
        monkeypatch.setattr(module, "ask", ask)
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


def test_every_kind_is_built(influx: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    day = ["--from", "2013-03-01", "--to", "2013-03-01", "--json"]
    figures = {}
    for kind in ("air", "water", "noise", "bloom"):
        code, out, err = run(["report", kind, *day], capsys)
        assert code == 0, err
        figures[kind] = json.loads(out)[kind]
    assert set(figures["air"]["nodes"]) == {"bj-x", "th-w", "sz-n"}
    # Each other kind reports on the nodes it applies to: th-w has a water body, sz-n a zone.
    site = figures["water"]["sites"]["th-w"]
    # NH3-N 0.8 mg/L is Class III (0.5 < 0.8 <= 1.0), DO 7.0 Class II: NH3-N decides.
    assert [(d["date"], d["class_name"], d["deciding"]) for d in site["days"]] == [
        ("2013-03-01", "III", ["nh3_n"])
    ]
    assert site["target"] == 3
    assert "No fleet file gives the water target of th-w" in figures["water"]["validity"]
    assert "held to Class III ([report.water] default_target)" in figures["water"]["validity"]
    zone = figures["noise"]["zones"]["2"]
    assert (zone["day"]["rate"], zone["night"]["rate"]) == (1.0, 0.0)
    assert figures["bloom"]["sites"]["th-w"]["days_above"] == {"who_low": 1, "who_moderate": 0}
    assert set(figures["bloom"]["sites"]) == {"th-w"}


def test_a_kind_with_no_node_it_applies_to_exits_2(
    influx: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["report", "noise", "--from", "2013-03-01", "--to", "2013-03-01",
                          "--group", "Taihu"], capsys)  # fmt: skip
    assert (code, out) == (2, "")
    assert "no selected node has a noise_zone" in err and "Traceback" not in err


def test_an_unknown_kind_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["report", "soil", "--from", "2013-03-01", "--to", "2013-03-01"], capsys)
    assert (code, out) == (2, "")
    assert "invalid choice: 'soil'" in err and "water" in err


def test_the_fleet_file_of_the_config_gives_the_water_target(
    influx: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(
        '[nodes.th-w]\nsite = "Taihu west"\nwater_body = "lake"\nwater_target = 2\n'
        'group = "Taihu"\n',
        encoding="utf-8",
    )
    config = tmp_path / "agg.toml"
    config.write_text(f'[fleet]\npath = "{fleet}"\n', encoding="utf-8")
    day = ["report", "water", "--from", "2013-03-01", "--to", "2013-03-01", "--json"]
    code, out, err = run([*day, "--config", str(config)], capsys)
    assert code == 0, err
    water = json.loads(out)["water"]
    site = water["sites"]["th-w"]
    assert (site["site"], site["target"], site["meets_target"]) == ("Taihu west", 2, False)
    assert "No fleet file gives" not in water["validity"] and str(fleet) in water["validity"]
    # A fleet file that is not valid is a bad file: exit 2, no traceback.
    fleet.write_text('[nodes.th-w]\nwater_body = "sea"\n', encoding="utf-8")
    code, out, err = run([*day, "--config", str(config)], capsys)
    assert (code, out) == (2, "") and "Traceback" not in err


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

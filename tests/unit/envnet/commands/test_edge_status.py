"""`envnet edge status --config node.toml`: the journal as an operator sees it, read-only;
a clear error when there is no journal. While a real agent runs:
tests/integration/envnet/test_edge_status.py."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from edge.journal import Journal
from envnet.cli import main
from envnet.commands.edge_status import StatusReport, duration, size
from schemas.messages import Reading

BASE = 1_796_000_000_000


def node_toml(tmp_path: Path, mqtt_url: str = "mqtt://127.0.0.1:1") -> Path:
    path = tmp_path / "node.toml"
    path.write_text(f"""
[node]
id = "status-node"
[mqtt]
url = "{mqtt_url}"
[sampling]
sample_interval_s = 0.2
report_interval_s = 1
[journal]
path = "{tmp_path / "journal.sqlite"}"
max_bytes = 1048576
max_age_s = 86400
[[sensors]]
id = "pm"
driver = "sim-air"
""")
    return path


def reading(ts: int) -> Reading:
    return Reading(
        ts=ts, quantity="pm2_5", value=20.0, unit="ug/m3", period_s=60, stat="mean", sensor="pm"
    )


def test_no_journal_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["edge", "status", "--config", str(node_toml(tmp_path))]) == 1
    err = capsys.readouterr().err
    assert "no journal here" in err and str(tmp_path / "journal.sqlite") in err
    assert not (tmp_path / "journal.sqlite").exists()  # and it did not create one


def test_status_shows_depth_age_last_ack_and_drops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = node_toml(tmp_path)
    journal = Journal(tmp_path / "journal.sqlite", 10**9, 60)
    (batch,) = journal.append([reading(BASE)], BASE, live=True)
    journal.append([reading(BASE + 60_000), reading(BASE + 120_000)], BASE, live=False)
    journal.ack([batch.seq], BASE + 2_000)
    journal.append([reading(BASE + 180_000)], BASE + 50_000, live=False)
    journal.enforce_bounds(BASE + 61_000)  # the chunk journaled at BASE is past 60 s
    # The agent still has the journal open: status reads it alongside.
    assert main(["edge", "status", "--config", str(config), "--json"]) == 0
    report = msgspec.json.decode(capsys.readouterr().out, type=StatusReport)
    j = report.journal
    assert (j.depth, j.chunks, j.dropped_readings) == (1, 1, 2)
    assert (j.last_ack_seq, j.last_ack_ms) == (batch.seq, BASE + 2_000)
    assert j.oldest_ts == BASE + 180_000 and not j.closed_cleanly
    assert (report.max_bytes, report.max_age_s, report.node) == (1048576, 86400, "status-node")
    journal.close()
    assert main(["edge", "--config", str(config), "status"]) == 0  # either order
    out = capsys.readouterr().out
    assert "depth      1 readings in 1 chunks" in out
    assert f"seq {batch.seq}" in out and "dropped    2 readings" in out
    assert "closed cleanly" in out


@pytest.mark.parametrize(
    ("seconds", "text"), [(5, "5s"), (65, "1m05s"), (3 * 3600 + 60, "3h01m"), (90061, "1d01h")]
)
def test_durations_read_like_a_person_writes_them(seconds: int, text: str) -> None:
    assert duration(seconds) == text


def test_sizes_in_binary_units() -> None:
    assert [size(n) for n in (512, 4096, 3 * 1024**2, 5 * 1024**3)] == [
        "512 B",
        "4.0 KiB",
        "3.0 MiB",
        "5.0 GiB",
    ]


def test_help_lists_status_beside_running_the_agent(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["edge", "status", "--help"])
    assert "--json" in capsys.readouterr().out

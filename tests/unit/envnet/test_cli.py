"""The `envnet` command in this process: help for every command, and config errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from envnet.cli import main


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["edge"],
        ["aggregator"],
        ["sim"],
        ["sim", "fleet"],
        ["sim", "replay-csv"],
        ["sim", "devices"],
        ["demo"],
        ["grafana", "push"],
        ["standards"],
        ["standards", "aqi"],
        ["standards", "water"],
        ["standards", "noise"],
        ["standards", "odour"],
        ["alerts"],
        ["alerts", "list"],
        ["alerts", "ack"],
        ["edge", "check"],
        ["edge", "status"],
    ],
)
def test_every_command_has_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--help"])
    assert exited.value.code == 0
    assert "usage: envnet" in capsys.readouterr().out


def test_config_error_exits_2_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "node.toml"
    path.write_text('[node]\nid = "n1"\n[[sensors]]\nid = "pm"\ndriver = "pms9999"\n')
    assert main(["edge", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err and "unknown driver 'pms9999'" in err
    assert main(["edge", "--config", str(tmp_path / "missing.toml")]) == 2

"""`envnet sim scenario check`: a file that would run exits 0, and each way a file can be
wrong exits 2 with the file and the field named, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from envnet.cli import main

LIBRARY = Path(__file__).resolve().parents[3] / "scenarios"
GOOD = """
[scenario]
name = "x"
accel = 600
duration_s = 600

[[node]]
id = "a"
kind = "odour"
zone = "plant-boundary-II"
"""


@pytest.mark.parametrize("file", sorted(LIBRARY.glob("*.toml")), ids=lambda f: f.stem)
def test_every_library_scenario_checks(file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "scenario", "check", str(file)]) == 0
    assert "is ready to run" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("", None),
        ('[[event]]\nnode = "a"\nkind = "step"\nquantity = "pm2_5"\nat_s = 1\nduration_s = 60\n'
         "value = 1.0\n", "does not measure pm2_5"),
        ('[[event]]\nnode = "a"\nkind = "step"\nquantity = "h2s"\nat_s = 1\nduration_s = 60\n',
         "a step event needs value"),
        ("[aggregator.alerts.liveness]\nnode_silence_s = -5\n", "node_silence_s"),
        ("[aggregator.alerts]\ncolour = 1\n", "unknown field `colour`"),
    ],
)  # fmt: skip
def test_a_bad_file_exits_2_naming_the_fault(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str, message: str | None
) -> None:
    file = tmp_path / "s.toml"
    file.write_text(GOOD + extra, encoding="utf-8")
    status = main(["sim", "scenario", "check", str(file)])
    err = capsys.readouterr().err
    if message is None:
        assert status == 0, err
        return
    assert status == 2
    assert message in err and str(file) in err
    assert "Traceback" not in err


def test_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "scenario", "run", str(tmp_path / "absent.toml")]) == 2
    assert "cannot read" in capsys.readouterr().err

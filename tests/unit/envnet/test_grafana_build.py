"""`envnet grafana build --out DIR` (issue 11): the generated assets and a provisioning tree
whose dashboard provider reads DIR/dashboards; a path it cannot write is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deploy.grafana.builder.__main__ import ROOT
from deploy.grafana.builder.assets import render
from envnet.cli import main


def test_build_writes_every_asset_and_points_the_provider_at_its_dashboards(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "grafana"
    assert main(["grafana", "build", "--out", str(out)]) == 0
    assert f"wrote {len(render())} files" in capsys.readouterr().out

    for relative, committed in render().items():
        built = (out / relative).read_text(encoding="utf-8")
        if relative != "provisioning/dashboards/envnet.yaml":
            assert built == committed, relative
            assert built == (ROOT / relative).read_text(encoding="utf-8"), relative
    provider = yaml.safe_load((out / "provisioning/dashboards/envnet.yaml").read_text())
    (only,) = provider["providers"]
    path = Path(only["options"]["path"])
    assert path == out.resolve() / "dashboards"
    assert sorted(p.name for p in path.glob("*.json")) == sorted(
        p.name for p in (ROOT / "dashboards").glob("*.json")
    )
    # Building again over the same directory is fine and changes nothing.
    assert main(["grafana", "build", "--out", str(out)]) == 0


def test_build_into_a_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "taken"
    target.write_text("not a directory\n")
    assert main(["grafana", "build", "--out", str(target)]) == 1
    err = capsys.readouterr().err
    assert err == f"envnet grafana build: {target} exists and is not a directory\n"


def test_build_where_it_cannot_write_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a directory is needed\n")
    assert main(["grafana", "build", "--out", str(blocker / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("envnet grafana build: cannot write under ")
    assert "Traceback" not in err

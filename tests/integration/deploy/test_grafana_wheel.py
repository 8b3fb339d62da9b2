"""The Grafana assets ship with the package: a wheel installed in a clean venv (not this
checkout) runs `envnet grafana build` and `envnet grafana push --dry-run` (issue 11).

Before, the assets lived only in the checkout, and the installed command said `asset
directory …/deploy/grafana not found`. The test builds the wheel with `pip wheel . --no-deps`
from a clean copy of the tree (setuptools would otherwise reuse a stale build/ directory,
whose files can hide a missing package), installs it with the aggregator extra into a fresh
venv (its dependencies from pip's configured index and cache), and runs the installed
`envnet` from a directory outside the checkout, so nothing is imported from the tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
# pip builds the wheel in an isolated environment and installs the extra's dependencies.
PIP_TIMEOUT_S = 600
# What a fresh clone does not have: build products, caches, the venv and local state.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", ".dev", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
    ".hypothesis",
)  # fmt: skip


def _run(args: list[str | Path], cwd: Path, timeout: float = PIP_TIMEOUT_S) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENVNET_", "PYTHON"))}
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_an_installed_wheel_builds_and_plans_the_grafana_push(tmp_path: Path) -> None:
    wheels, venv, out = tmp_path / "wheels", tmp_path / "venv", tmp_path / "grafana"
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    _run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-w", wheels, "-q"], source)
    (wheel,) = wheels.glob("envnet-*.whl")
    _run([sys.executable, "-m", "venv", venv], tmp_path)
    _run([venv / "bin" / "pip", "install", "-q", f"{wheel}[aggregator]"], tmp_path)
    envnet = venv / "bin" / "envnet"

    printed = _run([envnet, "grafana", "build", "--out", out], tmp_path, timeout=120)
    assert "wrote" in printed
    committed = sorted(
        str(p.relative_to(ROOT / "deploy" / "grafana"))
        for p in (ROOT / "deploy" / "grafana").rglob("*")
        if p.suffix in (".json", ".yaml") and "builder" not in p.parts
    )
    built = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert built == committed
    board = json.loads((out / "dashboards" / "map.json").read_text(encoding="utf-8"))
    assert board["uid"] == "envnet-map"
    provider = (out / "provisioning" / "dashboards" / "envnet.yaml").read_text(encoding="utf-8")
    assert json.dumps(str(out.resolve() / "dashboards")) in provider

    plan = _run([envnet, "grafana", "push", "--dry-run"], tmp_path, timeout=120)
    assert plan.startswith("dry run: nothing sent")
    for uid in ("envnet-influxdb", "envnet-map", "envnet-fleet", "envnet-node-silent"):
        assert uid in plan
    # The assets the installed command read are the installed package's, not this tree's.
    where = _run(
        [venv / "bin" / "python", "-c", "import deploy.grafana as g; print(g.__file__)"],
        tmp_path,
        timeout=60,
    )
    assert Path(where.strip()).is_relative_to(venv)

"""deploy/systemd/envnet-aggregator@.service: N replicas on one host, as hardened as the one
aggregator's unit, each instance computing its ENVNET_REPLICA and metrics port."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Final

import pytest

from tests.unit.deploy.test_pi import parse_unit

SYSTEMD: Final = Path(__file__).resolve().parents[3] / "deploy" / "systemd"
TEMPLATE: Final = SYSTEMD / "envnet-aggregator@.service"
SINGLE: Final = SYSTEMD / "envnet-aggregator.service"
BINARY: Final = "/opt/envnet/venv/bin/envnet aggregator --config /etc/envnet/agg.toml"


def service(path: Path) -> dict[str, list[str]]:
    return parse_unit(path.read_text())["Service"]


def test_the_template_keeps_every_setting_of_the_single_unit_but_how_it_starts() -> None:
    template, single = service(TEMPLATE), service(SINGLE)
    differ = {"ExecStart", "EnvironmentFile"}
    assert {k: v for k, v in template.items() if k not in differ} == {
        k: v for k, v in single.items() if k not in differ
    }
    assert template["EnvironmentFile"] == [*single["EnvironmentFile"], "/etc/envnet/replicas.env"]
    assert parse_unit(TEMPLATE.read_text())["Unit"]["Conflicts"] == ["envnet-aggregator.service"]


def exec_start(instance: str) -> str:
    """The instance's shell command, as systemd hands it to /bin/sh: %i expanded, $$ -> $,
    and the aggregator replaced by `env`, which prints the environment it would get."""
    (line,) = service(TEMPLATE)["ExecStart"]
    match = re.fullmatch(r"/bin/sh -c '(.*)'", line)
    assert match, line
    command = match.group(1).replace("%i", instance).replace("$$", "$")
    assert BINARY in command
    return command.replace(f"exec {BINARY} --log-format json", "exec env")


def run(instance: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", "-c", exec_start(instance)],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_each_instance_gets_its_replica_and_metrics_port() -> None:
    done = run("1", {"ENVNET_REPLICAS": "3"})
    assert done.returncode == 0, done.stderr
    assert "ENVNET_REPLICA=1/3" in done.stdout.splitlines()
    assert "ENVNET_METRICS_PORT=9109" in done.stdout.splitlines()
    done = run("0", {"ENVNET_REPLICAS": "2", "ENVNET_METRICS_BASE_PORT": "9200"})
    assert {"ENVNET_REPLICA=0/2", "ENVNET_METRICS_PORT=9200"} <= set(done.stdout.splitlines())


def test_a_missing_count_stops_the_instance_with_a_message() -> None:
    done = run("0", {})
    assert done.returncode != 0
    assert "set ENVNET_REPLICAS in /etc/envnet/replicas.env" in done.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verifies_the_template_and_rates_it_ok(tmp_path: Path) -> None:
    copy = tmp_path / TEMPLATE.name
    copy.write_text(TEMPLATE.read_text().replace(f"exec {BINARY}", "exec /bin/true"))
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(copy)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stderr
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(copy)],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", security.stdout)
    assert found, security.stdout[-500:] + security.stderr
    assert float(found.group(1)) <= 2.0, security.stdout

"""The installed `envnet standards` command runs as a subprocess without a traceback."""

from __future__ import annotations

import subprocess
import sys

ENVNET = [sys.executable, "-m", "envnet.cli"]


def test_the_installed_command_runs_without_a_traceback() -> None:
    good = subprocess.run(
        [*ENVNET, "standards", "noise", "--zone", "4a", "--period", "night", "--leq", "58"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert good.returncode == 0 and "limit 55 dB(A)" in good.stdout
    bad = subprocess.run(
        [*ENVNET, "standards", "aqi", "--pm2_5", "-3", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and bad.stdout == ""
    assert "Traceback" not in bad.stderr and bad.stderr.count("\n") == 1

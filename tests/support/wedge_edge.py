"""A real `envnet edge` process with one extra driver, "wedge", whose read blocks while a
file exists: how the watchdog test wedges the agent's loop from outside.

Run as `python -m tests.support.wedge_edge edge --config node.toml`. The driver is added to the
registry in this child process only.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edge.drivers.base import Sample
from edge.drivers.registry import DRIVERS
from envnet.cli import main
from schemas.messages import Flag


class WedgeDriver:
    """PM readings; while `wedge_file` exists, read() blocks (as a serial read with no
    timeout on a dead line would) after touching `wedge_file` + ".entered"."""

    def __init__(self, sensor_id: str, options: Mapping[str, Any]) -> None:
        self._sensor_id = sensor_id
        self._wedge = Path(str(options["wedge_file"]))
        self._entered = self._wedge.with_name(self._wedge.name + ".entered")

    @property
    def sensor_id(self) -> str:
        return self._sensor_id

    @property
    def name(self) -> str:
        return "wedge"

    @property
    def flags(self) -> tuple[Flag, ...]:
        return ("simulated",)

    def read(self, at_ms: int) -> Sequence[Sample]:
        if self._wedge.exists():
            self._entered.touch()
            while self._wedge.exists():
                time.sleep(0.02)  # the blocked read being simulated, not a test wait
            self._entered.unlink()
        return [Sample("pm2_5", 12.0)]

    def close(self) -> None:
        """Nothing to release."""


if __name__ == "__main__":
    DRIVERS["wedge"] = f"{__name__}:WedgeDriver"
    sys.exit(main(sys.argv[1:]))

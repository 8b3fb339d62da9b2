"""Driver names in node.toml, resolved to classes only when a node uses them.

Resolution is lazy so that a Pi loads only the drivers it has wired, and so that the
simulators are never imported on a production node.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, Final

from edge.drivers.base import Driver
from envnet.configfile import ConfigError

DriverFactory = Callable[[str, Mapping[str, Any]], Driver]

DRIVERS: Final[dict[str, str]] = {
    # Hardware (issue #4); options are documented in each module.
    "pms5003": "edge.drivers.pms5003:from_options",
    "sds011": "edge.drivers.sds011:from_options",
    "modbus": "edge.drivers.modbus_sensor:from_options",
    "bme280": "edge.drivers.bme280:from_options",
    "ads1115-gas": "edge.drivers.ads1115:from_options",
    # Simulated sensors (pure models, no bytes).
    "sim-air": "simulators.drivers:SimAirDriver",
    "sim-met": "simulators.drivers:SimMetDriver",
    "sim-noise": "simulators.drivers:SimNoiseDriver",
    "sim-odour": "simulators.drivers:SimOdourDriver",
    "sim-water": "simulators.drivers:SimWaterDriver",
}


class UnknownDriverError(ConfigError):
    """node.toml names a driver that does not exist, or whose options are wrong."""


def create_driver(name: str, sensor_id: str, options: Mapping[str, Any]) -> Driver:
    target = DRIVERS.get(name)
    if target is None:
        known = ", ".join(sorted(DRIVERS))
        raise UnknownDriverError(f"sensor {sensor_id}: unknown driver {name!r} (known: {known})")
    module_name, _, attribute = target.partition(":")
    factory: DriverFactory = getattr(importlib.import_module(module_name), attribute)
    try:
        return factory(sensor_id, options)
    except (TypeError, ValueError) as exc:
        raise UnknownDriverError(f"sensor {sensor_id}: bad options for {name}: {exc}") from None

"""Driver names in node.toml, resolved to classes only when a node uses them.

Resolution is lazy so that a Pi loads only the drivers it has wired. The hardware drivers are
the edge's own; other drivers (the simulated sensors) are registered by the package that
provides them, as entry points (edge.drivers.plugins), and imported only when named.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, Final, cast

from edge.drivers import plugins
from edge.drivers.base import Driver
from schemas.runtime.configfile import ConfigError

DriverFactory = Callable[[str, Mapping[str, Any]], Driver]

DRIVERS: Final[dict[str, str]] = {
    # Hardware (issue #4); options are documented in each module.
    "pms5003": "edge.drivers.pms5003:from_options",
    "sds011": "edge.drivers.sds011:from_options",
    "modbus": "edge.drivers.modbus_sensor:from_options",
    "bme280": "edge.drivers.bme280:from_options",
    "ads1115-gas": "edge.drivers.ads1115:from_options",
}


class UnknownDriverError(ConfigError):
    """node.toml names a driver that does not exist, or whose options are wrong."""


def known_drivers() -> list[str]:
    """Every driver name node.toml may use: the hardware's and the registered plugins'."""
    return sorted({*DRIVERS, *plugins.names(plugins.DRIVER_GROUP)})


def _factory(name: str) -> DriverFactory | None:
    target = DRIVERS.get(name)
    if target is not None:
        module_name, _, attribute = target.partition(":")
        factory: DriverFactory = getattr(importlib.import_module(module_name), attribute)
        return factory
    plugin = plugins.find(plugins.DRIVER_GROUP, name)
    return None if plugin is None else cast(DriverFactory, plugin.load())


def create_driver(name: str, sensor_id: str, options: Mapping[str, Any]) -> Driver:
    factory = _factory(name)
    if factory is None:
        known = ", ".join(known_drivers())
        raise UnknownDriverError(f"sensor {sensor_id}: unknown driver {name!r} (known: {known})")
    try:
        return factory(sensor_id, options)
    except (TypeError, ValueError) as exc:
        raise UnknownDriverError(f"sensor {sensor_id}: bad options for {name}: {exc}") from None

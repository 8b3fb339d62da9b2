"""Drivers and I2C buses that other packages provide, found through entry points.

The edge knows its hardware drivers by name (edge.drivers.registry). Anything else a node
may name in node.toml, the simulated sensors and the simulated I2C buses among them, is
registered by the package that provides it, in its `[project.entry-points]`:

- group `envnet.drivers`: a driver name → a factory `(sensor_id, options) -> Driver`;
- group `envnet.i2c_buses`: a bus scheme (the part before ":" in `bus = "sim:<name>"`) → a
  function `(name) -> bus` that returns an object with smbus2.SMBus's methods.

So the edge never names another package: a Pi whose node.toml names only hardware loads no
plugin at all, and a plugin is imported only when a node names it.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Final

DRIVER_GROUP: Final = "envnet.drivers"
I2C_BUS_GROUP: Final = "envnet.i2c_buses"


def names(group: str) -> list[str]:
    """The names registered in `group`, sorted."""
    return sorted(ep.name for ep in entry_points(group=group))


def find(group: str, name: str) -> EntryPoint | None:
    """The entry point `name` of `group`, not yet loaded; None if nothing registered it."""
    for ep in entry_points(group=group, name=name):
        return ep
    return None

"""The physical world one simulated device sits in: any quantity's canonical value at an instant.

The byte-level device simulators (uart_pty, modbus_slave, fake_i2c) encode what this returns,
so a PMS5003 frame, a sonde's registers and a BME280's ADC counts all come from the same pure
models of simulators.signals, and a device of a seed sees the same weather as the simulated
drivers of that seed.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Annotated

import msgspec

from schemas.quantities import SPECS, Family, Quantity
from simulators.signals import (
    TROPHIC_STATES,
    AirModel,
    AirParams,
    Body,
    MetModel,
    NoiseModel,
    NoiseParams,
    OdourModel,
    OdourParams,
    TrophicState,
    WaterModel,
    WaterParams,
    Zone,
)

Share = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class SiteOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Where a simulated device is: the parameters of each family's model (see signals)."""

    seed: int = 1
    traffic: Share = 0.5
    haze: bool = False
    zone: Zone = "2"
    source_bearing_deg: float = 0.0
    source_strength: Annotated[float, msgspec.Meta(ge=0.0, le=1000.0)] = 1.0
    plume_width_deg: Annotated[float, msgspec.Meta(ge=1.0, le=90.0)] = 15.0
    body: Body = "lake"
    trophic: Share | TrophicState = "eutrophic"


def wall_ms() -> int:
    """The default clock of the device simulators: now, epoch milliseconds UTC."""
    return time.time_ns() // 1_000_000


class Site:
    """Every family's model for one site; `values(t_ms, quantities)` evaluates only those asked."""

    def __init__(self, options: SiteOptions | None = None) -> None:
        opts = options or SiteOptions()
        self.options = opts
        trophic = TROPHIC_STATES[opts.trophic] if isinstance(opts.trophic, str) else opts.trophic
        self._air = AirModel(AirParams(traffic=opts.traffic, haze=opts.haze), opts.seed)
        self._met = MetModel(opts.seed)
        self._noise = NoiseModel(NoiseParams(zone=opts.zone), opts.seed)
        self._odour = OdourModel(
            OdourParams(
                source_bearing_deg=opts.source_bearing_deg,
                source_strength=opts.source_strength,
                plume_width_deg=opts.plume_width_deg,
            ),
            opts.seed,
        )
        self._water = WaterModel(WaterParams(body=opts.body, trophic=trophic), opts.seed)

    def family(self, family: Family, t_ms: int) -> dict[Quantity, float]:
        if family == "air":
            pairs = self._air.at(t_ms).pairs()
        elif family == "met":
            pairs = self._met.at(t_ms).pairs()
        elif family == "noise":
            pairs = self._noise.at(t_ms).pairs()
        elif family == "odour":
            pairs = self._odour.at(t_ms).pairs()
        else:
            pairs = self._water.at(t_ms).pairs()
        return dict(pairs)

    def values(self, t_ms: int, quantities: Iterable[Quantity]) -> dict[Quantity, float]:
        wanted = list(quantities)
        result: dict[Quantity, float] = {}
        for family in dict.fromkeys(SPECS[q].family for q in wanted):
            result.update(self.family(family, t_ms))
        return {q: result[q] for q in wanted}

"""The kinds of node a simulated fleet is made of: which sensors a kind carries (simulated
drivers and their options, simulators.drivers) and how the fleet inventory classifies it
(the fields of aggregator.fleet.NodeInfo, as plain TOML values: simulators cannot import
the aggregator).

A node is a kind and a `zone`, whose meaning depends on the kind's family:

- air kinds: the GB 3095 zone class, "1" or "2" (docs/standards.md §1.3) → `air_zone`;
- noise: the GB 3096-2008 functional zone, "0".."4b" (§3.1) → `noise_zone`, and the zone the
  sim-noise driver models;
- odour: the GB 14554-93 Table 1 column (§4.1) → `odour_grade`: "I", "II-new",
  "II-existing", "III-new", "III-existing", or the same as "plant-boundary-…" with
  "plant-boundary-II" = II-new and "plant-boundary-III" = III-new;
- water kinds: the GB 3838-2002 target class, "I".."V" or "1".."5" (§5) → `water_target`.

Zones given to simulated nodes are examples, not an official zoning map (UNVERIFIED, §1.3).
Everything here is pure: a node's specification is a function of its arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from simulators.drivers import (
    AirOptions,
    CommonOptions,
    MetOptions,
    NoiseOptions,
    OdourOptions,
    WaterOptions,
)

# A classification value as the inventory TOML holds it.
InventoryValue = str | int


@dataclass(frozen=True, slots=True)
class SensorSpec:
    id: str
    driver: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NodeSpec:
    node: str
    site: str
    # None: the node has no known position (the inventory then has no `location`).
    lat: float | None
    lon: float | None
    sensors: tuple[SensorSpec, ...]
    # Fleet-inventory classification (aggregator.fleet.NodeInfo fields, InventoryValue
    # values), in the order inventory_toml writes them. Typed Any so that a test can spread
    # it into NodeInfo(**spec.inventory).
    inventory: dict[str, Any] = field(default_factory=dict)


# -- zones ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ZoneScheme:
    """One family's zone vocabulary: the accepted spellings and the inventory value each
    stands for, written to the inventory field `field`."""

    field: str
    standard: str
    values: Mapping[str, InventoryValue]

    def resolve(self, zone: str, kind: str) -> InventoryValue:
        value = self.values.get(zone)
        if value is None:
            valid = ", ".join(repr(z) for z in self.values)
            msg = f"zone {zone!r} is not a {self.standard} zone of kind {kind!r} (valid: {valid})"
            raise ValueError(msg)
        return value


# GB 3095-2026 §4.1 (docs/standards.md §1.3): Class 1 zones take Grade I limits, Class 2
# zones Grade II.
AIR_ZONES: Final = ZoneScheme("air_zone", "GB 3095 zone class", {"1": 1, "2": 2})
# GB 3096-2008 §4 (docs/standards.md §3.1).
NOISE_ZONES: Final = ZoneScheme(
    "noise_zone", "GB 3096 functional zone", {z: z for z in ("0", "1", "2", "3", "4a", "4b")}
)
# GB 14554-93 Table 1 columns (docs/standards.md §4.1); the "plant-boundary-" spellings
# are the scenario files' (issue 12), where a bare grade II or III means the stricter
# "new, expanded or rebuilt" column.
_ODOUR_GRADES: Final = ("I", "II-new", "II-existing", "III-new", "III-existing")
ODOUR_ZONES: Final = ZoneScheme(
    "odour_grade",
    "GB 14554-93 grade",
    {
        **{g: g for g in _ODOUR_GRADES},
        **{f"plant-boundary-{g}": g for g in _ODOUR_GRADES},
        "plant-boundary-II": "II-new",
        "plant-boundary-III": "III-new",
    },
)
# GB 3838-2002 classes I..V (docs/standards.md §5), by numeral or number.
_ROMAN: Final = ("I", "II", "III", "IV", "V")
WATER_ZONES: Final = ZoneScheme(
    "water_target",
    "GB 3838-2002 target class",
    {**{r: i for i, r in enumerate(_ROMAN, 1)}, **{str(i): i for i in range(1, 6)}},
)

# GB 3096-2008 §4: what each functional zone is, as the site type of a noise-only node.
NOISE_SITE_TYPES: Final[Mapping[str, str]] = {
    "0": "quiet-area",
    "1": "residential",
    "2": "mixed",
    "3": "industrial",
    "4a": "roadside",
    "4b": "railside",
}


def _noise_zone_option(sensors: tuple[SensorSpec, ...], zone: str) -> tuple[SensorSpec, ...]:
    """The sim-noise drivers model the node's functional zone."""
    return tuple(
        SensorSpec(s.id, s.driver, {**s.options, "zone": zone}) if s.driver == "sim-noise" else s
        for s in sensors
    )


# -- kinds ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeKind:
    """A kind of simulated node: its sensors (kind defaults; a node may override options),
    its fixed classification, and how its `zone` classifies it."""

    name: str
    description: str
    sensors: tuple[SensorSpec, ...]
    zones: ZoneScheme
    default_zone: str
    site_type: str
    # Classification every node of the kind has (e.g. water_body), before the zone's.
    fixed: Mapping[str, InventoryValue] = field(default_factory=dict)
    # Inventory fields set after the zone's (e.g. a roadside node's noise zone).
    extra: Mapping[str, InventoryValue] = field(default_factory=dict)
    # A zone-dependent site type, where the kind has one (noise).
    site_types: Mapping[str, str] = field(default_factory=dict)
    # Sensors adjusted to the zone (noise: the sim-noise zone option).
    adjust: Callable[[tuple[SensorSpec, ...], str], tuple[SensorSpec, ...]] | None = None


def _air(traffic: float) -> tuple[SensorSpec, ...]:
    return (
        SensorSpec("pm", "sim-air", {"traffic": traffic, "haze": True}),
        SensorSpec("met", "sim-met", {}),
    )


def _sonde(**options: Any) -> tuple[SensorSpec, ...]:
    return (SensorSpec("sonde", "sim-water", options),)


KINDS: Final[Mapping[str, NodeKind]] = {
    k.name: k
    for k in (
        NodeKind("air", "urban background air quality and weather", _air(0.4), AIR_ZONES, "2",
                 "urban-background"),
        NodeKind("air-roadside", "traffic air quality, weather and roadside noise (zone 4a)",
                 (*_air(0.9), SensorSpec("snd", "sim-noise", {"zone": "4a"})), AIR_ZONES, "2",
                 "roadside", extra={"noise_zone": "4a"}),
        NodeKind("air-background", "clean regional background air quality and weather",
                 _air(0.05), AIR_ZONES, "1", "regional-background"),
        NodeKind("noise", "environmental noise (LAeq, LAmax) of a functional zone",
                 (SensorSpec("snd", "sim-noise", {}),), NOISE_ZONES, "2", "mixed",
                 site_types=NOISE_SITE_TYPES, adjust=_noise_zone_option),
        NodeKind("odour", "H2S, NH3 and odour concentration at a plant boundary",
                 (SensorSpec("gas", "sim-odour", {"source_bearing_deg": 0.0,
                                                  "source_strength": 1.0}),),
                 ODOUR_ZONES, "II-new", "industrial-boundary"),
        NodeKind("water-lake", "a mesotrophic lake water-quality sonde",
                 _sonde(body="lake", trophic="mesotrophic"), WATER_ZONES, "III", "lake",
                 fixed={"water_body": "lake"}),
        NodeKind("water-river", "a river water-quality sonde", _sonde(body="river"),
                 WATER_ZONES, "III", "river", fixed={"water_body": "river"}),
        NodeKind("bloom", "a eutrophic lake buoy where cyanobacteria bloom (e.g. Taihu)",
                 _sonde(body="lake", trophic="eutrophic"), WATER_ZONES, "III", "lake",
                 fixed={"water_body": "lake"}),
    )
}  # fmt: skip

# Each simulated driver's options struct, to check a node's options before any agent runs.
OPTION_TYPES: Final[Mapping[str, type[CommonOptions]]] = {
    "sim-air": AirOptions,
    "sim-met": MetOptions,
    "sim-noise": NoiseOptions,
    "sim-odour": OdourOptions,
    "sim-water": WaterOptions,
}


def kind_named(kind: str) -> NodeKind:
    found = KINDS.get(kind)
    if found is None:
        raise ValueError(f"unknown node kind {kind!r} (valid: {', '.join(KINDS)})")
    return found


# -- nodes ----------------------------------------------------------------------------------


def kind_node(
    node_id: str,
    kind: str,
    zone: str | None = None,
    *,
    site: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    group: str | None = None,
    site_type: str | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> NodeSpec:
    """A node of `kind` in `zone` (the kind's default zone when None), unseeded: its
    sensors carry the kind's options overlaid with `options[sensor id]`. The site defaults
    to the node id, the site type to the kind's. Raises ValueError naming the valid values
    on an unknown kind, zone, sensor id or option."""
    spec = kind_named(kind)
    zone = spec.default_zone if zone is None else zone
    zone_value = spec.zones.resolve(zone, kind)
    sensors = _with_options(spec.sensors, options or {}, kind)
    if spec.adjust is not None:
        sensors = spec.adjust(sensors, str(zone_value))
    inventory: dict[str, InventoryValue] = {
        **spec.fixed,
        spec.zones.field: zone_value,
        **spec.extra,
    }
    inventory = {k: inventory[k] for k in _INVENTORY_ORDER if k in inventory}
    if group is not None:
        inventory["group"] = group
    inventory["site_type"] = site_type or spec.site_types.get(str(zone_value), spec.site_type)
    return NodeSpec(node_id, site or node_id, lat, lon, sensors, inventory)


# NodeInfo's classification fields, in the order the inventory lists them.
_INVENTORY_ORDER: Final = ("air_zone", "noise_zone", "odour_grade", "water_body", "water_target")


def _with_options(
    sensors: tuple[SensorSpec, ...], options: Mapping[str, Mapping[str, Any]], kind: str
) -> tuple[SensorSpec, ...]:
    ids = [s.id for s in sensors]
    unknown = sorted(set(options) - set(ids))
    if unknown:
        msg = f"kind {kind!r} has no sensor {unknown[0]!r} (its sensors: {', '.join(ids)})"
        raise ValueError(msg)
    out = tuple(SensorSpec(s.id, s.driver, {**s.options, **options.get(s.id, {})}) for s in sensors)
    for sensor in out:
        check_options(sensor)
    return out


def check_options(sensor: SensorSpec) -> None:
    """Raise ValueError if the sensor's driver would refuse its options."""
    kind = OPTION_TYPES.get(sensor.driver)
    if kind is None:
        return
    try:
        msgspec.convert(sensor.options, kind, strict=True)
    except msgspec.ValidationError as exc:
        valid = ", ".join(f.name for f in msgspec.structs.fields(kind))
        msg = f"sensor {sensor.id!r} ({sensor.driver}) options: {exc} (valid options: {valid})"
        raise ValueError(msg) from None


def sensor_seed(seed: int, index: int, position: int) -> int:
    """The seed of the `position`-th sensor (0..9) of the `index`-th node of a fleet of
    `seed`, as the simulated fleet has always derived them: distinct within a fleet."""
    return seed * 1000 + index * 10 + position


def seeded(
    spec: NodeSpec, *, seed: int, index: int, origin_ms: int, node_id: str | None = None
) -> NodeSpec:
    """`spec` (renamed `node_id` if given) with each sensor's seed (sensor_seed) and the
    episodes' origin set."""
    sensors = tuple(
        SensorSpec(
            s.id,
            s.driver,
            {**s.options, "seed": sensor_seed(seed, index, j), "origin_ms": origin_ms},
        )
        for j, s in enumerate(spec.sensors)
    )
    return NodeSpec(
        node_id or spec.node, spec.site, spec.lat, spec.lon, sensors, dict(spec.inventory)
    )


def node_spec(
    node_id: str,
    kind: str,
    zone: str | None = None,
    *,
    seed: int,
    index: int,
    origin_ms: int,
    site: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    group: str | None = None,
    site_type: str | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> NodeSpec:
    """A seeded node of `kind` (see kind_node), the `index`-th of a fleet of `seed`, with
    its episodes timed from `origin_ms`."""
    spec = kind_node(
        node_id, kind, zone, site=site, lat=lat, lon=lon, group=group, site_type=site_type,
        options=options,
    )  # fmt: skip
    return seeded(spec, seed=seed, index=index, origin_ms=origin_ms)

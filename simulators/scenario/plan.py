"""What a scenario run does, worked out before anything starts. Pure.

From a checked scenario and its event-time origin: each simulated node's sensors with their
scripted perturbations, the node and link actions on the scenario clock (offline, link
outages), the fleet inventory, and the aggregator's settings for the run.

The aggregator runs on the scenario's clock (agg.toml [clock]), so "late", window closing
and the liveness deadman are judged in scenario time, as they would be live. Its time limits
are event seconds, though, and at `accel` event seconds per wall second a machine that
stalls for one wall second looks, to those limits, like a node silent for `accel` seconds.
So the limits that measure delay are raised to at least `tolerance_wall_s` wall seconds of
scenario time (`timing_settings`), and the scenario's own [aggregator] table can set them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

from schemas.quantities import SPECS, Family, Quantity
from simulators.drivers import (
    SimAirDriver,
    SimMetDriver,
    SimNoiseDriver,
    SimOdourDriver,
    SimWaterDriver,
)
from simulators.node_kinds import NodeSpec, SensorSpec, node_spec
from simulators.scenario.spec import SENSOR_EVENTS, EventEntry, ScenarioSpec

_DRIVERS: Final = {
    d.NAME: d for d in (SimAirDriver, SimMetDriver, SimNoiseDriver, SimOdourDriver, SimWaterDriver)
}
DRIVER_FAMILY: Final[dict[str, Family]] = {name: d.FAMILY for name, d in _DRIVERS.items()}
# Wall seconds of delay (a busy machine, a slow write) the run's time limits tolerate.
TOLERANCE_WALL_S: Final = 20.0
# A replay node's inventory: PRSA stations are Beijing urban sites, judged as GB 3095 class 2
# zones (docs/standards.md §1.3).
REPLAY_INVENTORY: Final[dict[str, str | int]] = {
    "air_zone": 2,
    "group": "replay",
    "site_type": "replay",
}

ActionKind = Literal["offline", "online", "cut", "restore"]


class PlanError(ValueError):
    """A scenario that parses but cannot be played (an unknown kind or zone, a perturbation
    of a quantity the node does not measure)."""


@dataclass(frozen=True, slots=True, order=True)
class Action:
    at_ms: int
    node: str
    kind: ActionKind


@dataclass(frozen=True, slots=True)
class Plan:
    origin_ms: int
    nodes: tuple[NodeSpec, ...]
    actions: tuple[Action, ...]
    # Nodes whose MQTT connection goes through a link the runner can cut.
    cut_nodes: frozenset[str]


def plan(spec: ScenarioSpec, origin_ms: int) -> Plan:
    nodes = tuple(_node(spec, index, origin_ms) for index in range(len(spec.nodes)))
    actions = sorted(a for e in spec.events for a in _actions(spec, e, origin_ms))
    cut = frozenset(e.node for e in spec.events if e.kind == "link_outage")
    return Plan(origin_ms, nodes, tuple(actions), cut)


def _node(spec: ScenarioSpec, index: int, origin_ms: int) -> NodeSpec:
    entry = spec.nodes[index]
    try:
        node = node_spec(
            entry.id,
            entry.kind,
            entry.zone,
            seed=spec.header.seed,
            index=index,
            origin_ms=origin_ms,
            site=entry.site,
            lat=entry.lat,
            lon=entry.lon,
            group=entry.group,
        )
    except ValueError as exc:
        raise PlanError(f"{spec.source}: $.node[{index}] ({entry.id}): {exc}") from None
    events = [e for e in spec.events if e.node == entry.id and e.kind in SENSOR_EVENTS]
    sensors = [_perturbed(spec, node, sensor, events) for sensor in node.sensors]
    for event in events:
        if event.quantity is not None and not any(
            _measures(s, event.quantity) for s in node.sensors
        ):
            raise PlanError(
                f"{spec.source}: {entry.id} ({entry.kind}) does not measure {event.quantity}"
            )
    for sensor in sensors:
        _check_driver(spec, entry.id, sensor)
    return replace(node, sensors=tuple(sensors))


def _check_driver(spec: ScenarioSpec, node: str, sensor: SensorSpec) -> None:
    """Build the sensor's driver once (pure, no I/O): its options, perturbations included,
    are refused here, before any service starts, rather than by an agent mid-run."""
    driver = _DRIVERS.get(sensor.driver)
    if driver is None:
        return
    try:
        driver(sensor.id, sensor.options).close()
    except ValueError as exc:
        raise PlanError(f"{spec.source}: {node}: {exc}") from None


def _measures(sensor: SensorSpec, quantity: Quantity) -> bool:
    return DRIVER_FAMILY.get(sensor.driver) == SPECS[quantity].family


def _perturbed(
    spec: ScenarioSpec, node: NodeSpec, sensor: SensorSpec, events: list[EventEntry]
) -> SensorSpec:
    mine = [e for e in events if (e.quantity is None or _measures(sensor, e.quantity))]
    if not mine:
        return sensor
    items = [_perturbation(spec, e) for e in mine]
    earlier = sensor.options.get("perturbations", [])
    options = {**sensor.options, "perturbations": [*earlier, *items]}
    return replace(sensor, options=options)


def _perturbation(spec: ScenarioSpec, event: EventEntry) -> dict[str, object]:
    item: dict[str, object] = {
        "kind": event.kind,
        "start_s": event.at_s,
        "duration_s": spec.event_duration_s(event),
    }
    if event.quantity is not None:
        item["quantity"] = event.quantity
    if event.value is not None:
        item["value"] = event.value
    return item


def _actions(spec: ScenarioSpec, event: EventEntry, origin_ms: int) -> list[Action]:
    pairs: dict[str, tuple[ActionKind, ActionKind]] = {
        "offline": ("offline", "online"),
        "link_outage": ("cut", "restore"),
    }
    if event.kind not in pairs:
        return []
    begin, end = pairs[event.kind]
    start = origin_ms + int(event.at_s * 1000)
    stop = start + int(spec.event_duration_s(event) * 1000)
    return [Action(start, event.node, begin), Action(stop, event.node, end)]


def inventory_nodes(spec: ScenarioSpec, nodes: tuple[NodeSpec, ...]) -> list[NodeSpec]:
    """Every node the run's aggregator must know: the simulated ones and the replays."""
    replays = [
        NodeSpec(r.node, f"{spec.csv_path(r).stem} replay"[:100], None, None, (),
                 dict(REPLAY_INVENTORY))
        for r in spec.replays
    ]  # fmt: skip
    return [*nodes, *replays]


def timing_settings(accel: float, tolerance_wall_s: float = TOLERANCE_WALL_S) -> dict[str, Any]:
    """The aggregator's delay limits, in event seconds, raised to tolerate a busy machine.

    Defaults (aggregator/engine): late_after_s 900, windows.close_after_s 300 (below
    late_after_s), liveness node_silence_s 300 and quantity_silence_s 900."""
    slack = accel * tolerance_wall_s
    late = int(max(900.0, slack))
    return {
        "late_after_s": late,
        "windows": {"close_after_s": int(max(300.0, slack / 2)), "max_future_s": 0},
        "liveness": {
            "node_silence_s": max(300.0, slack),
            "quantity_silence_s": max(900.0, slack),
        },
    }


def aggregator_settings(
    spec: ScenarioSpec, *, fleet_path: str, state_dir: str, metrics_port: int,
    origin_ms: int, anchor_wall_ms: int,
) -> dict[str, Any]:  # fmt: skip
    """agg.toml for the run: the runner's settings, then the scenario's [aggregator] over
    them. The broker and database come from ENVNET_* variables."""
    base: dict[str, Any] = {
        "fleet": {"path": fleet_path},
        "metrics": {"host": "127.0.0.1", "port": metrics_port},
        "state": {"dir": state_dir},
        "clock": {
            "origin_ms": origin_ms,
            "rate": spec.header.accel,
            "anchor_wall_ms": anchor_wall_ms,
        },
        "alerts": timing_settings(spec.header.accel),
    }
    return merged(base, spec.aggregator)


def merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`, table by table."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out

"""A simulated Suzhou fleet: node specifications, their edge configs and the fleet inventory.

The ten sites are illustrative, placed at real Suzhou landmarks; their zone classes are
plausible guesses, not the official zoning maps (UNVERIFIED, docs/standards.md §1.3,
§3.2). Everything is derived from a seed, so a fleet is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from edge.config import (
    DrainSection,
    EdgeConfig,
    JournalSection,
    MqttSection,
    NodeSection,
    SamplingSection,
    SensorSection,
)


@dataclass(frozen=True, slots=True)
class SensorSpec:
    id: str
    driver: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NodeSpec:
    node: str
    site: str
    lat: float
    lon: float
    sensors: tuple[SensorSpec, ...]
    # Fleet-inventory classification (aggregator.fleet.NodeInfo fields).
    inventory: dict[str, Any] = field(default_factory=dict)


# The demo's guaranteed early alert: an H2S release at the wastewater plant boundary that
# starts 30 event-seconds in and lasts an event-hour, peaking at 150 µg/m³, well over the
# GB 14554-93 Table 1 Grade II (new) limit of 0.06 mg/m³ = 60 µg/m³.
WWTP_EPISODE: Final = {
    "quantity": "h2s",
    "start_s": 30,
    "duration_s": 3600,
    "ramp_s": 120,
    "peak": 150.0,
}


def city_nodes() -> tuple[NodeSpec, ...]:
    air_met = (
        SensorSpec("pm", "sim-air", {"traffic": 0.9, "haze": True}),
        SensorSpec("met", "sim-met", {}),
    )
    return (
        NodeSpec("sz-sip-roadside", "SIP Xinghu Street roadside", 31.3080, 120.7230,
                 (*air_met, SensorSpec("snd", "sim-noise", {"zone": "4a"})),
                 {"air_zone": 2, "noise_zone": "4a", "group": "SIP", "site_type": "roadside"}),
        NodeSpec("sz-gusu-oldtown", "Gusu old town, Pingjiang Road", 31.3170, 120.6330,
                 (SensorSpec("pm", "sim-air", {"traffic": 0.4, "haze": True}),
                  SensorSpec("met", "sim-met", {})),
                 {"air_zone": 2, "group": "Gusu", "site_type": "urban-background"}),
        NodeSpec("sz-xishan-park", "Xishan island, Taihu scenic area", 31.1040, 120.3200,
                 (SensorSpec("pm", "sim-air", {"traffic": 0.05, "haze": True}),
                  SensorSpec("met", "sim-met", {})),
                 {"air_zone": 1, "group": "Wuzhong", "site_type": "regional-background"}),
        NodeSpec("sz-ring-noise", "Middle Ring elevated road, Nanhuan", 31.2840, 120.6300,
                 (SensorSpec("snd", "sim-noise", {"zone": "4a"}),),
                 {"noise_zone": "4a", "group": "Gusu", "site_type": "roadside"}),
        NodeSpec("sz-res-noise", "Residential quarter, Shishan", 31.2960, 120.5700,
                 (SensorSpec("snd", "sim-noise", {"zone": "1"}),),
                 {"noise_zone": "1", "group": "Huqiu", "site_type": "residential"}),
        NodeSpec("sz-wwtp-odour", "Fuxing wastewater plant, east boundary", 31.3460, 120.6070,
                 (SensorSpec("gas", "sim-odour", {"source_bearing_deg": 270.0,
                                                  "source_strength": 1.0,
                                                  "episodes": [WWTP_EPISODE]}),),
                 {"odour_grade": "II-new", "group": "Xiangcheng",
                  "site_type": "industrial-boundary"}),
        NodeSpec("sz-landfill-odour", "Qizishan landfill, south boundary", 31.2580, 120.5030,
                 (SensorSpec("gas", "sim-odour", {"source_bearing_deg": 0.0,
                                                  "source_strength": 0.6}),),
                 {"odour_grade": "II-existing", "group": "Wuzhong",
                  "site_type": "industrial-boundary"}),
        NodeSpec("sz-taihu-gonghu", "Taihu, Gonghu Bay buoy", 31.4200, 120.3300,
                 (SensorSpec("sonde", "sim-water", {"body": "lake", "trophic": "eutrophic"}),),
                 {"water_body": "lake", "water_target": 3, "group": "Taihu",
                  "site_type": "lake"}),
        NodeSpec("sz-jinji-lake", "Jinji Lake, SIP", 31.3090, 120.6900,
                 (SensorSpec("sonde", "sim-water", {"body": "lake", "trophic": "mesotrophic"}),),
                 {"water_body": "lake", "water_target": 3, "group": "SIP", "site_type": "lake"}),
        NodeSpec("sz-grand-canal", "Grand Canal, Hengtang section", 31.2770, 120.5650,
                 (SensorSpec("sonde", "sim-water", {"body": "river"}),),
                 {"water_body": "river", "water_target": 4, "group": "Huqiu",
                  "site_type": "river"}),
    )  # fmt: skip


def fleet_nodes(count: int, seed: int, origin_ms: int) -> list[NodeSpec]:
    """`count` nodes: the ten city sites, repeated with numbered ids beyond ten. Each sensor
    gets its own seed derived from the fleet seed, and the episode origin."""
    base = city_nodes()
    nodes = []
    for index in range(count):
        spec = base[index % len(base)]
        copy = index // len(base)
        node_id = spec.node if copy == 0 else f"{spec.node}-{copy + 1}"
        sensors = tuple(
            SensorSpec(
                s.id,
                s.driver,
                {**s.options, "seed": seed * 1000 + index * 10 + j, "origin_ms": origin_ms},
            )
            for j, s in enumerate(spec.sensors)
        )
        nodes.append(
            NodeSpec(node_id, spec.site, spec.lat, spec.lon, sensors, dict(spec.inventory))
        )
    return nodes


@dataclass(frozen=True, slots=True)
class FleetSettings:
    mqtt_url: str
    state_dir: Path
    sample_interval_s: float = 1.0
    report_interval_s: int = 60
    ack_timeout_s: float = 30.0
    status_interval_s: float = 10.0


def edge_config(spec: NodeSpec, settings: FleetSettings) -> EdgeConfig:
    return EdgeConfig(
        node=NodeSection(id=spec.node),
        sensors=[SensorSection(id=s.id, driver=s.driver, options=s.options) for s in spec.sensors],
        mqtt=MqttSection(
            url=settings.mqtt_url,
            ack_timeout_s=settings.ack_timeout_s,
            status_interval_s=settings.status_interval_s,
        ),
        sampling=SamplingSection(
            sample_interval_s=settings.sample_interval_s,
            report_interval_s=settings.report_interval_s,
        ),
        journal=JournalSection(path=str(settings.state_dir / f"{spec.node}.sqlite")),
        drain=DrainSection(),
    )


def inventory_toml(nodes: list[NodeSpec]) -> str:
    """The fleet inventory for the aggregator, as TOML text."""
    out = ["# Fleet inventory generated by `envnet sim fleet`. Zone classes are illustrative.\n"]
    for spec in nodes:
        out.append(f'\n[nodes.{spec.node}]\nsite = "{spec.site}"\n')
        out.append(f"location = {{ lat = {spec.lat}, lon = {spec.lon} }}\n")
        for key, value in spec.inventory.items():
            rendered = f'"{value}"' if isinstance(value, str) else str(value)
            out.append(f"{key} = {rendered}\n")
    return "".join(out)

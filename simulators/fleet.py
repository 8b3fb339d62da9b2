"""A simulated Suzhou fleet: node specifications, their edge configs and the fleet inventory.

The ten sites are illustrative, placed at real Suzhou landmarks; their zone classes are
plausible guesses, not the official zoning maps (UNVERIFIED, docs/standards.md §1.3,
§3.2). Everything is derived from a seed, so a fleet is reproducible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
from schemas.runtime.endpoints import url_or_urls
from schemas.runtime.toml_text import dumps
from simulators.node_kinds import NodeSpec, kind_node, seeded

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


@dataclass(frozen=True, slots=True)
class CitySite:
    """One node of the built-in city: a kind (simulators.node_kinds) placed at a site."""

    node: str
    kind: str
    zone: str
    site: str
    lat: float
    lon: float
    group: str
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    site_type: str | None = None


CITY: Final[tuple[CitySite, ...]] = (
    CitySite("sz-sip-roadside", "air-roadside", "2", "SIP Xinghu Street roadside",
             31.3080, 120.7230, "SIP"),
    CitySite("sz-gusu-oldtown", "air", "2", "Gusu old town, Pingjiang Road",
             31.3170, 120.6330, "Gusu"),
    CitySite("sz-xishan-park", "air-background", "1", "Xishan island, Taihu scenic area",
             31.1040, 120.3200, "Wuzhong"),
    CitySite("sz-ring-noise", "noise", "4a", "Middle Ring elevated road, Nanhuan",
             31.2840, 120.6300, "Gusu"),
    CitySite("sz-res-noise", "noise", "1", "Residential quarter, Shishan",
             31.2960, 120.5700, "Huqiu"),
    CitySite("sz-wwtp-odour", "odour", "II-new", "Fuxing wastewater plant, east boundary",
             31.3460, 120.6070, "Xiangcheng",
             {"gas": {"source_bearing_deg": 270.0, "episodes": [WWTP_EPISODE]}}),
    CitySite("sz-landfill-odour", "odour", "II-existing", "Qizishan landfill, south boundary",
             31.2580, 120.5030, "Wuzhong", {"gas": {"source_strength": 0.6}}),
    CitySite("sz-taihu-gonghu", "bloom", "III", "Taihu, Gonghu Bay buoy",
             31.4200, 120.3300, "Taihu"),
    CitySite("sz-jinji-lake", "water-lake", "III", "Jinji Lake, SIP",
             31.3090, 120.6900, "SIP"),
    CitySite("sz-grand-canal", "water-river", "IV", "Grand Canal, Hengtang section",
             31.2770, 120.5650, "Huqiu"),
)  # fmt: skip


def city_nodes() -> tuple[NodeSpec, ...]:
    """The built-in Suzhou city's ten nodes, unseeded."""
    return tuple(
        kind_node(c.node, c.kind, c.zone, site=c.site, lat=c.lat, lon=c.lon, group=c.group,
                  site_type=c.site_type, options=c.options)
        for c in CITY
    )  # fmt: skip


def fleet_nodes(count: int, seed: int, origin_ms: int, prefix: str = "") -> list[NodeSpec]:
    """`count` nodes: the ten city sites, repeated with numbered ids beyond ten, each id
    prefixed by `prefix` (a second city on the same broker). Each sensor gets its own seed
    derived from the fleet seed (node_kinds.sensor_seed), and the episode origin."""
    base = city_nodes()
    nodes = []
    for index in range(count):
        spec = base[index % len(base)]
        copy = index // len(base)
        node_id = prefix + (spec.node if copy == 0 else f"{spec.node}-{copy + 1}")
        nodes.append(seeded(spec, seed=seed, index=index, origin_ms=origin_ms, node_id=node_id))
    return nodes


@dataclass(frozen=True, slots=True)
class FleetSettings:
    mqtt_url: str
    state_dir: Path
    sample_interval_s: float = 1.0
    report_interval_s: int = 60
    ack_timeout_s: float = 30.0
    status_interval_s: float = 10.0
    # A fleet's id namespaces its journals (state_dir/<id>/) and MQTT client ids, so that two
    # fleets of different ids can run beside each other; "" keeps the unnamespaced layout.
    fleet_id: str = ""


def edge_config(spec: NodeSpec, settings: FleetSettings) -> EdgeConfig:
    # One broker, or several comma-separated (failover, as in node.toml [mqtt] urls).
    url, urls = url_or_urls(settings.mqtt_url)
    return EdgeConfig(
        node=NodeSection(id=spec.node),
        sensors=[SensorSection(id=s.id, driver=s.driver, options=s.options) for s in spec.sensors],
        mqtt=MqttSection(
            url=url,
            urls=urls,
            ack_timeout_s=settings.ack_timeout_s,
            status_interval_s=settings.status_interval_s,
            client_id=f"envnet-sim-{settings.fleet_id}-{spec.node}" if settings.fleet_id else None,
        ),
        sampling=SamplingSection(
            sample_interval_s=settings.sample_interval_s,
            report_interval_s=settings.report_interval_s,
        ),
        journal=JournalSection(path=str(journal_path(spec, settings))),
        drain=DrainSection(),
    )


def journal_path(spec: NodeSpec, settings: FleetSettings) -> Path:
    directory = settings.state_dir / settings.fleet_id if settings.fleet_id else settings.state_dir
    return directory / f"{spec.node}.sqlite"


def inventory_toml(nodes: Sequence[NodeSpec]) -> str:
    """The fleet inventory for the aggregator, as TOML text."""
    table: dict[str, dict[str, object]] = {}
    for spec in nodes:
        entry: dict[str, object] = {"site": spec.site}
        if spec.lat is not None and spec.lon is not None:
            entry["location"] = {"lat": spec.lat, "lon": spec.lon}
        table[spec.node] = {**entry, **spec.inventory}
    header = "# Fleet inventory generated by `envnet sim fleet`. Zone classes are illustrative.\n"
    return header + dumps({"nodes": table})

"""The aggregator's agg.toml, typed and validated at load time, with ENVNET_* overrides."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Final

import msgspec

from aggregator.cluster.partition import Replica, ReplicaSpecError, parse_replica
from aggregator.cluster.subscriptions import ReadingsMode
from aggregator.delivery import AlertmanagerSettings
from aggregator.engine.settings import EngineSettings
from aggregator.intake.mqtt_session import IntakeSettings
from aggregator.reports.settings import ReportSettings
from aggregator.service_health import HealthLimits
from aggregator.storage.pipeline import PipelineSettings
from aggregator.webhook import WebhookSettings
from aggregator.worker.event_clock import ClockSettings, overlay_clock_env
from aggregator.worker.protocol import WorkerSettings
from schemas.runtime.configfile import ConfigError, convert, overlay_env, read_toml
from schemas.runtime.endpoints import EndpointError, overlay_mqtt_url_env

ENV_OVERRIDES: Final = {
    "ENVNET_INFLUX_URL": ("influx", "url"),
    "ENVNET_INFLUX_DB": ("influx", "database"),
    "ENVNET_INFLUX_ORG": ("influx", "org"),
    "ENVNET_INFLUX_BUCKET": ("influx", "bucket"),
    "ENVNET_INFLUX_TOKEN": ("influx", "token"),
    "ENVNET_FLEET": ("fleet", "path"),
    "ENVNET_REPLICA": ("cluster", "replica"),
}

Positive = Annotated[float, msgspec.Meta(gt=0)]
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]


class FleetSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    path: str = "fleet.toml"
    # Hot reload: the file is checked this often (and on SIGHUP) and reloaded when it
    # changed; 0 reloads on SIGHUP only (aggregator/intake/fleet_watch.py).
    reload_s: Annotated[float, msgspec.Meta(ge=0)] = 5.0


class MetricsSection(HealthLimits, frozen=True, forbid_unknown_fields=True):
    """[metrics]: where /metrics and /healthz are served, and the /healthz limits
    (aggregator.service_health.HealthLimits)."""

    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 9108


class StateSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Where the aggregator keeps files of its own: the dead-letter file and state.sqlite
    # (alerts, health and liveness state; windows are rebuilt from InfluxDB at start).
    dir: str = "aggregator-state"
    # At a stop, the bound of each step: handling what was received, storing it, evaluating
    # it, and (together) the webhooks' and Alertmanager's last deliveries (service._finish).
    shutdown_drain_s: Positive = 15.0
    # How often window, health and liveness state is saved. Alerts are saved on every change.
    checkpoint_s: Positive = 5.0


class AlertsSection(EngineSettings, frozen=True, forbid_unknown_fields=True):
    """[alerts]: the standards engine's settings (aggregator.engine.settings, where each key
    is declared), plus what the service alone reads."""

    # Obsolete and ignored (a warning says so): late episodes now close in event time
    # (README, "Replays, backlogs and event time"). Still accepted so older files load.
    late_idle_s: PositiveInt | None = None
    # How far back (hours) a replica reads its nodes' `alerts` points at start, to adopt the
    # open alerts another replica left them with when the state file is not shared
    # (aggregator.engine.adoption, docs/cluster/replicas.md); 0: never. A week: longer than
    # any re-notification interval (4 h at most by default), so an unacknowledged open alert
    # whose owner kept running always has a point in it; an acknowledged one (never
    # re-notified) is found if it fired within the week. envnet's choice.
    adopt_lookback_h: Annotated[int, msgspec.Meta(ge=0, le=24 * 366)] = 168
    webhooks: list[WebhookSettings] = msgspec.field(default_factory=list)

    def engine(self) -> EngineSettings:
        """The engine's keys alone, without what the service adds: what the alerting worker
        is started with, so it need not import the service's settings (and their I/O
        modules) to unpickle them."""
        return EngineSettings(
            **{name: getattr(self, name) for name in EngineSettings.__struct_fields__}
        )


class ClusterSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """[cluster]: this process's share of the fleet (docs/cluster/replicas.md)."""

    # "i/N": replica i (from 0) of N, owning the nodes the partition gives it
    # (aggregator.cluster.partition). "0/1", one replica owning every node, is the
    # aggregator as it always was.
    replica: str = "0/1"
    # How a replica of several reads its nodes' readings (aggregator.cluster.subscriptions):
    # "per-node", a topic per owned node (the broker sends each reading to its owner only),
    # or "wildcard", every reading to every replica, which skips those it does not own (for
    # brokers where a subscription filter is costly: nats-server, docs/cluster/replicas.md).
    readings: ReadingsMode = "per-node"

    def __post_init__(self) -> None:
        try:
            parse_replica(self.replica)
        except ReplicaSpecError as exc:
            raise ValueError(f"cluster.replica (or ENVNET_REPLICA): {exc}") from None

    def parsed(self) -> Replica:
        return parse_replica(self.replica)


class CalibrationSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # The calibration records (aggregator.calibration.file); none: values are stored as sent.
    path: str | None = None


class AggregatorConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    mqtt: IntakeSettings = IntakeSettings()
    # The InfluxDB target and the storage pipeline's batching (aggregator.storage).
    influx: PipelineSettings = PipelineSettings()
    fleet: FleetSection = FleetSection()
    metrics: MetricsSection = MetricsSection()
    alerts: AlertsSection = AlertsSection()
    state: StateSection = StateSection()
    calibration: CalibrationSection = CalibrationSection()
    alertmanager: AlertmanagerSettings = AlertmanagerSettings()
    # The alert logic's clock: absent, the wall clock; a scaled event clock for accelerated
    # scenarios (aggregator.worker.event_clock).
    clock: ClockSettings = ClockSettings()
    # `envnet report`'s evaluation rules (aggregator.reports.settings).
    report: ReportSettings = ReportSettings()
    cluster: ClusterSection = ClusterSection()

    def worker_settings(self) -> WorkerSettings:
        """What the alerting worker reads of this file (aggregator.worker.protocol)."""
        return WorkerSettings(self.alerts.engine(), self.clock, self.cluster.parsed())


def load_aggregator_config(
    path: Path | None, environ: Mapping[str, str] | None = None
) -> AggregatorConfig:
    """Load agg.toml (or only defaults and the environment when `path` is None)."""
    raw = read_toml(path) if path is not None else {}
    source = str(path) if path is not None else "defaults"
    env = os.environ if environ is None else environ
    raw = overlay_env(raw, ENV_OVERRIDES, env)
    # ENVNET_MQTT_URL names one broker, or a cluster's servers as a comma-separated list.
    try:
        raw = overlay_mqtt_url_env(raw, env.get("ENVNET_MQTT_URL"))
    except EndpointError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    # ENVNET_ALERTMANAGER_URL names one Alertmanager, or a cluster as a comma-separated list.
    if urls := [u.strip() for u in env.get("ENVNET_ALERTMANAGER_URL", "").split(",") if u.strip()]:
        raw.setdefault("alertmanager", {})["urls"] = urls
    # ENVNET_METRICS_PORT: one port per replica on one host (deploy/systemd/envnet-aggregator@).
    if (port := env.get("ENVNET_METRICS_PORT", "").strip()) != "":
        if not port.isdigit() or int(port) > 65535:
            raise ConfigError(f"{source}: ENVNET_METRICS_PORT must be a port number, got {port!r}")
        raw.setdefault("metrics", {})["port"] = int(port)
    # ENVNET_CLOCK="origin_ms=...,anchor_wall_ms=...,rate=..." sets [clock] keys.
    try:
        raw = overlay_clock_env(raw, env)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    # Each section's struct checks its own rules while converting (__post_init__).
    return convert(raw, AggregatorConfig, source)

"""The aggregator's agg.toml, typed and validated at load time, with ENVNET_* overrides."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Final, Literal

import msgspec

from aggregator.engine.settings import EngineSettings
from aggregator.webhook import WebhookSettings
from schemas.runtime.configfile import ConfigError, convert, overlay_env, read_toml
from schemas.runtime.endpoints import EndpointError, MqttEndpoint, parse_mqtt_url

ENV_OVERRIDES: Final = {
    "ENVNET_MQTT_URL": ("mqtt", "url"),
    "ENVNET_INFLUX_URL": ("influx", "url"),
    "ENVNET_INFLUX_DB": ("influx", "database"),
    "ENVNET_INFLUX_ORG": ("influx", "org"),
    "ENVNET_INFLUX_BUCKET": ("influx", "bucket"),
    "ENVNET_INFLUX_TOKEN": ("influx", "token"),
    "ENVNET_FLEET": ("fleet", "path"),
}

Positive = Annotated[float, msgspec.Meta(gt=0)]
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]


class MqttSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    url: str = "mqtt://localhost:1883"
    # Fixed, so the broker keeps this subscriber's persistent session (and queues readings
    # for it) across aggregator restarts and intake pauses.
    client_id: str = "envnet-aggregator"
    ca_file: str | None = None
    keepalive_s: PositiveInt = 30
    max_payload_bytes: PositiveInt = 1024 * 1024
    # Flow control: with this many received messages waiting for the pipeline, intake stops
    # reading the socket (TCP then holds the broker back), and reads again below a quarter.
    read_buffer_messages: Annotated[int, msgspec.Meta(ge=4)] = 2000
    # Reading stopped this long means storage is stalled: intake disconnects and the broker
    # holds the backlog for our persistent session. Must stay below keepalive_s, after which
    # an unread socket counts as dead.
    pause_after_s: Positive = 10.0
    reconnect_initial_s: Positive = 0.5
    reconnect_cap_s: Positive = 30.0

    def endpoint(self) -> MqttEndpoint:
        return parse_mqtt_url(self.url)


class InfluxSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    url: str = "http://localhost:8086"
    # "v1": /write with database and retention policy (InfluxDB 1.x, e.g. Debian's 1.6.7).
    # "v2": /api/v2/write with org, bucket and token (InfluxDB 2.x and 3.x).
    # "auto": v2 when a bucket is configured, else v1.
    api: Literal["auto", "v1", "v2"] = "auto"
    database: str = "envnet"
    retention_policy: str = ""
    # v1: a database that does not exist is created at start, its default retention policy
    # (named retention_policy, or "autogen") keeping readings this long (InfluxQL duration;
    # "INF" keeps them for ever). An existing database is never changed.
    create_duration: Annotated[str, msgspec.Meta(pattern=r"^(INF|[1-9][0-9]*[wdhms])$")] = "400d"
    username: str | None = None
    password: str | None = None
    org: str = ""
    bucket: str = ""
    token: str | None = None
    gzip: bool = False
    timeout_s: Positive = 10.0
    # Readings per write request, and how long a partial batch may wait for company.
    batch_readings: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 5000
    linger_ms: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 50
    # Concurrent write requests. influxd answers 500 when overrun; bound it.
    max_inflight: Annotated[int, msgspec.Meta(ge=1, le=16)] = 3
    # Readings accepted but not yet stored; beyond this, intake waits (backpressure).
    max_buffered_readings: Annotated[int, msgspec.Meta(ge=1000)] = 200_000
    retry_initial_s: Positive = 0.2
    retry_cap_s: Positive = 30.0

    def resolved_api(self) -> Literal["v1", "v2"]:
        if self.api == "auto":
            return "v2" if self.bucket else "v1"
        return self.api


class FleetSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    path: str = "fleet.toml"


class MetricsSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 9108
    # /healthz: writes failing, the alerting worker silent, or intake and publisher off the
    # broker for this long is "failing" (HTTP 503); shorter is "degraded" (HTTP 200).
    storage_failing_after_s: Positive = 30.0
    worker_failing_after_s: Positive = 60.0
    broker_failing_after_s: Positive = 60.0


class StateSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Where the aggregator keeps files of its own: the dead-letter file and state.sqlite
    # (alerts, health and liveness state; windows are rebuilt from InfluxDB at start).
    dir: str = "aggregator-state"
    shutdown_drain_s: Positive = 15.0
    # How often window, health and liveness state is saved. Alerts are saved on every change.
    checkpoint_s: Positive = 5.0


class WebhookSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    url: str
    # Name of an environment variable holding a bearer token (never put secrets in files).
    token_env: str | None = None
    timeout_s: Positive = 10.0
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=100)] = 8
    retry_initial_s: Positive = 1.0
    retry_cap_s: Positive = 300.0
    queue_max: Annotated[int, msgspec.Meta(ge=1)] = 10_000
    include_late: bool = False
    include_suspect: bool = False

    def settings(self, environ: Mapping[str, str]) -> WebhookSettings:
        return WebhookSettings(
            url=self.url,
            timeout_s=self.timeout_s,
            max_attempts=self.max_attempts,
            retry_initial_s=self.retry_initial_s,
            retry_cap_s=self.retry_cap_s,
            queue_max=self.queue_max,
            include_late=self.include_late,
            include_suspect=self.include_suspect,
            token=environ.get(self.token_env) if self.token_env else None,
        )


class AlertsSection(EngineSettings, frozen=True, forbid_unknown_fields=True):
    """[alerts]: the standards engine's settings (aggregator.engine.settings, where each key
    is declared), plus what the service alone reads."""

    # Obsolete and ignored (a warning says so): late episodes now close in event time
    # (README, "Replays, backlogs and event time"). Still accepted so older files load.
    late_idle_s: PositiveInt | None = None
    webhooks: list[WebhookSection] = msgspec.field(default_factory=list)


class CalibrationSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # The calibration records (aggregator.calibration.file); none: values are stored as sent.
    path: str | None = None


class AggregatorConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    mqtt: MqttSection = MqttSection()
    influx: InfluxSection = InfluxSection()
    fleet: FleetSection = FleetSection()
    metrics: MetricsSection = MetricsSection()
    alerts: AlertsSection = AlertsSection()
    state: StateSection = StateSection()
    calibration: CalibrationSection = CalibrationSection()


def load_aggregator_config(
    path: Path | None, environ: Mapping[str, str] | None = None
) -> AggregatorConfig:
    """Load agg.toml (or only defaults and the environment when `path` is None)."""
    raw = read_toml(path) if path is not None else {}
    source = str(path) if path is not None else "defaults"
    env = os.environ if environ is None else environ
    config = convert(overlay_env(raw, ENV_OVERRIDES, env), AggregatorConfig, source)
    return validated(config, source)


def validated(config: AggregatorConfig, source: str) -> AggregatorConfig:
    try:
        config.mqtt.endpoint()
    except EndpointError as exc:
        raise ConfigError(f"{source}: mqtt.url: {exc}") from None
    if config.mqtt.pause_after_s >= config.mqtt.keepalive_s:
        raise ConfigError(f"{source}: mqtt.pause_after_s must be below mqtt.keepalive_s")
    influx = config.influx
    if not influx.url.startswith(("http://", "https://")):
        raise ConfigError(f"{source}: influx.url must be http:// or https://, got {influx.url!r}")
    if influx.resolved_api() == "v2" and not (influx.org and influx.bucket and influx.token):
        raise ConfigError(f"{source}: the InfluxDB v2 API needs influx.org, bucket and token")
    if influx.resolved_api() == "v1" and not influx.database:
        raise ConfigError(f"{source}: the InfluxDB v1 API needs influx.database")
    return config

"""The aggregator's agg.toml, typed and validated at load time, with ENVNET_* overrides."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Final, Literal

import msgspec

from aggregator.delivery import AlertmanagerSettings
from aggregator.engine.lifecycle import LifecyclePolicy
from aggregator.webhook import WebhookSettings
from schemas.quantities import Quantity
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


def default_rule_policies() -> dict[str, LifecyclePolicy]:
    # A spike flags one reading (and marks it suspect) but is no reason to page anyone; a
    # sensor that keeps jumping for 5 minutes of event time is.
    return {"health.spike": LifecyclePolicy(pending_s=300, clear_s=300, renotify_s=14400)}


class LifecycleSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Alert lifecycle policies: a default, and overrides by rule-id prefix ("odour",
    "air.o3", "health", ...; the longest whole-segment prefix wins)."""

    default: LifecyclePolicy = LifecyclePolicy(renotify_s=3600)
    rules: dict[str, LifecyclePolicy] = msgspec.field(default_factory=default_rule_policies)


class HysteresisSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # A firing alert resolves only once its value is this far back inside the limit, so a
    # value hovering at the limit does not flap. Concentrations: a fraction of the limit.
    fraction: Annotated[float, msgspec.Meta(ge=0, lt=1)] = 0.05
    # Sound levels are logarithmic: a margin in dB(A), not a fraction.
    noise_db: Annotated[float, msgspec.Meta(ge=0, le=20)] = 1.0
    # AQI category alerts: AQI points below the category boundary.
    aqi_points: Annotated[int, msgspec.Meta(ge=0, le=50)] = 5


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


class AlertmanagerSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Prometheus Alertmanager (aggregator.delivery.alertmanager). Every URL is sent every
    alert: Alertmanager's HA cluster deduplicates, and asks clients to send to all members.
    ENVNET_ALERTMANAGER_URL (comma-separated) replaces `urls`."""

    urls: list[str] = []
    resend_s: Positive = 60.0
    lease_factor: Annotated[float, msgspec.Meta(ge=2)] = 4.0
    timeout_s: Positive = 10.0
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5
    retry_initial_s: Positive = 1.0
    retry_cap_s: Positive = 30.0

    def settings(self) -> AlertmanagerSettings | None:
        if not self.urls:
            return None
        return AlertmanagerSettings(
            urls=tuple(self.urls),
            resend_s=self.resend_s,
            lease_factor=self.lease_factor,
            timeout_s=self.timeout_s,
            max_attempts=self.max_attempts,
            retry_initial_s=self.retry_initial_s,
            retry_cap_s=self.retry_cap_s,
        )


class WindowsSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Averaging windows (aggregator.engine.windows). The validity counts are GB 3095-2026
    Table 4's; the MDA8 convention and the noise day/night minimums are UNVERIFIED or envnet
    choices (see WindowSettings), hence here."""

    min_hour_coverage_s: Annotated[int, msgspec.Meta(ge=1, le=3600)] = 2700
    min_daily_hours: Annotated[int, msgspec.Meta(ge=1, le=24)] = 20
    min_8h_hours: Annotated[int, msgspec.Meta(ge=1, le=8)] = 6
    # UNVERIFIED (HJ 663 not read): which 8-h windows count for a day's MDA8.
    mda8_first_end_hour: Annotated[int, msgspec.Meta(ge=8, le=47)] = 8
    mda8_last_end_hour: Annotated[int, msgspec.Meta(ge=8, le=47)] = 24
    min_mda8_windows: Annotated[int, msgspec.Meta(ge=1, le=40)] = 14
    min_day_hours: Annotated[int, msgspec.Meta(ge=1, le=24)] = 12
    min_night_hours: Annotated[int, msgspec.Meta(ge=1, le=24)] = 6
    # A late reading this far behind its series' newest data still re-evaluates windows; the
    # aggregator also rebuilds this much window state from InfluxDB when it starts.
    late_horizon_h: Annotated[int, msgspec.Meta(ge=2, le=24 * 14)] = 48
    # Readings starting more than this ahead of the aggregator's clock (a node clock fault)
    # are stored but not windowed, and counted. 0 turns the guard off, for accelerated
    # simulations whose event time runs ahead of the wall clock.
    max_future_s: Annotated[int, msgspec.Meta(ge=0)] = 3600
    # A window no newer reading closes (a node gone quiet, the end of a replay) closes this
    # long after its end in the node's own clock (aggregator.engine.window_closing): room for
    # readings still on their way. Must stay below alerts.late_after_s, so that a window
    # closed by time is still judged live.
    close_after_s: Annotated[int, msgspec.Meta(ge=0)] = 300


class RangeSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    lower: float
    upper: float


class FlatlineSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    epsilon: Annotated[float, msgspec.Meta(ge=0)]
    min_readings: Annotated[int, msgspec.Meta(ge=2)]
    min_duration_s: Annotated[float, msgspec.Meta(ge=0)]
    exempt_at_or_below: float = -math.inf
    exempt_at_or_above: float = math.inf


class HealthSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Sensor health checks (aggregator.engine.sensor_health). Every default is an envnet
    choice, not a standard; the per-quantity tables override the built-in ones quantity by
    quantity."""

    plausible: dict[Quantity, RangeSection] = {}
    flatline: dict[Quantity, FlatlineSection] = {}
    max_rate_per_s: dict[Quantity, Annotated[float, msgspec.Meta(gt=0)]] = {}
    high_rh_pct: Annotated[float, msgspec.Meta(gt=0, le=100)] = 90.0
    high_rh_hysteresis_pct: Annotated[float, msgspec.Meta(ge=0)] = 5.0
    rh_max_age_s: Positive = 900.0


class LivenessSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    node_silence_s: Positive = 300.0
    quantity_silence_s: Positive = 900.0
    # Never silent before this many of the quantity's own reporting periods.
    silence_periods: Positive = 3.0
    # An online status message counts as hearing from the node.
    status_is_heartbeat: bool = True
    check_interval_s: Positive = 10.0


class OdourSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # GB 14554-93 gives plant-boundary limits without an averaging time for continuous
    # sensors: compare each reading as reported ("reading") or the clock-hour mean ("1h").
    window: Literal["reading", "1h"] = "reading"


class BloomLevelSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_]{1,32}$")]
    ug_l: Annotated[float, msgspec.Meta(gt=0)]
    severity: Literal["info", "warning", "critical"] = "warning"


class BloomSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # UNVERIFIED: no published Chinese or WHO phycocyanin threshold exists
    # (../shared/standards.md §6.3). Levels here are site configuration, calibrated locally
    # against cell counts or chlorophyll-a; alerts from them cite `phycocyanin_source`.
    phycocyanin: list[BloomLevelSection] = []
    phycocyanin_source: Annotated[str, msgspec.Meta(max_length=64)] = (
        "site configuration, not a published standard"
    )


class AlertsSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # GB 3095 / HJ 633 edition: "auto" judges each window by the edition in force at its
    # start (2012 before 2026-03-01 00:00 Beijing time, 2026 from then on; GB 3095-2026 前言);
    # "2012" or "2026" forces one edition for all dates.
    air_edition: Literal["auto", "2012", "2026"] = "auto"
    # Local civil time offset of the city; China uses UTC+8 without DST.
    utc_offset_h: Annotated[int, msgspec.Meta(ge=-12, le=14)] = 8
    # GB 3096-2008 §3.4: day 06:00-22:00, night 22:00-06:00. Local rules may move these
    # (UNVERIFIED for Suzhou, ../shared/standards.md §3.2), hence configurable.
    day_starts_h: Annotated[int, msgspec.Meta(ge=0, le=23)] = 6
    night_starts_h: Annotated[int, msgspec.Meta(ge=0, le=23)] = 22
    # An observation whose window ended more than this before the aggregator's clock is late:
    # recorded with its true time and marked late, never paged.
    late_after_s: PositiveInt = 900
    # Obsolete and ignored (a warning says so): late episodes now close in event time
    # (README, "Replays, backlogs and event time"). Still accepted so older files load.
    late_idle_s: PositiveInt | None = None
    # Lowest HJ 633 AQI category that raises an aqi.* alert: 3 = III 轻度污染 (AQI > 100).
    aqi_alert_level: Annotated[int, msgspec.Meta(ge=2, le=6)] = 3
    # Which HJ 633 reports raise aqi.{report} alerts. Both are always computed and stored (the
    # `aqi` measurement); by default only the real-time (hourly) AQI pages, so one pollution
    # episode opens one AQI alert, which clears when the air does.
    aqi_alert_reports: tuple[Literal["hour", "day"], ...] = ("hour",)
    lifecycle: LifecycleSection = LifecycleSection()
    hysteresis: HysteresisSection = HysteresisSection()
    webhooks: list[WebhookSection] = []
    windows: WindowsSection = WindowsSection()
    health: HealthSection = HealthSection()
    liveness: LivenessSection = LivenessSection()
    odour: OdourSection = OdourSection()
    bloom: BloomSection = BloomSection()


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
    alertmanager: AlertmanagerSection = AlertmanagerSection()


def load_aggregator_config(
    path: Path | None, environ: Mapping[str, str] | None = None
) -> AggregatorConfig:
    """Load agg.toml (or only defaults and the environment when `path` is None)."""
    raw = read_toml(path) if path is not None else {}
    source = str(path) if path is not None else "defaults"
    env = os.environ if environ is None else environ
    raw = overlay_env(raw, ENV_OVERRIDES, env)
    if urls := [u.strip() for u in env.get("ENVNET_ALERTMANAGER_URL", "").split(",") if u.strip()]:
        raw.setdefault("alertmanager", {})["urls"] = urls
    config = convert(raw, AggregatorConfig, source)
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
    if config.alerts.day_starts_h == config.alerts.night_starts_h:
        raise ConfigError(f"{source}: alerts.day_starts_h and night_starts_h must differ")
    for url in config.alertmanager.urls:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{source}: alertmanager.urls must be http:// or https://")
    if config.alerts.windows.close_after_s >= config.alerts.late_after_s:
        raise ConfigError(f"{source}: alerts.windows.close_after_s must be below late_after_s")
    return config

"""The edge agent's node.toml, typed and validated at load time."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final

import msgspec

from schemas.messages import ID_PATTERN, SensorSerial
from schemas.runtime.configfile import ConfigError, convert, read_toml
from schemas.runtime.endpoints import (
    EndpointError,
    MqttEndpoint,
    broker_urls,
    overlay_mqtt_url_env,
    parse_mqtt_urls,
)
from schemas.runtime.failover import DEFAULT_RETURN_HOME_S

DEFAULT_MQTT_URL: Final = "mqtt://localhost:1883"

Positive = Annotated[float, msgspec.Meta(gt=0)]
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]


class NodeSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]


class MqttSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # One broker (`url`) or several in order (`urls`, the first is home); not both.
    url: str | None = None
    urls: tuple[str, ...] = ()
    # Connected to a broker other than the first this long, the link goes back to the first;
    # 0: it stays until that broker fails (schemas.runtime.failover).
    return_home_s: Annotated[float, msgspec.Meta(ge=0)] = DEFAULT_RETURN_HOME_S
    client_id: str | None = None
    keepalive_s: PositiveInt = 30
    ca_file: str | None = None
    # Batches not acknowledged by the aggregator within this time are sent again, with the
    # timeout doubling per attempt up to ack_timeout_cap_s.
    ack_timeout_s: Positive = 60.0
    ack_timeout_cap_s: Positive = 900.0
    reconnect_initial_s: Positive = 0.5
    reconnect_cap_s: Positive = 60.0
    # Messages handed to the broker but not yet PUBACKed; beyond this the agent holds back.
    max_inflight: PositiveInt = 100
    status_interval_s: Positive = 60.0

    def endpoints(self) -> tuple[MqttEndpoint, ...]:
        """The brokers in order, home first; EndpointError if `url`/`urls` cannot be used."""
        return parse_mqtt_urls(broker_urls(self.url, self.urls, DEFAULT_MQTT_URL))

    def endpoint(self) -> MqttEndpoint:
        """The home broker."""
        return self.endpoints()[0]


class SamplingSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    sample_interval_s: Positive = 1.0
    report_interval_s: PositiveInt = 60


class JournalSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    path: str = "journal.sqlite"
    max_bytes: PositiveInt = 256 * 1024 * 1024
    max_age_s: PositiveInt = 30 * 86400


class DrainSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Backlog is sent at most this fast, after live data, so a drain never delays a live
    # exceedance and never floods a thin 3G link.
    rate_readings_per_s: Positive = 500.0
    batch_readings: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100


class SensorSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
    driver: str
    options: dict[str, Any] = {}
    # The physical sensor's serial number: sent on every reading of this sensor, so that the
    # aggregator applies this sensor's calibration (the value itself is sent uncalibrated).
    serial: SensorSerial | None = None


class EdgeConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    node: NodeSection
    sensors: Annotated[list[SensorSection], msgspec.Meta(min_length=1)]
    mqtt: MqttSection = MqttSection()
    sampling: SamplingSection = SamplingSection()
    journal: JournalSection = JournalSection()
    drain: DrainSection = DrainSection()


def load_edge_config(path: Path, environ: Mapping[str, str] | None = None) -> EdgeConfig:
    env = os.environ if environ is None else environ
    try:
        # ENVNET_MQTT_URL: one URL or a comma-separated list, replacing [mqtt] url and urls.
        raw = overlay_mqtt_url_env(read_toml(path), env.get("ENVNET_MQTT_URL"))
    except EndpointError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    _check_misplaced_options(raw, str(path))
    config = convert(raw, EdgeConfig, str(path))
    return validated(config, str(path))


def _check_misplaced_options(raw: Mapping[str, Any], source: str) -> None:
    """A driver option written beside `id` and `driver` instead of in `options` (the easy
    slip with `flags`) gets an error that says where it goes, not only "unknown field"."""
    sensors = raw.get("sensors")
    if not isinstance(sensors, list):
        return
    known = {field.name for field in msgspec.structs.fields(SensorSection)}
    for index, sensor in enumerate(sensors):
        if not isinstance(sensor, dict):
            continue
        for key in sensor.keys() - known:
            raise ConfigError(
                f"{source}: sensors[{index}] ({sensor.get('id', '?')}): {key!r} is not a sensor "
                f"field ({', '.join(sorted(known))}); a driver option goes in the sensor's "
                f"options table: options = {{ ..., {key} = ... }}"
            )


def validated(config: EdgeConfig, source: str) -> EdgeConfig:
    """Cross-field checks that the types alone cannot express."""
    try:
        config.mqtt.endpoints()
    except EndpointError as exc:
        key = "mqtt.urls" if config.mqtt.urls else "mqtt.url"
        raise ConfigError(f"{source}: {key}: {exc}") from None
    ids = [sensor.id for sensor in config.sensors]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{source}: sensor ids must be unique, got {ids}")
    if config.sampling.sample_interval_s > config.sampling.report_interval_s:
        raise ConfigError(f"{source}: sample_interval_s must not exceed report_interval_s")
    return config

"""Connection endpoints given as URLs: `mqtt://[user:pass@]host:port`, `mqtts://…`, one broker
or an ordered list of them (schemas.runtime.failover)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from schemas.runtime.logs import redact_url

MQTT_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


class EndpointError(ValueError):
    """A URL that cannot name a broker or database."""


@dataclass(frozen=True, slots=True)
class MqttEndpoint:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def display(self) -> str:
        """Safe to log: no credentials."""
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"


def parse_mqtt_url(url: str) -> MqttEndpoint:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise EndpointError(f"bad MQTT URL {redact_url(url)!r}: {exc}") from None
    if parts.scheme not in MQTT_DEFAULT_PORTS:
        msg = f"MQTT URL must start with mqtt:// or mqtts://, got {redact_url(url)!r}"
        raise EndpointError(msg)
    if not parts.hostname:
        raise EndpointError(f"MQTT URL has no host: {redact_url(url)!r}")
    if parts.path not in ("", "/"):
        raise EndpointError(f"MQTT URL takes no path: {redact_url(url)!r}")
    return MqttEndpoint(
        host=parts.hostname,
        port=port or MQTT_DEFAULT_PORTS[parts.scheme],
        tls=parts.scheme == "mqtts",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def parse_mqtt_urls(urls: Sequence[str]) -> tuple[MqttEndpoint, ...]:
    """An ordered list of brokers (the first is home): every URL valid, none twice, and all
    with or all without TLS (one client and one CA file serve them all)."""
    if not urls:
        raise EndpointError("no broker URL given")
    endpoints: list[MqttEndpoint] = []
    for index, url in enumerate(urls):
        try:
            endpoint = parse_mqtt_url(url)
        except EndpointError as exc:
            raise EndpointError(f"[{index}]: {exc}") from None
        if any((e.host, e.port) == (endpoint.host, endpoint.port) for e in endpoints):
            raise EndpointError(f"[{index}]: {endpoint.display} is listed twice")
        endpoints.append(endpoint)
    if len({e.tls for e in endpoints}) > 1:
        raise EndpointError("mixes mqtt:// and mqtts://: use one scheme for every broker")
    return tuple(endpoints)


def broker_urls(url: str | None, urls: Sequence[str], default: str) -> tuple[str, ...]:
    """[mqtt] `url` (one broker) or `urls` (several, in order); setting both is an error."""
    if url is not None and urls:
        raise EndpointError("set url (one broker) or urls (several), not both")
    if urls:
        return tuple(urls)
    return (url if url is not None else default,)


def split_url_list(value: str | None) -> list[str]:
    """ENVNET_MQTT_URL's value: one URL or several, comma-separated; blanks ignored."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def url_or_urls(value: str) -> tuple[str | None, tuple[str, ...]]:
    """One URL or a comma-separated list, as [mqtt]'s (url, urls)."""
    listed = split_url_list(value)
    return (listed[0], ()) if len(listed) == 1 else (None, tuple(listed))


def overlay_mqtt_url_env(raw: dict[str, Any], value: str | None) -> dict[str, Any]:
    """ENVNET_MQTT_URL, one URL or a comma-separated list, replaces [mqtt] url and urls."""
    listed = split_url_list(value)
    if not listed:
        return raw
    mqtt = raw.setdefault("mqtt", {})
    if not isinstance(mqtt, dict):
        raise EndpointError("mqtt (from ENVNET_MQTT_URL): [mqtt] is not a table")
    mqtt.pop("url", None)
    mqtt.pop("urls", None)
    if len(listed) == 1:
        mqtt["url"] = listed[0]
    else:
        mqtt["urls"] = listed
    return raw

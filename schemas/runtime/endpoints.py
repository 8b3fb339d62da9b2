"""Connection endpoints given as URLs: `mqtt://[user:pass@]host:port`, `mqtts://…`."""

from __future__ import annotations

from dataclasses import dataclass, field
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

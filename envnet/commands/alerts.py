"""`envnet alerts list` and `envnet alerts ack`: operators' view of open alerts, over MQTT.

Both talk to the broker, not to the aggregator's files, so they work from any operator's
machine with the broker's credentials (the `envnet-operator` user of
deploy/mosquitto/envnet.acl).

`list` reads the retained alert states. It knows it has them all without waiting for silence:
after subscribing it publishes a probe on a topic of its own, and the broker delivers a
client's messages in order, so the retained states arrive before the probe.

With an Alertmanager configured (`--alertmanager-url` or ENVNET_ALERTMANAGER_URL, the first of
its comma-separated URLs), `list` also says what Alertmanager does with each alert: `active`
(notifications go out), `silenced` (by which silence), `inhibited` (by which alert), or `-`
when Alertmanager does not hold it (GET /api/v2/alerts, which reports each alert's status).

`ack` publishes an `envnet.alert-command/1` and then watches the alert's retained state until
it shows the acknowledgement (or a deadline passes), so the operator knows it took.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import ssl
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from envnet.argtypes import positive_float
from schemas import codec, topics
from schemas.codec import ContractError
from schemas.messages import ALERT_COMMAND_SCHEMA, Alert, AlertCommand
from schemas.runtime.endpoints import EndpointError, MqttEndpoint, parse_mqtt_url, split_url_list

DEFAULT_URL = "mqtt://localhost:1883"
PROBE_PREFIX = "envnet/v1/cli-probe"


class AlertsCliError(RuntimeError):
    """A failure to report to the operator in one line (exit code 1)."""


@dataclass(frozen=True, slots=True)
class _Message:
    topic: str
    payload: bytes


class _Session:
    """A short-lived paho connection whose messages land in a queue."""

    def __init__(self, endpoint: MqttEndpoint, ca_file: str | None, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.inbox: queue.Queue[_Message] = queue.Queue()
        self._connected: queue.Queue[tuple[bool, str]] = queue.Queue()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, f"envnet-cli-{uuid.uuid4().hex[:8]}")
        if endpoint.username:
            client.username_pw_set(endpoint.username, endpoint.password)
        if endpoint.tls:
            client.tls_set(ca_certs=ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.on_connect = lambda _c, _u, _f, reason, _p: self._connected.put(
            (reason.is_failure, str(reason))
        )
        client.on_message = lambda _c, _u, m: self.inbox.put(_Message(m.topic, bytes(m.payload)))
        self.client = client
        self.endpoint = endpoint

    def __enter__(self) -> _Session:
        try:
            self.client.connect(self.endpoint.host, self.endpoint.port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:
            raise AlertsCliError(f"cannot reach {self.endpoint.display}: {exc}") from None
        self.client.loop_start()
        try:
            failed, reason = self._connected.get(timeout=self.timeout_s)
        except queue.Empty:
            raise AlertsCliError(f"no answer from {self.endpoint.display}") from None
        if failed:
            raise AlertsCliError(f"{self.endpoint.display} refused the connection: {reason}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def subscribe(self, topic: str) -> None:
        result, _ = self.client.subscribe(topic, qos=1)
        if result != mqtt.MQTT_ERR_SUCCESS:
            raise AlertsCliError(f"subscribe to {topic} failed: {mqtt.error_string(result)}")

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout=self.timeout_s)
        if not info.is_published():
            raise AlertsCliError(f"publish to {topic} was not acknowledged by the broker")

    def next(self, deadline: float) -> _Message | None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        try:
            return self.inbox.get(timeout=remaining)
        except queue.Empty:
            return None


def retained_alerts(session: _Session, topic_filter: str) -> list[Alert]:
    probe = f"{PROBE_PREFIX}/{uuid.uuid4().hex}"
    session.subscribe(topic_filter)
    session.subscribe(probe)
    session.publish(probe, b"probe")
    deadline = time.monotonic() + session.timeout_s
    alerts: list[Alert] = []
    while (message := session.next(deadline)) is not None:
        if message.topic == probe:
            return alerts
        if not message.payload:
            continue  # a cleared retained state
        try:
            alerts.append(codec.ALERT.decode(message.payload))
        except ContractError as exc:
            sys.stderr.write(f"skipping {message.topic}: {exc}\n")
    raise AlertsCliError("the broker did not return the retained alerts in time")


# What Alertmanager does with an alert: (node, rule, lane) -> "active", "silenced by …" …
DeliveryStates = dict[tuple[str, str, str], str]


def delivery_states(am_alerts: list[dict[str, object]]) -> DeliveryStates:
    """Pure: Alertmanager's GET /api/v2/alerts answer, keyed as envnet knows its alerts."""
    states: DeliveryStates = {}
    for item in am_alerts:
        labels, status = item.get("labels"), item.get("status")
        if not isinstance(labels, dict) or not isinstance(status, dict):
            continue
        key = (str(labels.get("node", "")), str(labels.get("alertname", "")))
        lane = str(labels.get("lane", "live"))
        silenced, inhibited = status.get("silencedBy") or [], status.get("inhibitedBy") or []
        if silenced:
            state = "silenced by " + ",".join(map(str, silenced))
        elif inhibited:
            state = "inhibited by " + ",".join(map(str, inhibited))
        else:
            state = str(status.get("state", "active"))
        states[(*key, lane)] = state
    return states


def _display(url: str) -> str:
    scheme, sep, rest = url.partition("?")[0].partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}"


def fetch_delivery_states(url: str, timeout_s: float) -> DeliveryStates:
    query = "active=true&silenced=true&inhibited=true&unprocessed=true"
    address = f"{url.rstrip('/')}/api/v2/alerts?{query}"
    if not address.startswith(("http://", "https://")):
        raise AlertsCliError(f"alertmanager URL must be http:// or https://: {_display(url)}")
    try:
        with urllib.request.urlopen(address, timeout=timeout_s) as response:  # noqa: S310
            answer = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise AlertsCliError(f"cannot read alerts from {_display(url)}: {exc}") from None
    if not isinstance(answer, list):
        raise AlertsCliError(f"{_display(url)} did not answer with a list of alerts")
    return delivery_states(answer)


def _alertmanager_url(args: argparse.Namespace) -> str | None:
    configured = args.alertmanager_url or os.environ.get("ENVNET_ALERTMANAGER_URL") or ""
    urls = [u.strip() for u in configured.split(",") if u.strip()]
    return urls[0] if urls else None


def _delivery(alert: Alert, states: DeliveryStates) -> str:
    return states.get((alert.node, alert.rule, "late" if alert.late else "live"), "-")


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _table(alerts: list[Alert], states: DeliveryStates | None = None) -> str:
    header: tuple[str, ...] = ("NODE", "RULE", "SEVERITY", "VALUE", "LIMIT", "SINCE", "ACKED BY")
    header += ("FLAGS",) if states is None else ("FLAGS", "ALERTMANAGER")
    rows = [header]
    for a in alerts:
        flags = ",".join(f for f, on in (("suspect", a.suspect), ("late", a.late)) if on)
        value = f"{a.value:g} {a.unit or ''}".strip()
        row = (a.node, a.rule, a.severity, value, f"{a.limit:g}", _when(a.since_ms),
               a.acked_by or "-", flags or "-")  # fmt: skip
        rows.append(row if states is None else (*row, _delivery(a, states)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def list_alerts(args: argparse.Namespace) -> int:
    with _Session(_endpoint(args), args.ca_file, args.timeout) as session:
        alerts = retained_alerts(session, topics.ALERTS_FILTER)
    open_alerts = sorted(
        (a for a in alerts if a.state == "firing" or args.all), key=lambda a: (a.node, a.rule)
    )
    am_url = _alertmanager_url(args)
    states = fetch_delivery_states(am_url, args.timeout) if am_url is not None else None
    if args.json:
        rows = [json.loads(codec.ALERT.encode(a)) for a in open_alerts]
        if states is not None:
            for row, alert in zip(rows, open_alerts, strict=True):
                row["alertmanager"] = _delivery(alert, states)
        print(json.dumps(rows))
    elif not open_alerts:
        print("no open alerts")
    else:
        print(_table(open_alerts, states))
    return 0


def ack_alert(args: argparse.Namespace) -> int:
    try:
        command = AlertCommand(
            ALERT_COMMAND_SCHEMA, "ack", args.node, args.rule, args.by, args.note
        )
        payload = codec.ALERT_COMMAND.encode(command)
        codec.ALERT_COMMAND.decode(payload)  # the aggregator's checks, here first
        state_topic = topics.alert(args.node, args.rule)
    except (ContractError, topics.TopicError) as exc:
        raise AlertsCliError(f"bad acknowledgement: {exc}") from None
    with _Session(_endpoint(args), args.ca_file, args.timeout) as session:
        current = retained_alerts(session, state_topic)
        if not current or current[0].state != "firing":
            raise AlertsCliError(f"no firing alert {args.rule} on node {args.node}")
        session.publish(topics.ALERT_COMMANDS, payload)
        deadline = time.monotonic() + session.timeout_s
        while (message := session.next(deadline)) is not None:
            if message.topic != state_topic or not message.payload:
                continue
            alert = codec.ALERT.decode(message.payload)
            if alert.acked_by == args.by:
                when = _when(alert.acked_ms)
                print(f"acknowledged {args.node} {args.rule} as {args.by} at {when}")
                return 0
    raise AlertsCliError("sent, but the aggregator did not confirm the acknowledgement in time")


def _endpoint(args: argparse.Namespace) -> MqttEndpoint:
    # ENVNET_MQTT_URL may list a cluster's servers: the first (home) serves a one-off look,
    # since every server holds the same retained alert states.
    listed = split_url_list(os.environ.get("ENVNET_MQTT_URL"))
    url = args.mqtt_url or (listed[0] if listed else DEFAULT_URL)
    try:
        return parse_mqtt_url(url)
    except EndpointError as exc:
        raise AlertsCliError(str(exc)) from None


def add_alerts_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--mqtt-url", help=f"broker (default: $ENVNET_MQTT_URL or {DEFAULT_URL})")
    common.add_argument("--ca-file", help="CA certificate for mqtts://")
    common.add_argument("--timeout", type=positive_float, default=10.0, help="seconds to wait (10)")
    show = sub.add_parser("list", parents=[common], help="show open alerts")
    show.add_argument("--all", action="store_true", help="include resolved alerts")
    show.add_argument("--json", action="store_true", help="print a JSON array")
    show.add_argument(
        "--alertmanager-url",
        help="also show what Alertmanager does with each alert: active, silenced, inhibited "
        "(default: $ENVNET_ALERTMANAGER_URL, its first URL; none: not shown)",
    )
    show.set_defaults(alerts_func=list_alerts)
    ack = sub.add_parser("ack", parents=[common], help="acknowledge an open alert")
    ack.add_argument("node", help="node id")
    ack.add_argument("rule", help="rule id, e.g. odour.h2s")
    ack.add_argument("--by", required=True, help="who takes it on (your name)")
    ack.add_argument("--note", help="a short note for the record")
    ack.set_defaults(alerts_func=ack_alert)


def run(args: argparse.Namespace) -> int:
    try:
        result: int = args.alerts_func(args)
    except AlertsCliError as exc:
        sys.stderr.write(f"envnet alerts: {exc}\n")
        return 1
    return result

"""Can this node reach its broker with its own credentials? For `envnet edge check`.

One MQTT connection with the node's URL, username, password and CA file, under a client id of
its own (reusing the agent's would disconnect a running agent), closed again at once. Every
failure is put in words a technician can act on: TLS verification errors by their cause,
CONNACK refusals by their code.
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from schemas.runtime.endpoints import MqttEndpoint

# OpenSSL X509_V_ERR_* codes (x509_vfy.h) that have a cause a technician can fix on site.
_VERIFY_HINTS: Final[dict[int, str]] = {
    9: "the broker's certificate is not valid yet: this node's clock is probably behind "
    "(see the clock row)",
    10: "the broker's certificate has expired, or this node's clock is ahead (see the clock row)",
    18: "the broker's certificate is self-signed and not the CA in ca_file",
    19: "the broker's certificate is not signed by the CA in ca_file: wrong or missing ca_file",
    20: "the broker's certificate is not signed by the CA in ca_file: wrong or missing ca_file",
    21: "the broker's certificate is not signed by the CA in ca_file: wrong or missing ca_file",
    62: "the broker's certificate is not issued for this host name: use the name on the "
    "certificate in mqtt.url",
}

# CONNACK refusals (MQTT 3.1.1 §3.2.2.3, as paho reports them).
_REFUSALS: Final[dict[str, str]] = {
    "Unsupported protocol version": "the broker does not speak MQTT 3.1.1",
    "Client identifier not valid": "the broker refused the client id",
    "Server unavailable": "the broker is up but not accepting connections",
    "Bad user name or password": "bad username or password",
    # mosquitto answers this for a wrong password and an unknown user too.
    "Not authorized": "not authorised: wrong username or password, or this user may not "
    "connect (mosquitto reports all of these as 'not authorised')",
}


@dataclass(frozen=True, slots=True)
class BrokerResult:
    ok: bool
    detail: str
    # Connected, but something will still go wrong (e.g. the ACL will drop the readings).
    warning: str | None = None


def explain_tls_error(exc: ssl.SSLError, ca_file: str | None) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        hint = _VERIFY_HINTS.get(exc.verify_code, "")
        where = f" (ca_file {ca_file})" if ca_file else " (no ca_file: the system's CAs)"
        reason = exc.verify_message or str(exc)
        return f"certificate verify failed: {reason}{where}" + (f"; {hint}" if hint else "")
    if exc.reason == "WRONG_VERSION_NUMBER":
        return "TLS handshake failed: this port does not speak TLS (use mqtt://, or the TLS port)"
    return f"TLS handshake failed: {exc.reason or exc}"


def explain_os_error(exc: OSError, endpoint: MqttEndpoint, timeout_s: float) -> str:
    where = f"{endpoint.host}:{endpoint.port}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host {endpoint.host!r}: {exc.strerror} (DNS, or a typo in mqtt.url)"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {where}: broker down, or wrong port"
    if isinstance(exc, ConnectionResetError) and endpoint.tls:
        return (
            f"{where} closed the connection in the TLS handshake: this port does not speak "
            "TLS (use mqtt://, or the TLS port)"
        )
    if isinstance(exc, TimeoutError):
        return f"no answer from {where} within {timeout_s:g} s: network, firewall or address"
    if isinstance(exc, FileNotFoundError):
        return f"cannot read ca_file: {exc}"
    return f"cannot connect to {where}: {exc}"


def explain_refusal(code: ReasonCode) -> str:
    name = code.getName()
    return f"broker refused the login: {_REFUSALS.get(name, name)}"


def probe_broker(
    endpoint: MqttEndpoint, ca_file: str | None, node: str, timeout_s: float
) -> BrokerResult:
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        # Its own id on an open broker. The shipped TLS broker replaces it with the username
        # (use_username_as_clientid), so there the check briefly takes over a running
        # agent's connection; the agent reconnects and resends what was not acked.
        client_id=f"envnet-check-{node}-{os.getpid()}",
        clean_session=True,
        protocol=mqtt.MQTTv311,
    )
    client.connect_timeout = timeout_s
    if endpoint.username is not None:
        client.username_pw_set(endpoint.username, endpoint.password)
    answers: list[ReasonCode | str] = []

    def on_connect(c: mqtt.Client, u: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        answers.append(rc)

    def on_disconnect(c: mqtt.Client, u: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        answers.append("closed")

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    started = time.monotonic()
    try:
        if endpoint.tls:
            client.tls_set(ca_certs=ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.connect(endpoint.host, endpoint.port, keepalive=max(5, int(timeout_s) * 2))
        deadline = started + timeout_s
        while not answers and time.monotonic() < deadline:
            client.loop(timeout=0.1)
    except ssl.SSLError as exc:
        return BrokerResult(False, explain_tls_error(exc, ca_file))
    except OSError as exc:
        return BrokerResult(False, explain_os_error(exc, endpoint, timeout_s))
    finally:
        client.disconnect()
        client.loop(timeout=0.05)
    return _judge(answers, endpoint, node, time.monotonic() - started, client, timeout_s)


def _judge(
    answers: list[ReasonCode | str],
    endpoint: MqttEndpoint,
    node: str,
    elapsed_s: float,
    client: mqtt.Client,
    timeout_s: float,
) -> BrokerResult:
    if not answers:
        return BrokerResult(False, f"no CONNACK within {timeout_s:g} s from {endpoint.display}")
    answer = answers[0]
    if isinstance(answer, str):
        hint = "" if endpoint.tls else ": if it expects TLS, use mqtts:// and ca_file"
        return BrokerResult(False, f"the broker closed the connection before answering{hint}")
    if answer.is_failure:
        return BrokerResult(False, explain_refusal(answer))
    login = f"as {endpoint.username!r}" if endpoint.username else "anonymously"
    tls = "TLS verified" if endpoint.tls else "no TLS"
    detail = f"connected to {endpoint.display} {login}, {tls}, in {elapsed_s * 1000:.0f} ms"
    warning = None
    if endpoint.username is not None and endpoint.username != node:
        # The shipped ACL (deploy/mosquitto/envnet.acl) grants topics by username.
        warning = (
            f"username {endpoint.username!r} is not the node id {node!r}: with the shipped "
            "ACL the broker drops this node's readings"
        )
    return BrokerResult(True, detail, warning)

"""The pure parts of a secured NatsCluster (simulators.local_stack): the config it writes, the
readiness probe's CONNECT packet, and the checks on a NatsSecurity. The cluster itself runs in
tests/integration/cluster/test_nats_security.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.local_stack import (
    NATS_MQTT_DELIVERY,
    NatsCluster,
    NatsSecurity,
    NatsUser,
    mqtt_connect_packet,
)

PKI = Path("/pki")


def security(*users: NatsUser, probe: str = "envnet-aggregator") -> NatsSecurity:
    return NatsSecurity(PKI / "ca.crt", PKI / "server.crt", PKI / "server.key", users, probe)


AGG = NatsUser("envnet-aggregator", 'a"b\\c')
NODE = NatsUser(
    "node-x",
    "x-secret",
    publish=("envnet.v1.nodes.node-x.readings",),
    subscribe=("envnet.v1.nodes.node-x.ack", NATS_MQTT_DELIVERY),
)


def test_the_default_cluster_has_no_tls_and_no_logins(tmp_path: Path) -> None:
    cluster = NatsCluster(tmp_path)
    text = cluster.servers[0].config_text([1, 2])
    assert "authorization" not in text and "tls" not in text
    assert cluster.url(0).startswith("mqtt://")
    with pytest.raises(ValueError, match="no logins"):
        cluster.login_url(0, "node-x")


def test_a_secured_cluster_writes_tls_inside_mqtt_and_the_users_at_top_level(
    tmp_path: Path,
) -> None:
    cluster = NatsCluster(tmp_path, security=security(AGG, NODE))
    text = cluster.servers[1].config_text([1, 2])
    mqtt_block = text[text.index("mqtt {") :]
    assert 'tls {\n    cert_file: "/pki/server.crt"' in mqtt_block
    assert 'ca_file: "/pki/ca.crt"' in mqtt_block
    top = text[: text.index("mqtt {")]
    # Quoted as JSON strings, so a quote or backslash in a password cannot break the file.
    assert '{ user: "envnet-aggregator", password: "a\\"b\\\\c", ' in top
    assert (
        'permissions: { publish: { allow: ["envnet.v1.nodes.node-x.readings"] }, '
        'subscribe: { allow: ["envnet.v1.nodes.node-x.ack", "$MQTT.sub.>"] } }'
    ) in top
    assert top.count('allowed_connection_types: ["MQTT"]') == 2
    assert cluster.url(1).startswith("mqtts://")
    port = cluster.servers[1].mqtt_port
    assert cluster.login_url(1, "envnet-aggregator") == (
        f"mqtts://envnet-aggregator:a%22b%5Cc@127.0.0.1:{port}"
    )


def test_a_password_is_not_in_a_users_repr() -> None:
    assert "x-secret" not in repr(NODE)


def test_security_refuses_duplicate_users_and_an_unknown_probe_user() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        security(AGG, AGG)
    with pytest.raises(ValueError, match="probe_user"):
        security(NODE, probe="envnet-aggregator")


def test_the_probe_connect_without_a_login_is_the_one_it_always_sent() -> None:
    client_id = b"envnet-ready-probe"
    body = b"\x00\x04MQTT\x04\x02\x00\x05" + len(client_id).to_bytes(2, "big") + client_id
    assert mqtt_connect_packet("envnet-ready-probe") == bytes([0x10, len(body)]) + body


def test_the_probe_connect_with_a_login_sets_both_flags_and_a_long_remaining_length() -> None:
    password = "p" * 200  # remaining length above 127 takes two bytes (MQTT 3.1.1 §2.2.3)
    packet = mqtt_connect_packet("c", ("u", password))
    body_length = 10 + 3 + 3 + 2 + len(password)
    assert packet[:3] == bytes([0x10, (body_length % 128) | 0x80, body_length // 128])
    assert packet[3 + 7] == 0xC2  # username, password, clean session
    assert packet.endswith(b"\x00\x01u" + len(password).to_bytes(2, "big") + password.encode())

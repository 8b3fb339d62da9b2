"""Intake refuses bad input with a stable reason, and never loses a good reading."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.fleet import Fleet, NodeInfo
from aggregator.intake import AcceptedBatch, AcceptedStatus, Intake, Refusal

FLEET = Fleet({"n1": NodeInfo(site="Site one"), "n2": NodeInfo(site="Site two")})
TOPIC = "envnet/v1/nodes/n1/readings"


def good(**overrides: object) -> dict[str, object]:
    return {
        "ts": 1796000400000,
        "quantity": "o3",
        "value": 80.0,
        "unit": "ug/m3",
        "period_s": 60,
        "stat": "mean",
        "sensor": "s1",
        **overrides,
    }


def payload(readings: list[dict[str, object]], node: str = "n1", seq: int = 5) -> bytes:
    message = {"schema": "envnet.readings/1", "node": node, "seq": seq, "readings": readings}
    return json.dumps(message).encode()


def intake() -> Intake:
    return Intake(FLEET, max_payload_bytes=64 * 1024)


def test_accepts_a_good_batch() -> None:
    result = intake().readings(TOPIC, payload([good(), good(quantity="co", unit="mg/m3", value=1)]))
    assert isinstance(result, AcceptedBatch)
    assert result.seq == 5 and len(result.readings) == 2 and result.bad_readings == []
    assert result.info.node == "n1" and result.info.site == "Site one"


@pytest.mark.parametrize(
    ("topic", "body", "reason"),
    [
        (TOPIC, b"x" * (64 * 1024 + 1), "oversized"),
        ("envnet/v1/nodes/n1/readings/extra", payload([good()]), "bad_topic"),
        ("envnet/v2/nodes/n1/readings", payload([good()]), "bad_topic"),
        ("envnet/v1/nodes/N1!/readings", payload([good()]), "bad_topic"),
        ("envnet/v1/nodes/n1/status", payload([good()]), "bad_topic"),
        (TOPIC, b"{not json", "malformed"),
        (TOPIC, b"", "malformed"),
        (TOPIC, b'{"schema": "envnet.readings/1", "node": "n1"}', "invalid"),
        (TOPIC, payload([good()], seq=0), "invalid"),
        (TOPIC, payload([]), "invalid"),
        ("envnet/v1/nodes/ghost/readings", payload([good()], node="ghost"), "unknown_node"),
        (TOPIC, payload([good()], node="n2"), "node_mismatch"),
        (TOPIC, payload([good(unit="ppb")], node="n2"), "node_mismatch"),
        (TOPIC, payload([good()], node="n1 value=1"), "invalid"),
    ],
)
def test_refusals(topic: str, body: bytes, reason: str) -> None:
    result = intake().readings(topic, body)
    assert isinstance(result, Refusal), result
    assert result.reason == reason
    assert result.detail


def test_bad_readings_are_refused_alone_and_good_ones_kept() -> None:
    readings = [
        good(),
        good(unit="ppb"),
        good(quantity="rh", unit="%", value=140.0),
        good(sensor="s1,evil=1"),
        good(ts=1796000460000),
    ]
    result = intake().readings(TOPIC, payload(readings))
    assert isinstance(result, AcceptedBatch)
    assert [r.ts for r in result.readings] == [1796000400000, 1796000460000]
    assert [e.index for e in result.bad_readings] == [1, 2, 3]
    assert "ppb" in result.bad_readings[0].detail


def test_a_batch_of_only_bad_readings_is_still_accepted_so_it_can_be_acked() -> None:
    result = intake().readings(TOPIC, payload([good(unit="ppb")]))
    assert isinstance(result, AcceptedBatch)
    assert result.readings == [] and len(result.bad_readings) == 1


def test_status_and_will() -> None:
    body = json.dumps(
        {"schema": "envnet.status/1", "node": "n1", "state": "offline", "reason": "lost"}
    ).encode()
    result = intake().status("envnet/v1/nodes/n1/status", body)
    assert isinstance(result, AcceptedStatus) and result.status.state == "offline"
    refused = intake().status("envnet/v1/nodes/n1/status", b"{}")
    assert isinstance(refused, Refusal) and refused.reason == "invalid"


@given(st.binary(max_size=2000), st.sampled_from([TOPIC, "x", "envnet/v1/nodes/n1/status"]))
def test_arbitrary_bytes_never_raise(body: bytes, topic: str) -> None:
    result = intake().readings(topic, body)
    assert isinstance(result, Refusal | AcceptedBatch)


@given(st.text(max_size=200))
def test_arbitrary_topics_never_raise(topic: str) -> None:
    result = intake().readings(topic, payload([good()]))
    assert isinstance(result, Refusal | AcceptedBatch)

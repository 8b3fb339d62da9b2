"""Every decoder of network input refuses hostile payloads with a stable reason, and never
raises: deep nesting (100,000 levels), huge arrays, non-UTF-8 bytes, and line-protocol
specials (space, comma, '=', quote, backslash, newline) in ids (issue 9, item 1)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any, Final

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.config import load_aggregator_config
from aggregator.fleet import Fleet, NodeInfo
from aggregator.intake.checks import AcceptedBatch, AcceptedStatus, Intake, Refusal
from aggregator.service import AggregatorService
from schemas import codec
from schemas.codec import NESTED_TOO_DEEPLY, Codec, ContractError

FLEET: Final = Fleet({"n1": NodeInfo(site="Site one")})
READINGS_TOPIC: Final = "envnet/v1/nodes/n1/readings"
STATUS_TOPIC: Final = "envnet/v1/nodes/n1/status"
LIMIT: Final = 4 * 1024 * 1024
SPECIALS: Final = (" ", ",", "=", '"', "\\", "\n")


def nested(depth: int, open_: bytes = b"[", close: bytes = b"]") -> bytes:
    return open_ * depth + close * depth


def nested_objects(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def reading(**overrides: object) -> dict[str, object]:
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


def readings_message(readings: Sequence[object], seq: int = 5, node: str = "n1") -> bytes:
    message = {"schema": "envnet.readings/1", "node": node, "seq": seq, "readings": readings}
    return json.dumps(message).encode()


def deep_in(field: str, depth: int) -> bytes:
    """A readings message with a value nested `depth` levels deep in `field`."""
    head = readings_message([reading()])[:-1]
    return head + f', "{field}": '.encode() + nested(depth) + b"}"


# Where a deep value can sit in a readings message: the whole payload, an unknown field (the
# typed decoders skip it recursively), inside a reading (the salvage path's raw readings),
# after a bad first reading (the contract decoder fails early, the envelope reaches the
# depth), and objects instead of arrays. (A top-level array is refused at its first byte as
# `invalid`, before any depth is reached.)
DEEP_READINGS: Final = {
    "objects": nested_objects(100_000),
    "unknown_field": deep_in("extra", 100_000),
    "in_a_reading": readings_message([reading()])[:-2] + b", " + nested(100_000) + b"]}",
    "after_a_bad_reading": readings_message([{"bad": 1}])[:-2] + b", " + nested(100_000) + b"]}",
    "just_past_the_limit": deep_in("extra", 5_000),
}


@pytest.mark.parametrize("name", list(DEEP_READINGS))
def test_deep_nesting_in_readings_is_refused_as_malformed(name: str) -> None:
    result = Intake(FLEET, LIMIT).readings(READINGS_TOPIC, DEEP_READINGS[name])
    assert isinstance(result, Refusal), result
    assert (result.reason, result.node) == ("malformed", "n1")


def test_deep_nesting_in_status_is_refused_as_malformed() -> None:
    body = b'{"schema": "envnet.status/1", "node": "n1", "state": "online", "x": '
    for payload in (body + nested(100_000) + b"}", nested_objects(100_000)):
        result = Intake(FLEET, LIMIT).status(STATUS_TOPIC, payload)
        assert isinstance(result, Refusal), result
        assert result.reason == "malformed"


@pytest.mark.parametrize(
    "decoder",
    [
        codec.READINGS,
        codec.STATUS,
        codec.ACK,
        codec.ALERT,
        codec.ALERT_EVENT,
        codec.ALERT_COMMAND,
        codec.REFUSAL,
    ],
    ids=["readings", "status", "ack", "alert", "alert_event", "alert_command", "refusal"],
)
def test_every_contract_codec_refuses_deep_nesting(decoder: Codec[object]) -> None:
    for payload in (nested_objects(100_000), b'{"x": ' + nested(100_000) + b"}"):
        with pytest.raises(ContractError) as error:
            decoder.decode(payload)
        # Malformed where the decoder skips the unknown field down to the depth; an
        # alert command forbids unknown fields, so its decoder stops at the first one.
        if decoder is codec.ALERT_COMMAND:
            assert error.value.kind == "invalid"
        else:
            assert (error.value.kind, error.value.detail) == ("malformed", NESTED_TOO_DEEPLY)


def test_a_top_level_deep_array_is_refused_at_once_as_invalid() -> None:
    result = Intake(FLEET, LIMIT).readings(READINGS_TOPIC, nested(100_000))
    assert isinstance(result, Refusal) and result.reason == "invalid"


def test_a_10000_reading_message_is_refused_as_invalid_not_crashed() -> None:
    body = readings_message([reading(ts=1796000400000 + i * 60_000) for i in range(10_000)])
    assert len(body) < LIMIT
    result = Intake(FLEET, LIMIT).readings(READINGS_TOPIC, body)
    assert isinstance(result, Refusal)
    assert result.reason == "invalid"  # the contract's 1000-reading bound


def test_a_10000_reading_message_over_the_payload_limit_is_oversized() -> None:
    body = readings_message([reading(ts=1796000400000 + i * 60_000) for i in range(10_000)])
    result = Intake(FLEET, 1024 * 1024).readings(READINGS_TOPIC, body)
    assert isinstance(result, Refusal)
    assert result.reason == "oversized"


def test_non_utf8_bytes_are_malformed() -> None:
    for body in (b"\xff\xfe\x00", readings_message([reading()]).replace(b'"s1"', b'"s\xff1"')):
        result = Intake(FLEET, LIMIT).readings(READINGS_TOPIC, body)
        assert isinstance(result, Refusal)
        assert result.reason == "malformed"


@pytest.mark.parametrize("special", SPECIALS)
def test_line_protocol_specials_in_ids_are_refused(special: str) -> None:
    intake = Intake(FLEET, LIMIT)
    in_node = intake.readings(READINGS_TOPIC, readings_message([reading()], node=f"n1{special}"))
    assert isinstance(in_node, Refusal) and in_node.reason == "invalid"
    in_topic = intake.readings(f"envnet/v1/nodes/n{special}1/readings", b"{}")
    assert isinstance(in_topic, Refusal) and in_topic.reason == "bad_topic"
    # A bad sensor id costs its reading, not the message's good readings.
    mixed = intake.readings(
        READINGS_TOPIC, readings_message([reading(), reading(sensor=f"s{special}1")])
    )
    assert isinstance(mixed, AcceptedBatch)
    assert len(mixed.readings) == 1 and [e.index for e in mixed.bad_readings] == [1]


# -- fuzzing ---------------------------------------------------------------------------------

ID_TEXT: Final = st.text(
    alphabet=st.sampled_from([*SPECIALS, "a", "1", "-", "_", ".", "é", "\x00", "/"]), max_size=12
)


@st.composite
def hostile_json(draw: st.DrawFn) -> bytes:
    """A readings-shaped payload with one hostile part, or a deep or raw one."""
    kind = draw(st.sampled_from(["deep", "deep_field", "wide", "ids", "raw", "spliced"]))
    depth = draw(st.sampled_from([10, 999, 1_001, 5_000, 100_000]))
    if kind == "deep":
        return nested(depth) if draw(st.booleans()) else nested_objects(depth)
    if kind == "deep_field":
        return deep_in(draw(st.sampled_from(["extra", "readings", "seq", "node"])), depth)
    if kind == "wide":
        n = draw(st.sampled_from([1_000, 1_001, 10_000]))
        return readings_message([reading(ts=1796000400000 + i * 60_000) for i in range(n)])
    if kind == "ids":
        node, sensor = draw(ID_TEXT), draw(ID_TEXT)
        return readings_message([reading(sensor=sensor)], node=node)
    if kind == "raw":
        return draw(st.binary(max_size=300))
    good = readings_message([reading()])
    cut = draw(st.integers(0, len(good)))
    return good[:cut] + draw(st.binary(min_size=1, max_size=8)) + good[cut:]


@settings(max_examples=150)
@given(hostile_json())
def test_fuzzed_readings_never_raise(body: bytes) -> None:
    result = Intake(FLEET, LIMIT).readings(READINGS_TOPIC, body)
    assert isinstance(result, AcceptedBatch | Refusal)
    if isinstance(result, Refusal):
        assert result.reason in {"malformed", "invalid", "node_mismatch"}


@settings(max_examples=100)
@given(hostile_json())
def test_fuzzed_status_and_codecs_never_raise(body: bytes) -> None:
    result = Intake(FLEET, LIMIT).status(STATUS_TOPIC, body)
    assert isinstance(result, AcceptedStatus | Refusal)
    for decoder in (codec.ACK, codec.ALERT_COMMAND, codec.STATUS, codec.READINGS, codec.REFUSAL):
        assert _outcome(decoder, body) in {"decoded", "malformed", "invalid"}


def _outcome(decoder: Codec[Any], body: bytes) -> str:
    """'decoded', or the kind of the ContractError; anything else raised fails the test."""
    try:
        decoder.decode(body)
    except ContractError as exc:
        return exc.kind
    return "decoded"


@given(ID_TEXT, st.sampled_from(["readings", "status"]))
def test_fuzzed_topic_ids_never_raise(node: str, kind: str) -> None:
    intake = Intake(FLEET, LIMIT)
    topic = f"envnet/v1/nodes/{node}/{kind}"
    result = (intake.readings if kind == "readings" else intake.status)(topic, b"{}")
    assert isinstance(result, Refusal)
    assert result.reason in {"bad_topic", "unknown_node", "invalid"}


# -- the last resort: a handler failure costs one message, never the service ----------------


class _BrokenIntake(Intake):
    """A test double: every decoder above refuses bad input by itself, so no real payload
    reaches the guard any more; this intake fails as a future bug would."""

    def status(self, topic: str, payload: bytes) -> AcceptedStatus | Refusal:
        raise RecursionError("a bug in a decoder")


def test_a_failing_handler_is_counted_and_the_service_carries_on() -> None:
    config = load_aggregator_config(
        None, {"ENVNET_MQTT_URL": "mqtt://127.0.0.1:1", "ENVNET_INFLUX_URL": "http://127.0.0.1:1"}
    )
    service = AggregatorService(config, FLEET)
    service._intake = _BrokenIntake(FLEET, LIMIT)
    asyncio.run(service._handle(STATUS_TOPIC, b"{}"))
    asyncio.run(service._handle(STATUS_TOPIC, b"{}"))
    failures = service.metrics.registry.get_sample_value(
        "envnet_message_failures_total", {"kind": "status"}
    )
    assert failures == 2

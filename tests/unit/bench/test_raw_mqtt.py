"""The bench's lean publishing client: its PUBLISH bytes and its reading of a broker's
replies, in any split (bench/_raw_mqtt.py). The real-broker test is in
tests/integration/bench/test_raw_publisher.py."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.intake.mqtt_packets import puback_packet, remaining_length
from bench._raw_mqtt import RawMqttError, ReplyReader, publish_header, publish_packet

CONNACK_OK = b"\x20\x02\x00\x00"
SUBACK = b"\x90\x03\x00\x01\x01"
PINGRESP = b"\xd0\x00"


def incoming_publish(topic: str, payload: bytes, packet_id: int) -> bytes:
    """A PUBLISH as a broker sends it (QoS 1 with an id, QoS 0 without)."""
    first = 0x32 if packet_id else 0x30
    body = publish_header(topic) + (packet_id.to_bytes(2, "big") if packet_id else b"") + payload
    return bytes((first,)) + remaining_length(len(body)) + body


def test_publish_packet_is_laid_out_as_3_3() -> None:
    packet = publish_packet(publish_header("envnet/v1/n1/readings"), 0x1234, b"{}")
    topic = b"envnet/v1/n1/readings"
    assert packet == b"\x32" + bytes((2 + len(topic) + 2 + 2,)) + b"\x00\x15" + topic + (
        b"\x12\x34{}"
    )


def test_a_long_payload_gets_a_multi_byte_remaining_length() -> None:
    packet = publish_packet(publish_header("t"), 1, b"x" * 200)
    assert packet[1:3] == remaining_length(3 + 2 + 200)
    assert len(packet) == 1 + 2 + 3 + 2 + 200


STREAM = [
    CONNACK_OK,
    SUBACK,
    puback_packet(1),
    incoming_publish("envnet/v1/n1/ack", b'{"seqs":[1]}', 7),
    puback_packet(2),
    PINGRESP,
    incoming_publish("envnet/v1/n1/ack", b"x" * 300, 0),
    puback_packet(3),
]


@given(st.lists(st.integers(min_value=0, max_value=sum(map(len, STREAM))), max_size=12))
def test_any_split_yields_every_packet_once_in_order(cuts: list[int]) -> None:
    data = b"".join(STREAM)
    bounds = [0, *sorted(cuts), len(data)]
    reader = ReplyReader()
    pubacks = subacks = 0
    connected = False
    messages: list[tuple[bytes, int]] = []
    for a, b in itertools.pairwise(bounds):
        got = reader.feed(data[a:b])
        pubacks += got.pubacks
        subacks += got.subacks
        connected = connected or got.connected
        messages += got.messages
    assert (pubacks, subacks, connected) == (3, 1, True)
    assert messages == [(b'{"seqs":[1]}', 7), (b"x" * 300, 0)]


def test_a_refused_connack_raises() -> None:
    with pytest.raises(RawMqttError, match="refused the connection: code 5"):
        ReplyReader().feed(b"\x20\x02\x00\x05")


def test_a_packet_no_broker_sends_a_publisher_raises() -> None:
    with pytest.raises(RawMqttError, match="unexpected packet type 1"):
        ReplyReader().feed(b"\x10\x00")  # a CONNECT


def test_a_malformed_remaining_length_raises() -> None:
    with pytest.raises(RawMqttError, match="malformed remaining length"):
        ReplyReader().feed(b"\x40\xff\xff\xff\xff\x01")

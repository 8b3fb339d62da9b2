"""The bench's lean publishing client reads a broker's replies with the aggregator's codec:
counted in any split, a refusal and bytes no broker sends are errors (bench/_raw_mqtt.py).
The real-broker test is tests/integration/bench/test_raw_publisher.py."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.intake.mqtt_packets import PacketReader, puback_packet, publish_packet
from bench._raw_mqtt import RawMqttError, received

CONNACK_OK = b"\x20\x02\x00\x00"
SUBACK = b"\x90\x03\x00\x01\x01"
PINGRESP = b"\xd0\x00"
ACK_TOPIC = "envnet/v1/n1/ack"
STREAM = [
    CONNACK_OK,
    SUBACK,
    puback_packet(1),
    publish_packet(ACK_TOPIC, b'{"seqs":[1]}', 7),
    puback_packet(2),
    PINGRESP,
    publish_packet(ACK_TOPIC, b"x" * 300),
    puback_packet(3),
]


@given(st.lists(st.integers(min_value=0, max_value=sum(map(len, STREAM))), max_size=12))
def test_any_split_yields_every_packet_once_in_order(cuts: list[int]) -> None:
    data = b"".join(STREAM)
    reader = PacketReader()
    pubacks = subacks = 0
    connected = False
    messages = []
    for a, b in itertools.pairwise([0, *sorted(cuts), len(data)]):
        got = received(reader, data[a:b])
        pubacks += got.pubacks
        subacks += got.subacks
        connected = connected or got.connected
        messages += got.messages
    assert (pubacks, subacks, connected) == (3, 1, True)
    assert messages == [(ACK_TOPIC, b'{"seqs":[1]}', 7), (ACK_TOPIC, b"x" * 300, 0)]


def test_a_refused_connack_raises() -> None:
    with pytest.raises(RawMqttError, match="refused the connection: Not authorized"):
        received(PacketReader(), b"\x20\x02\x00\x05")


def test_a_packet_no_broker_sends_a_publisher_raises() -> None:
    with pytest.raises(RawMqttError, match="unreadable bytes from the broker"):
        received(PacketReader(), b"\x10\x00")  # a CONNECT

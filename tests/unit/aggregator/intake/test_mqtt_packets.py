"""The aggregator's MQTT 3.1.1 codec, without a broker: packets against the standard's layout,
and the reader against any split of a stream and every malformed packet it must refuse."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.intake.mqtt_packets import (
    MAX_REMAINING_LENGTH,
    ConnAck,
    Control,
    PacketReader,
    PingResp,
    ProtocolError,
    PubAck,
    Publish,
    SubAck,
    UnsubAck,
    connect_packet,
    puback_packet,
    remaining_length,
    subscribe_packet,
    unsubscribe_packet,
)
from aggregator.intake.mqtt_packets import publish_packet as our_publish_packet


def publish_packet(topic: str, payload: bytes, packet_id: int, *, dup: bool = False) -> bytes:
    """A broker's PUBLISH (3.3), built independently of the reader under test."""
    raw_topic = topic.encode()
    qos = 1 if packet_id else 0
    body = len(raw_topic).to_bytes(2, "big") + raw_topic
    body += packet_id.to_bytes(2, "big") if qos else b""
    body += payload
    first = 0x30 | (qos << 1) | (0x08 if dup else 0)
    return bytes((first,)) + remaining_length(len(body)) + body


def decode_remaining_length(raw: bytes) -> int:
    value = 0
    for index, byte in enumerate(raw):
        value |= (byte & 0x7F) << (7 * index)
    return value


@given(st.integers(min_value=0, max_value=MAX_REMAINING_LENGTH))
def test_remaining_length_round_trips_in_at_most_four_bytes(length: int) -> None:
    raw = remaining_length(length)
    assert 1 <= len(raw) <= 4
    assert all(byte & 0x80 for byte in raw[:-1]) and not raw[-1] & 0x80
    assert decode_remaining_length(raw) == length


def test_remaining_length_refuses_what_four_bytes_cannot_hold() -> None:
    with pytest.raises(ValueError, match="remaining length"):
        remaining_length(MAX_REMAINING_LENGTH + 1)


def test_connect_of_a_persistent_session_with_a_login_byte_by_byte() -> None:
    """3.1: fixed header, protocol name and level, flags, keep-alive, then the payload."""
    expected = (
        b"\x10\x2a"  # CONNECT, 42 bytes follow
        + b"\x00\x04MQTT\x04"  # protocol name, level 4 (3.1.1)
        + b"\xc0"  # user name and password, no clean session, no will (3.1.2.3)
        + b"\x00\x1e"  # keep-alive 30 s
        + b"\x00\x11envnet-aggregator"
        + b"\x00\x03agg"
        + b"\x00\x06s3cret"
    )
    assert expected == connect_packet(
        "envnet-aggregator", clean=False, keepalive_s=30, username="agg", password="s3cret"
    )


def test_connect_flags_and_refusals() -> None:
    anonymous = connect_packet("c", clean=True, keepalive_s=60)
    assert anonymous[9] == 0x02  # clean session, no user name or password (3.1.2.3)
    with pytest.raises(ValueError, match="user name"):
        connect_packet("c", clean=True, keepalive_s=60, password="p")
    with pytest.raises(ValueError, match="keepalive"):
        connect_packet("c", clean=True, keepalive_s=70_000)


def test_subscribe_unsubscribe_and_puback_bytes() -> None:
    assert subscribe_packet(7, [("a/+", 1)]) == b"\x82\x08\x00\x07\x00\x03a/+\x01"
    assert unsubscribe_packet(7, ["a/+"]) == b"\xa2\x07\x00\x07\x00\x03a/+"
    assert puback_packet(0x1234) == b"\x40\x02\x12\x34"
    with pytest.raises(ValueError, match="at least one"):
        subscribe_packet(1, [])
    with pytest.raises(ValueError, match="packet id"):
        subscribe_packet(0, [("a", 1)])
    with pytest.raises(ValueError, match="QoS"):
        subscribe_packet(1, [("a", 3)])


def test_our_publish_bytes_at_qos_1_and_0_retained_or_not() -> None:
    """3.3: the fixed header's QoS and RETAIN bits, the topic, the packet id at QoS 1 only."""
    assert our_publish_packet("a/b", b"xy", 0x0102) == b"\x32\x09\x00\x03a/b\x01\x02xy"
    assert our_publish_packet("a/b", b"xy", retain=True) == b"\x31\x07\x00\x03a/bxy"
    # What the reader makes of ours is what was sent (the reader is tested independently).
    publishes: list[Publish] = []
    PacketReader().feed(our_publish_packet("t/é", b"p" * 200, 9), publishes, [])
    assert publishes == [("t/é", b"p" * 200, 9)]
    for topic in ("", "a/+", "a/#"):
        with pytest.raises(ValueError, match="not a topic to publish to"):
            our_publish_packet(topic, b"x", 1)
    with pytest.raises(ValueError, match="packet id"):
        our_publish_packet("a", b"x", 0x10000)


def test_control_packets_are_parsed() -> None:
    publishes: list[Publish] = []
    stream = b"\x20\x02\x01\x00" + b"\x90\x05\x00\x03\x01\x80\x00" + b"\xb0\x02\x00\x04"
    stream += b"\xd0\x00" + b"\x40\x02\x12\x34"
    controls: list[Control] = []
    PacketReader().feed(stream, publishes, controls)
    assert controls == [
        ConnAck(session_present=True, code=0),
        SubAck(3, (1, 0x80, 0)),
        UnsubAck(4),
        PingResp(),
        PubAck(0x1234),
    ]
    assert publishes == []


messages = st.lists(
    st.tuples(
        st.text(min_size=1, max_size=40),
        st.binary(max_size=300),
        st.integers(min_value=0, max_value=0xFFFF),
    ),
    max_size=30,
)


@given(messages, st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=60))
def test_any_split_of_a_stream_yields_every_publish_in_order(
    sent: list[tuple[str, bytes, int]], cuts: list[int]
) -> None:
    stream = b"".join(publish_packet(*message) for message in sent) + b"\xd0\x00"
    reader = PacketReader()
    got: list[Publish] = []
    controls: list[Control] = []
    pos = 0
    for size in cuts * (len(stream) // sum(cuts) + 1):
        reader.feed(stream[pos : pos + size], got, controls)
        pos += size
        if pos >= len(stream):
            break
    assert got == sent
    assert controls == [PingResp()]


def test_a_large_publish_arriving_in_many_reads_is_joined_once_complete() -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB: a full backlog message is far smaller
    stream = publish_packet("envnet/v1/nodes/n1/readings", payload, 9)
    reader = PacketReader()
    got: list[Publish] = []
    for start in range(0, len(stream), 65536):
        reader.feed(stream[start : start + 65536], got, [])
    assert got == [("envnet/v1/nodes/n1/readings", payload, 9)]


def test_the_dup_and_retain_flags_do_not_change_the_message() -> None:
    got: list[Publish] = []
    retained = bytearray(publish_packet("s", b"x", 0))
    retained[0] |= 0x01
    PacketReader().feed(publish_packet("t", b"p", 5, dup=True) + bytes(retained), got, [])
    assert got == [("t", b"p", 5), ("s", b"x", 0)]


def test_a_topic_that_is_not_utf8_is_kept_for_the_checks_to_refuse() -> None:
    """Dropping the connection instead would get the message redelivered for ever."""
    body = b"\x00\x02\xff\xfe" + b"\x00\x01" + b"payload"
    got: list[Publish] = []
    PacketReader().feed(b"\x32" + remaining_length(len(body)) + body, got, [])
    assert got == [("\ufffd\ufffd", b"payload", 1)]


@pytest.mark.parametrize(
    ("stream", "why"),
    [
        (b"\x30\xff\xff\xff\xff\x01", "longer than 4 bytes"),
        (b"\x32\x03\x00\x05a", "shorter than its topic"),
        (b"\x32\x04\x00\x01a\x00", "shorter than its topic"),
        (b"\x36\x05\x00\x01a\x00\x01", "QoS 3"),
        (b"\x34\x05\x00\x01a\x00\x01", "QoS 2"),
        (b"\x32\x05\x00\x01a\x00\x00", "packet id 0"),
        (b"\x20\x03\x00\x00\x00", "unexpected packet: type 2"),
        (b"\x40\x03\x00\x01\x00", "unexpected packet: type 4"),  # a PUBACK is 2 bytes
        (b"\xf0\x00", "unexpected packet: type 15"),
    ],
)
def test_bytes_no_broker_may_send_raise_protocol_error(stream: bytes, why: str) -> None:
    with pytest.raises(ProtocolError, match=why):
        PacketReader().feed(stream, [], [])


def test_packets_before_a_bad_packet_are_kept() -> None:
    got: list[Publish] = []
    controls: list[Control] = []
    stream = b"\x20\x02\x00\x00" + publish_packet("t", b"good", 1) + b"\xf0\x00"
    with pytest.raises(ProtocolError):
        PacketReader().feed(stream, got, controls)
    assert got == [("t", b"good", 1)]
    assert controls == [ConnAck(session_present=False, code=0)]

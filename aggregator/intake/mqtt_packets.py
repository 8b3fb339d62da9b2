"""MQTT 3.1.1 packets of the aggregator's own client, built and parsed without I/O.

The aggregator's connections (aggregator.intake.intake_connection) subscribe, receive PUBLISH
and acknowledge it (intake), and publish at QoS 0 or 1 (acks, alert states and events), so
they need a small part of the protocol: CONNECT, SUBSCRIBE, UNSUBSCRIBE, PUBLISH, PUBACK,
PINGREQ and DISCONNECT out; CONNACK, SUBACK, UNSUBACK, PUBACK, PINGRESP and PUBLISH in
(MQTT 3.1.1, OASIS standard, chapters 2 and 3; section numbers below are its). `PacketReader`
parses every complete packet of what the socket gave in one call, and hands PUBLISHes over as plain
tuples: the per-message objects, callbacks and topic matching of a general client were about
a quarter of the aggregator's time with live messages (bench/README.md, "Live path profile").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

# 3.1.1 section 1.5.3: a UTF-8 string is at most 65,535 bytes after its 2-byte length.
MAX_STRING_BYTES: Final = 0xFFFF
# 2.2.3: the remaining length takes at most 4 bytes, so a packet is at most this long.
MAX_REMAINING_LENGTH: Final = 268_435_455

PINGREQ: Final = b"\xc0\x00"  # 3.12
DISCONNECT: Final = b"\xe0\x00"  # 3.14

# Fixed-header packet types (2.2.1).
_CONNACK: Final = 2
_PUBLISH: Final = 3
_PUBACK: Final = 4
_SUBACK: Final = 9
_UNSUBACK: Final = 11
_PINGRESP: Final = 13

# CONNACK return codes (3.2.2.3), for the error a refused connection raises; spelled as paho
# spells them, so the publisher's and the subscriber's log lines say the same.
CONNACK_REASONS: Final = {
    1: "Unsupported protocol version",
    2: "Client identifier not valid",
    3: "Server unavailable",
    4: "Bad user name or password",
    5: "Not authorized",
}


class ProtocolError(Exception):
    """The broker sent bytes that are not a packet a 3.1.1 subscriber can receive."""


@dataclass(frozen=True, slots=True)
class ConnAck:
    session_present: bool
    code: int


@dataclass(frozen=True, slots=True)
class SubAck:
    packet_id: int
    codes: tuple[int, ...]  # one per filter, in order: 0-2 granted QoS, 0x80 refused


@dataclass(frozen=True, slots=True)
class UnsubAck:
    packet_id: int


@dataclass(frozen=True, slots=True)
class PubAck:
    packet_id: int


@dataclass(frozen=True, slots=True)
class PingResp:
    pass


Control = ConnAck | SubAck | UnsubAck | PubAck | PingResp
# A received PUBLISH: topic, payload, packet id (0 at QoS 0, which is not acknowledged).
Publish = tuple[str, bytes, int]


def remaining_length(length: int) -> bytes:
    """2.2.3: 7 bits per byte, least significant first, the top bit meaning "more"."""
    if not 0 <= length <= MAX_REMAINING_LENGTH:
        raise ValueError(f"remaining length {length} is outside 0..{MAX_REMAINING_LENGTH}")
    out = bytearray()
    while True:
        byte, length = length & 0x7F, length >> 7
        out.append(byte | 0x80 if length else byte)
        if not length:
            return bytes(out)


def _string(text: str) -> bytes:
    raw = text.encode()
    if len(raw) > MAX_STRING_BYTES:
        raise ValueError(f"{len(raw)} bytes is too long for an MQTT string")
    return len(raw).to_bytes(2, "big") + raw


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + remaining_length(len(body)) + body


def connect_packet(
    client_id: str,
    *,
    clean: bool,
    keepalive_s: int,
    username: str | None = None,
    password: str | None = None,
) -> bytes:
    """3.1: protocol "MQTT" level 4; no will (the intake connection has none)."""
    if not 0 <= keepalive_s <= 0xFFFF:
        raise ValueError(f"keepalive {keepalive_s} s is outside 0..65535")
    if password is not None and username is None:
        raise ValueError("MQTT 3.1.1 sends a password only with a user name (3.1.2.9)")
    flags = (0x02 if clean else 0) | (0x80 if username is not None else 0)
    flags |= 0x40 if password is not None else 0
    body = _string("MQTT") + bytes((4, flags)) + keepalive_s.to_bytes(2, "big")
    body += _string(client_id)
    if username is not None:
        body += _string(username)
    if password is not None:
        body += _string(password)
    return _packet(0x10, body)


def _check_packet_id(packet_id: int) -> bytes:
    if not 1 <= packet_id <= 0xFFFF:  # 2.3.1: non-zero
        raise ValueError(f"packet id {packet_id} is outside 1..65535")
    return packet_id.to_bytes(2, "big")


def subscribe_packet(packet_id: int, filters: Sequence[tuple[str, int]]) -> bytes:
    """3.8: at least one filter, each with its requested QoS."""
    if not filters:
        raise ValueError("a SUBSCRIBE needs at least one filter (3.8.3)")
    body = _check_packet_id(packet_id)
    for topic, qos in filters:
        if qos not in (0, 1, 2):
            raise ValueError(f"QoS {qos} of {topic!r} is not 0, 1 or 2")
        body += _string(topic) + bytes((qos,))
    return _packet(0x82, body)


def unsubscribe_packet(packet_id: int, filters: Sequence[str]) -> bytes:
    """3.10: at least one filter."""
    if not filters:
        raise ValueError("an UNSUBSCRIBE needs at least one filter (3.10.3)")
    body = _check_packet_id(packet_id) + b"".join(_string(topic) for topic in filters)
    return _packet(0xA2, body)


def puback_packet(packet_id: int) -> bytes:
    """3.4."""
    return b"\x40\x02" + packet_id.to_bytes(2, "big")


def publish_packet(
    topic: str, payload: bytes, packet_id: int = 0, *, retain: bool = False
) -> bytes:
    """3.3: at QoS 1 with a packet id, at QoS 0 without (0). Never DUP (3.3.1.1): a message
    not acknowledged when its connection is lost is not sent again on the next one (a clean
    session), and its publisher is told it was not acknowledged."""
    if not topic or "+" in topic or "#" in topic:
        raise ValueError(f"{topic!r} is not a topic to publish to (3.3.2.1)")
    first = 0x30 | (0x02 if packet_id else 0) | (0x01 if retain else 0)
    body = _string(topic) + (_check_packet_id(packet_id) if packet_id else b"") + payload
    return _packet(first, body)


class PacketReader:
    """Parses the byte stream from the broker into packets, as bytes arrive in any split."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []  # bytes of an incomplete packet, not yet joined
        self._have = 0
        self._need = 0  # bytes the incomplete packet needs in all, 0 while unknown

    def feed(self, data: bytes, publishes: list[Publish], controls: list[Control]) -> None:
        """Parse every complete packet of what came before and `data`: PUBLISHes are
        appended to `publishes`, the other packets to `controls`, each in order. Raises
        ProtocolError on bytes no broker may send, after which the stream is lost; the
        packets before them are in the lists."""
        if self._parts:
            self._parts.append(data)
            self._have += len(data)
            if self._have < self._need:
                return  # a large packet still arriving: join it once, when complete
            data = b"".join(self._parts)
            self._parts.clear()
        self._need = 0
        end = len(data)
        pos = 0
        while pos < end:
            start, length = _header(data, pos, end)
            if start < 0:
                break
            stop = start + length
            if stop > end:
                self._need = stop - pos
                break
            first = data[pos]
            if first >> 4 == _PUBLISH:
                publishes.append(_publish(data, first, start, stop))
            else:
                controls.append(_control(first, data[start:stop]))
            pos = stop
        if pos < end:
            rest = data[pos:]
            self._parts.append(rest)
            self._have = len(rest)  # _need stays 0 while the fixed header is incomplete


def _header(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """(where the packet's variable header starts, its remaining length), or (-1, 0) when
    the fixed header is not complete yet (2.2.3)."""
    length = 0
    shift = 0
    index = pos + 1
    while True:
        if index >= end:
            return -1, 0
        byte = data[index]
        index += 1
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            return index, length
        shift += 7
        if shift == 28:
            raise ProtocolError("remaining length longer than 4 bytes (2.2.3)")


def _publish(data: bytes, first: int, start: int, stop: int) -> Publish:
    """3.3. A topic that is not UTF-8 is decoded with replacement characters rather than
    dropping the connection: the broker would redeliver it for ever, and the intake's topic
    checks refuse (and count) it."""
    qos = (first >> 1) & 0x03
    topic_end = start + 2 + ((data[start] << 8) | data[start + 1]) if stop - start >= 2 else -1
    payload_start = topic_end + 2 if qos else topic_end
    if topic_end < 0 or payload_start > stop:
        raise ProtocolError("PUBLISH shorter than its topic and packet id (3.3.2)")
    if qos == 3:
        raise ProtocolError("PUBLISH with QoS 3 (3.3.1.2)")
    if qos == 2:
        # We subscribe at QoS 1 at most, and 3.8.4 caps delivery at the granted QoS.
        raise ProtocolError("PUBLISH with QoS 2 on a subscription granted QoS 1 (3.8.4)")
    topic = str(data[start + 2 : topic_end], "utf-8", "replace")
    packet_id = (data[topic_end] << 8) | data[topic_end + 1] if qos else 0
    if qos and not packet_id:
        raise ProtocolError("PUBLISH with QoS 1 and packet id 0 (2.3.1)")
    return topic, data[payload_start:stop], packet_id


def _control(first: int, body: bytes) -> Control:
    kind = first >> 4
    if kind == _CONNACK and len(body) == 2:
        return ConnAck(session_present=bool(body[0] & 0x01), code=body[1])
    if kind == _SUBACK and len(body) >= 3:
        return SubAck((body[0] << 8) | body[1], tuple(body[2:]))
    if kind == _UNSUBACK and len(body) == 2:
        return UnsubAck((body[0] << 8) | body[1])
    if kind == _PUBACK and len(body) == 2:
        return PubAck((body[0] << 8) | body[1])
    if kind == _PINGRESP and not body:
        return PingResp()
    raise ProtocolError(f"unexpected packet: type {kind}, {len(body)} bytes (2.2.1)")

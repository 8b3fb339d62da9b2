"""A lean MQTT 3.1.1 publishing client for the benchmarks' load, on a blocking socket.

Why: a paho publisher costs about 140 µs of CPU per QoS 1 message here, so on 2 cores the
four publisher processes took most of a core and held the live rate of whatever they fed
(bench/README.md, "Publishers"). A load generator should cost little beside the system it
measures, as emqtt-bench or mqtt-benchmark do. This one queues PUBLISH packets in a buffer,
writes them with one `sendall` per loop, and counts the broker's PUBACKs without decoding
them one by one beyond their type. It speaks only what the publishers need: CONNECT (clean
session), SUBSCRIBE, PUBLISH at QoS 1, PUBACK of the QoS 1 messages it receives (the
aggregator's acks), PINGREQ. Packets are encoded with aggregator.intake.mqtt_packets.

Not a general client: no reconnect (a publisher that loses its broker fails the run, as
the paho one does), no QoS 2, no will.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from aggregator.intake.mqtt_packets import (
    DISCONNECT,
    PINGREQ,
    connect_packet,
    puback_packet,
    remaining_length,
    subscribe_packet,
)

_CONNACK: Final = 2
_PUBLISH: Final = 3
_PUBACK: Final = 4
_SUBACK: Final = 9
_PINGRESP: Final = 13
KEEPALIVE_S: Final = 60
_READ_BYTES: Final = 256 * 1024


class RawMqttError(ConnectionError):
    """The broker refused us, closed the connection, or sent what we cannot read."""


def publish_header(topic: str) -> bytes:
    """The topic part of a PUBLISH, as 3.3.2 lays it out (length, then UTF-8)."""
    raw = topic.encode()
    return len(raw).to_bytes(2, "big") + raw


def publish_packet(topic_part: bytes, packet_id: int, payload: bytes) -> bytes:
    """3.3: a QoS 1 PUBLISH (first byte 0x32) of `payload` to the topic `publish_header`
    encoded."""
    body_length = len(topic_part) + 2 + len(payload)
    return b"".join(
        (
            b"\x32",
            remaining_length(body_length),
            topic_part,
            packet_id.to_bytes(2, "big"),
            payload,
        )
    )


@dataclass(slots=True)
class Received:
    """What the broker sent in one read: PUBACKs and SUBACKs counted, whether a CONNACK
    accepted us, and each PUBLISH as (payload, packet id; 0 at QoS 0), in order."""

    pubacks: int = 0
    subacks: int = 0
    connected: bool = False
    messages: list[tuple[bytes, int]] = field(default_factory=list)


class ReplyReader:
    """Parses what a broker sends a publisher, as bytes arrive in any split. Pure."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, data: bytes) -> Received:
        """Every complete packet of what came before and `data`. RawMqttError on a refused
        CONNACK or a packet a broker does not send a publisher."""
        if self._rest:
            data = self._rest + data
        got = Received()
        pos, end = 0, len(data)
        while pos + 2 <= end:
            start, length = _header(data, pos, end)
            if start < 0 or start + length > end:
                break
            kind = data[pos] >> 4
            if kind == _PUBACK:
                got.pubacks += 1
            elif kind == _PUBLISH:
                got.messages.append(_message(data, data[pos], start, start + length))
            elif kind == _CONNACK:
                if data[start + 1] != 0:
                    raise RawMqttError(f"CONNACK refused the connection: code {data[start + 1]}")
                got.connected = True
            elif kind == _SUBACK:
                got.subacks += 1
            elif kind != _PINGRESP:
                raise RawMqttError(f"unexpected packet type {kind} from the broker")
            pos = start + length
        self._rest = data[pos:]
        return got


class RawPublisher:
    """One connection. `publish` and `subscribe` queue; `loop` writes what is queued and
    returns what came (QoS 1 messages received are PUBACKed on the next loop)."""

    def __init__(self, port: int, client_id: str) -> None:
        self._sock = socket.create_connection(("127.0.0.1", port))
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._out = bytearray(connect_packet(client_id, clean=True, keepalive_s=KEEPALIVE_S))
        self._reader = ReplyReader()
        self._next_id = 0
        self._last_write = time.monotonic()

    def _packet_id(self) -> int:
        # Ids cycle through 1..65535: far more than the in-flight window, so none still in
        # flight is reused.
        self._next_id = self._next_id % 0xFFFF + 1
        return self._next_id

    def subscribe(self, filters: Sequence[tuple[str, int]]) -> None:
        self._out += subscribe_packet(self._packet_id(), filters)

    def publish(self, topic_part: bytes, payload: bytes) -> None:
        self._out += publish_packet(topic_part, self._packet_id(), payload)

    def loop(self, timeout: float) -> Received:
        """Write everything queued, then read what arrives within `timeout` seconds."""
        now = time.monotonic()
        if not self._out and now - self._last_write > KEEPALIVE_S / 2:
            self._out += PINGREQ
        if self._out:
            self._sock.sendall(self._out)
            self._out.clear()
            self._last_write = now
        readable, _, _ = select.select([self._sock], [], [], timeout)
        if not readable:
            return Received()
        data = self._sock.recv(_READ_BYTES)
        if not data:
            raise RawMqttError("the broker closed the connection")
        got = self._reader.feed(data)
        for _, packet_id in got.messages:
            if packet_id:
                self._out += puback_packet(packet_id)
        return got

    def close(self) -> None:
        with contextlib.suppress(OSError):  # already gone: nothing to say goodbye to
            self._sock.sendall(DISCONNECT)
        self._sock.close()


def _message(data: bytes, first: int, start: int, stop: int) -> tuple[bytes, int]:
    topic_length = int.from_bytes(data[start : start + 2], "big")
    pos = start + 2 + topic_length
    if not (first >> 1) & 0x03:  # QoS 0: no packet id
        return data[pos:stop], 0
    return data[pos + 2 : stop], int.from_bytes(data[pos : pos + 2], "big")


def _header(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """(start of the variable header, remaining length), or (-1, 0) if incomplete (2.2.3)."""
    length, shift, i = 0, 0, pos + 1
    while i < end:
        byte = data[i]
        length |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            return i, length
        shift += 7
        if shift > 21:
            raise RawMqttError("malformed remaining length from the broker")
    return -1, 0

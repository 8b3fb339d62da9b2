"""A lean MQTT 3.1.1 publishing client for the benchmarks' load, on a blocking socket.

Why: a paho publisher costs about 80 µs of CPU per QoS 1 message here (bench/publisher_cost.py),
so on 2 cores the four publisher processes took most of a core and held the live rate of
whatever they fed (bench/README.md, "Publishers"). A load generator should cost little
beside the system it measures, as emqtt-bench or mqtt-benchmark do. This one queues PUBLISH
packets in a buffer, writes them with one `sendall` per loop, and parses what comes back in
one call per read, with the aggregator's own codec (aggregator.intake.mqtt_packets). It
speaks only what the publishers need: CONNECT (clean session), SUBSCRIBE, PUBLISH at QoS 1,
PUBACK of the QoS 1 messages it receives (the aggregator's acks), PINGREQ.

Not a general client: no reconnect (a publisher that loses its broker fails the run, as the
paho one does), no QoS 2, no will, and PUBACKs are counted, not matched to their packet ids.
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
    CONNACK_REASONS,
    DISCONNECT,
    PINGREQ,
    ConnAck,
    Control,
    PacketReader,
    ProtocolError,
    PubAck,
    Publish,
    SubAck,
    connect_packet,
    puback_packet,
    publish_packet,
    subscribe_packet,
)

KEEPALIVE_S: Final = 60
_READ_BYTES: Final = 256 * 1024


class RawMqttError(ConnectionError):
    """The broker refused us, closed the connection, or sent what we cannot read."""


@dataclass(slots=True)
class Received:
    """What the broker sent in one read: PUBACKs and SUBACKs counted, whether a CONNACK
    accepted us, and each PUBLISH (topic, payload, packet id; 0 at QoS 0), in order."""

    pubacks: int = 0
    subacks: int = 0
    connected: bool = False
    messages: list[Publish] = field(default_factory=list)


def received(reader: PacketReader, data: bytes) -> Received:
    """What `data` completes, parsed by `reader`. RawMqttError on a refused CONNACK or
    bytes no broker may send."""
    got = Received()
    controls: list[Control] = []
    try:
        reader.feed(data, got.messages, controls)
    except ProtocolError as exc:
        raise RawMqttError(f"unreadable bytes from the broker: {exc}") from exc
    for control in controls:
        if isinstance(control, PubAck):
            got.pubacks += 1
        elif isinstance(control, SubAck):
            got.subacks += 1
        elif isinstance(control, ConnAck):
            if control.code:
                why = CONNACK_REASONS.get(control.code, f"code {control.code}")
                raise RawMqttError(f"CONNACK refused the connection: {why}")
            got.connected = True
    return got


class RawPublisher:
    """One connection. `publish` and `subscribe` queue; `loop` writes what is queued and
    returns what came (QoS 1 messages received are PUBACKed on the next loop)."""

    def __init__(self, port: int, client_id: str) -> None:
        self._sock = socket.create_connection(("127.0.0.1", port))
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._out = bytearray(connect_packet(client_id, clean=True, keepalive_s=KEEPALIVE_S))
        self._reader = PacketReader()
        self._next_id = 0
        self._last_write = time.monotonic()

    def _packet_id(self) -> int:
        # Ids cycle through 1..65535: far more than the in-flight window, so none still in
        # flight is reused.
        self._next_id = self._next_id % 0xFFFF + 1
        return self._next_id

    def subscribe(self, filters: Sequence[tuple[str, int]]) -> None:
        self._out += subscribe_packet(self._packet_id(), filters)

    def publish(self, topic: str, payload: bytes) -> None:
        self._out += publish_packet(topic, payload, self._packet_id())

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
        got = received(self._reader, data)
        for _, _, packet_id in got.messages:
            if packet_id:
                self._out += puback_packet(packet_id)
        return got

    def close(self) -> None:
        with contextlib.suppress(OSError):  # already gone: nothing to say goodbye to
            self._sock.sendall(DISCONNECT)
        self._sock.close()

"""The edge's MQTT link: one paho client, driven from the agent's own loop, no threads.

paho's callbacks only append typed events to a list that `poll()` returns, so the agent sees
connection changes and acknowledgements as plain values in one place, in order. Reconnects
are scheduled here with a capped, jittered backoff; paho's own reconnect (no jitter) is not
used. The offline status is the MQTT last will, so the broker announces a node that vanishes.

Several brokers (node.toml [mqtt] urls) are tried in order by a BrokerRotation
(schemas.runtime.failover): a lost broker is followed at once by the next, and after
return_home_s elsewhere the link leaves with a clean DISCONNECT (no will) and connects to the
first again. One paho client serves every broker: before each attempt it is aimed at the
broker the rotation names, so the will and the ack and refusal subscriptions go with every
connection. Batches not yet acknowledged stay in the journal and the agent sends them all
again on each Connected (edge.resend), so a switch loses nothing; the aggregator drops the
duplicates by sequence number.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from schemas import codec, topics
from schemas.codec import Codec, ContractError
from schemas.messages import STATUS_SCHEMA, AckMessage, RefusalMessage, StatusMessage
from schemas.runtime.backoff import Backoff
from schemas.runtime.endpoints import MqttEndpoint
from schemas.runtime.failover import DEFAULT_RETURN_HOME_S, BrokerRotation
from schemas.runtime.logs import get_logger

log = get_logger("edge.link")


@dataclass(frozen=True, slots=True)
class Connected:
    pass


@dataclass(frozen=True, slots=True)
class Disconnected:
    reason: str


@dataclass(frozen=True, slots=True)
class AckReceived:
    seqs: list[int]
    # The journal the acked batches came from; None from an aggregator older than the field.
    journal: str | None = None


@dataclass(frozen=True, slots=True)
class BadAck:
    error: str


@dataclass(frozen=True, slots=True)
class RefusalReceived:
    """The aggregator refused a message of ours, and says why (envnet.refusal/1)."""

    refusal: RefusalMessage


@dataclass(frozen=True, slots=True)
class BadRefusal:
    error: str


LinkEvent = Connected | Disconnected | AckReceived | BadAck | RefusalReceived | BadRefusal

# The messages the aggregator sends to one node, on that node's own topics.
_ToNode = TypeVar("_ToNode", AckMessage, RefusalMessage)


class Link(Protocol):
    """What the agent needs of its uplink: MqttLink, or a simulated one in tests."""

    @property
    def connected(self) -> bool: ...

    @property
    def capacity(self) -> int:
        """Messages that can be handed over now without waiting for the broker."""
        ...

    @property
    def max_inflight(self) -> int: ...

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> bool: ...

    def poll(self, timeout_s: float) -> list[LinkEvent]: ...

    def close(self, final_status: bytes | None, timeout_s: float = 3.0) -> None: ...


@dataclass(frozen=True, slots=True)
class LinkSettings:
    # In order; the first is home. All with or all without TLS (edge.config checks).
    endpoints: tuple[MqttEndpoint, ...]
    client_id: str
    keepalive_s: int = 30
    ca_file: str | None = None
    max_inflight: int = 100
    connect_timeout_s: float = 5.0
    return_home_s: float = DEFAULT_RETURN_HOME_S


class MqttLink:
    def __init__(
        self,
        node: str,
        settings: LinkSettings,
        backoff: Backoff,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self._node = node
        self._sleep = sleep
        self._settings = settings
        self._endpoints = settings.endpoints
        self._rotation = BrokerRotation(len(settings.endpoints), backoff, settings.return_home_s)
        self._monotonic = monotonic
        # The broker the client is set up for, and the one of the last successful connection.
        self._aimed: int | None = None
        self._last_connected: int | None = None
        # One failure per attempt: a refused CONNACK is followed by a disconnect, and the
        # rotation must move on once, not twice.
        self._failure_counted = True
        # Leaving a working broker on purpose (going home): the disconnect is no failure.
        self._leaving = False
        # Moves to another broker than the last connection's, and attempts to go home (some
        # of which may have failed and fallen back), for stats and tests.
        self.switches = 0
        self.home_attempts = 0
        self._events: list[LinkEvent] = []
        self._connected = False
        self._connecting = False
        self._next_attempt = monotonic()
        self._inflight: set[int] = set()
        self._ack_topic = topics.ack(node)
        self._refusal_topic = topics.refusal(node)
        self._client = self._build_client()

    def _build_client(self) -> mqtt.Client:
        s = self._settings
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            # A persistent session: acks the aggregator sends while the node is away are
            # queued by the broker and delivered on reconnect.
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        client.connect_timeout = s.connect_timeout_s
        client.max_inflight_messages_set(s.max_inflight)
        client.max_queued_messages_set(0)
        if s.endpoints[0].tls:
            client.tls_set(ca_certs=s.ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        offline = StatusMessage(
            schema=STATUS_SCHEMA, node=self._node, state="offline", reason="lost"
        )
        # Sent with every CONNECT this client makes, to whichever broker.
        client.will_set(topics.status(self._node), codec.STATUS.encode(offline), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        # paho routes the refusal topic here, everything else to on_message (acks).
        client.message_callback_add(self._refusal_topic, self._on_refusal)
        client.on_publish = self._on_publish
        return client

    # -- paho callbacks: record, never act ------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        self._connecting = False
        if rc.is_failure:
            log.warning("broker_refused", broker=self.broker, reason=str(rc))
            self._failed()
            return
        # On every connection: a broker we were not on before has no session of ours.
        client.subscribe(self._ack_topic, qos=1)
        client.subscribe(self._refusal_topic, qos=1)
        self._connected = True
        self._rotation.connected_at(self._monotonic())
        self._note_switch()
        log.info("connected", broker=self.broker)
        self._events.append(Connected())

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        was_connected = self._connected
        self._connected = False
        self._connecting = False
        self._inflight.clear()
        if self._leaving:
            self._leaving = False
            self._next_attempt = self._monotonic()  # home, at once
            return
        if was_connected:
            log.warning("disconnected", broker=self.broker, reason=str(rc))
            self._events.append(Disconnected(str(rc)))
        self._failed()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        ack = self._addressed_to_us(codec.ACK, message.payload, "ack", BadAck)
        if ack is not None:
            self._events.append(AckReceived(list(ack.seqs), ack.journal))

    def _on_refusal(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        refusal = self._addressed_to_us(codec.REFUSAL, message.payload, "refusal", BadRefusal)
        if refusal is not None:
            self._events.append(RefusalReceived(refusal))

    def _addressed_to_us(
        self,
        message_codec: Codec[_ToNode],
        payload: bytes | bytearray,
        what: str,
        bad: Callable[[str], BadAck | BadRefusal],
    ) -> _ToNode | None:
        """The message, if it keeps the contract and names this node; otherwise None, and
        `bad` says why among the events."""
        try:
            decoded = message_codec.decode(payload)
        except ContractError as exc:
            self._events.append(bad(str(exc)))
            return None
        if decoded.node != self._node:
            self._events.append(bad(f"{what} for node {decoded.node!r} on our topic"))
            return None
        return decoded

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, rc: ReasonCode, props: Any
    ) -> None:
        self._inflight.discard(mid)

    # -- driving --------------------------------------------------------------------------

    def _failed(self) -> None:
        """The attempt or connection at the current broker failed: schedule the next."""
        if self._failure_counted:
            return
        self._failure_counted = True
        now = self._monotonic()
        attempt = self._rotation.failed(now)
        self._next_attempt = attempt.at_s
        log.info(
            "reconnect_scheduled",
            broker=self._endpoints[attempt.index].display,
            in_s=round(attempt.at_s - now, 2),
        )

    def _note_switch(self) -> None:
        current, last = self._rotation.current, self._last_connected
        if last is not None and last != current:
            self.switches += 1
            log.warning(
                "broker_switched",
                from_broker=self._endpoints[last].display,
                to_broker=self.broker,
                switches=self.switches,
            )
        self._last_connected = current

    def _aim(self, index: int) -> None:
        """Point the client at broker `index` (host, port, credentials); no I/O."""
        endpoint = self._endpoints[index]
        self._client.username_pw_set(endpoint.username, endpoint.password)
        # Sets host and port only; the attempt itself is the reconnect() that follows.
        self._client.connect_async(endpoint.host, endpoint.port, self._settings.keepalive_s)
        self._aimed = index

    def _attempt_connect(self) -> None:
        index = self._rotation.current
        if self._aimed != index:
            self._aim(index)
        self._connecting = True
        self._failure_counted = False
        try:
            self._client.reconnect()
        except (OSError, ssl.SSLError) as exc:
            # A CONNACK that never comes is handled by paho's keepalive check, which closes
            # the socket and reports a disconnect, so `_connecting` cannot stick.
            self._connecting = False
            log.warning("connect_failed", broker=self._endpoints[index].display, error=str(exc))
            self._failed()

    def _go_home(self, now: float) -> None:
        """A clean DISCONNECT (the broker sends no will), then a connect to the first broker.
        Unacknowledged batches stay journaled and go out again once connected."""
        log.info("broker_going_home", from_broker=self.broker, to_broker=self._endpoints[0].display)
        self._rotation.go_home(now)
        self.home_attempts += 1
        # Offline from here: nothing more is handed to the broker being left.
        self._connected = False
        self._inflight.clear()
        self._events.append(Disconnected("returning to the first broker"))
        # The attempt home waits until the DISCONNECT is written (`_on_disconnect`, which
        # paho may call from within disconnect() itself); if there is no connection left to
        # close, it may go at once.
        self._next_attempt = now
        self._leaving = True
        if self._client.disconnect() != mqtt.MQTT_ERR_SUCCESS:
            self._leaving = False

    def poll(self, timeout_s: float) -> list[LinkEvent]:
        """Do network I/O for up to `timeout_s`, (re)connecting when due; return new events."""
        now = self._monotonic()
        if self._connected and self._rotation.home_due(now):
            self._go_home(now)
        if self._leaving and self._client.socket() is None:
            self._leaving = False  # closed without telling us: nothing left to wait for
        idle = not self._connected and not self._connecting and not self._leaving
        if idle and now >= self._next_attempt:
            self._attempt_connect()
        if self._client.socket() is not None:
            self._client.loop(timeout=max(0.0, timeout_s))
        else:
            self._sleep(min(timeout_s, max(0.0, self._next_attempt - self._monotonic())))
        events, self._events = self._events, []
        return events

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def broker(self) -> str:
        """The broker in use or tried next, safe to log (no credentials)."""
        return self._endpoints[self._rotation.current].display

    @property
    def inflight(self) -> int:
        """Messages handed to the broker and not yet PUBACKed."""
        return len(self._inflight)

    @property
    def capacity(self) -> int:
        return max(0, self._settings.max_inflight - len(self._inflight))

    @property
    def max_inflight(self) -> int:
        return self._settings.max_inflight

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> bool:
        """Publish at QoS 1. False if not connected: the caller keeps the data and retries."""
        if not self._connected:
            return False
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return False
        if not info.is_published():
            self._inflight.add(info.mid)
        return True

    def close(self, final_status: bytes | None, timeout_s: float = 3.0) -> None:
        """Publish the final status (the will is not sent on a clean disconnect), wait
        briefly for outstanding PUBACKs, and disconnect."""
        if self._connected:
            if final_status is not None:
                self.publish(topics.status(self._node), final_status, retain=True)
            deadline = self._monotonic() + timeout_s
            while self._inflight and self._connected and self._monotonic() < deadline:
                self._client.loop(timeout=0.05)
            self._client.disconnect()
            self._client.loop(timeout=0.1)
        self._connected = False

"""What the measurements found: plain data, with the rates derived from it."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench._influx_ceiling import InfluxWriteResult
from bench._publishers import SentTotals
from bench._shapes import Shape
from bench._subscriber import SubscriberKind


@dataclass(slots=True)
class Timeline:
    """The aggregator's stored counter over time, from its /metrics."""

    samples: list[tuple[float, float]] = field(default_factory=list)

    def rates(self, start: float, step_s: float) -> list[float]:
        """Stored readings/s in consecutive `step_s` windows from `start`."""
        out: list[float] = []
        edge, previous = start + step_s, 0.0
        for at, stored in self.samples:
            while at >= edge:
                out.append((stored - previous) / step_s)
                previous, edge = stored, edge + step_s
        return out


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the publishers sent, and when the far end had all of it."""

    sent: SentTotals
    received: int  # messages (subscriber) or readings (InfluxDB)
    ended_at: float  # perf_counter when `received` reached the sent count, or the deadline
    complete: bool  # False: the deadline came first; rates then count what had arrived
    cpu: dict[str, float]

    @property
    def elapsed_s(self) -> float:
        """From the first publish to completion."""
        return max(self.ended_at - self.sent.first_publish, 1e-9)

    @property
    def publish_messages_per_s(self) -> float:
        return self.sent.messages / self.sent.publish_s


@dataclass(frozen=True, slots=True)
class SubscriberCeiling:
    kind: SubscriberKind
    delivery: Delivery
    readings_per_message: int

    @property
    def messages_per_s(self) -> float:
        return min(self.delivery.received, self.delivery.sent.messages) / self.delivery.elapsed_s

    @property
    def readings_per_s(self) -> float:
        return self.messages_per_s * self.readings_per_message


@dataclass(frozen=True, slots=True)
class InfluxCeiling:
    writes: InfluxWriteResult
    counted: int  # SELECT count(value) afterwards

    @property
    def readings_per_s(self) -> float:
        return self.writes.readings_per_s


class DeliveredRun:
    """What envnet's runs and the peer's (bench/peer_nodered.py) derive alike from what was
    sent, received and counted in InfluxDB."""

    __slots__ = ()
    delivery: Delivery
    stored: int
    readings_per_message: int

    @property
    def lost(self) -> int:
        return self.delivery.sent.readings - self.stored

    @property
    def readings_per_s(self) -> float:
        counted = min(self.delivery.received, self.delivery.sent.readings)
        return counted / self.delivery.elapsed_s

    @property
    def messages_per_s(self) -> float:
        return self.readings_per_s / self.readings_per_message


@dataclass(frozen=True, slots=True)
class AggregatorRun(DeliveredRun):
    delivery: Delivery
    stored: int  # SELECT count(value) after the aggregator stopped
    acked: int
    metrics: dict[str, float]
    readings_per_message: int
    timeline: Timeline
    profile: str | None = None
    service_warnings: tuple[str, ...] = ()
    # Peak RSS in MiB (VmHWM) of the service process and of its children (the alerting
    # worker and multiprocessing's resource tracker), read just before it stopped.
    peak_rss_mb: dict[str, float] = field(default_factory=dict)

    @property
    def total_peak_rss_mb(self) -> float:
        """Service + children: the sum of each one's peak (at least the peak of the sum)."""
        return sum(self.peak_rss_mb.values()) if self.peak_rss_mb else float("nan")


@dataclass(frozen=True, slots=True)
class ModeResult:
    shape: Shape
    run: AggregatorRun
    subscribers: tuple[SubscriberCeiling, ...]
    influx: InfluxCeiling | None

    @property
    def mqtt_ceiling(self) -> SubscriberCeiling | None:
        """The aggregator's own intake client counting only, when measured; else aiomqtt."""
        for kind in ("intake", "aiomqtt"):
            for sub in self.subscribers:
                if sub.kind == kind:
                    return sub
        return self.subscribers[0] if self.subscribers else None

    def ceilings(self) -> dict[str, float]:
        """readings/s of each ceiling that counts: the MQTT one and the database one."""
        out = {}
        if (mqtt := self.mqtt_ceiling) is not None:
            out[f"bare {mqtt.kind} subscriber"] = mqtt.readings_per_s
        if self.influx is not None:
            out["raw influx writes"] = self.influx.readings_per_s
        return out

    @property
    def lower_ceiling(self) -> tuple[str, float]:
        ceilings = self.ceilings()
        if not ceilings:
            return "none measured", float("nan")
        name = min(ceilings, key=lambda k: ceilings[k])
        return name, ceilings[name]

    @property
    def ceiling_readings_per_s(self) -> float:
        return self.lower_ceiling[1]

    @property
    def ratio(self) -> float:
        ceiling = self.ceiling_readings_per_s
        return self.run.readings_per_s / ceiling if ceiling > 0 else float("nan")

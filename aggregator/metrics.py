"""The aggregator's own metrics, in Prometheus format, on a registry it owns (no globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from aggregator.intake import REFUSAL_REASONS

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.messages_received = Counter(
            "envnet_messages_received", "MQTT messages received", ["kind"], registry=r
        )
        self.readings_received = Counter(
            "envnet_readings_received", "Readings in accepted messages", registry=r
        )
        self.readings_stored = Counter(
            "envnet_readings_stored", "Readings written to InfluxDB", registry=r
        )
        self.refused = Counter(
            "envnet_refused", "Messages refused, by reason", ["reason"], registry=r
        )
        self.readings_refused = Counter(
            "envnet_readings_refused",
            "Single readings refused inside otherwise valid messages, or rejected by the database",
            ["reason"],
            registry=r,
        )
        self.duplicates = Counter(
            "envnet_duplicate_batches", "Batches received again after being stored", registry=r
        )
        self.write_latency = Histogram(
            "envnet_write_latency_seconds",
            "InfluxDB write request latency (successful writes)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.write_failures = Counter(
            "envnet_write_failures", "Failed InfluxDB write attempts", ["kind"], registry=r
        )
        self.queue_depth = Gauge(
            "envnet_queue_depth", "Readings accepted and not yet stored", registry=r
        )
        self.mqtt_backlog = Gauge(
            "envnet_mqtt_backlog",
            "Messages received from the broker, not yet processed",
            registry=r,
        )
        self.mqtt_connected = Gauge(
            "envnet_mqtt_connected", "1 while connected to the broker", registry=r
        )
        self.intake_pauses = Counter(
            "envnet_intake_pauses", "Times intake paused for backpressure", registry=r
        )
        self.acks_sent = Counter("envnet_acks_sent", "Ack messages published", registry=r)
        self.alert_transitions = Counter(
            "envnet_alert_transitions", "Alert transitions", ["event", "kind"], registry=r
        )
        self.alerts_firing = Gauge("envnet_alerts_firing", "Alerts currently firing", registry=r)
        self.rules_skipped = Counter(
            "envnet_rules_skipped",
            "Rule evaluations skipped, e.g. node lacks the classification a rule needs",
            ["reason"],
            registry=r,
        )
        for reason in REFUSAL_REASONS:
            self.refused.labels(reason)

    def render(self) -> bytes:
        return generate_latest(self.registry)

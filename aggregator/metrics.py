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
        self.seq_conflicts = Counter(
            "envnet_batches_seq_conflict",
            "Batches whose (node, journal, seq) was already seen with other readings; stored",
            registry=r,
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
        self.alert_commands = Counter(
            "envnet_alert_commands",
            "Operator alert commands, by result (accepted, refused, invalid)",
            ["result"],
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "envnet_webhook_deliveries",
            "Webhook deliveries by outcome (delivered, rejected, gave_up, dropped)",
            ["outcome"],
            registry=r,
        )
        self.window_series = Gauge(
            "envnet_window_series", "Series with averaging-window state", registry=r
        )
        self.window_held_readings = Gauge(
            "envnet_window_held_readings",
            "Reading parts held for late re-evaluation of windows (memory)",
            registry=r,
        )
        self.window_readings = Counter(
            "envnet_window_readings",
            "Readings the windows treated specially: late (re-evaluated), too_late (beyond the "
            "late horizon), duplicate, not_windowed (period > 1 h), future (clock fault)",
            ["kind"],
            registry=r,
        )
        self.alerting_worker_failures = Counter(
            "envnet_alerting_worker_failures",
            "Errors in the alerting worker process, and its loss",
            registry=r,
        )
        self.state_saves = Counter(
            "envnet_state_saves", "Saves of alert and evaluator state", ["what"], registry=r
        )
        self.rules_skipped = Counter(
            "envnet_rules_skipped",
            "Rule evaluations skipped, e.g. node lacks the classification a rule needs",
            ["reason"],
            registry=r,
        )
        self.calibrations = Counter(
            "envnet_calibrations",
            "Readings with a sensor serial, by calibration result: applied, no_record, "
            "out_of_bounds (the calibrated value was outside the physical bounds; raw kept)",
            ["result"],
            registry=r,
        )
        for reason in REFUSAL_REASONS:
            self.refused.labels(reason)

    def render(self) -> bytes:
        return generate_latest(self.registry)

"""The envnet aggregator: readings in over MQTT, stored in InfluxDB, acked, judged by the
standards.

    broker ─▶ intake/ ─▶ storage/ ─▶ InfluxDB ─▶ ack ─▶ node
                              └──▶ worker/ (a process) ─▶ engine/ ─▶ alerts

Where to find:
- **the ack**: `service` (`_Outbox`, `_stored`): a batch is acked, per node and journal, only
  after its InfluxDB write and its evaluation; `intake.seqs` says which batches are stored.
- **the AQI**: `schemas.standards.hj633` computes it; `engine.rules.air` judges it per window.
- **a GB 3096 noise rule**: `engine.rules.noise` (limits in `schemas.standards.gb3096`).
- **windows**: `engine.windows`; when a quiet node's windows close: `engine.window_closing`.
- **the alert lifecycle**: `engine.lifecycle`; delivery: `service` (MQTT), `webhook` and
  `delivery` (Prometheus Alertmanager).
- **replicas** (one share of the fleet per aggregator process, `[cluster] replica = "i/N"`):
  `cluster.partition` (who owns a node), `cluster.subscriptions` (what a replica reads);
  docs/cluster/replicas.md.
- **period reports** (`envnet report`: good-air days, exceedance days, the O3 evaluation
  value, the HTML page): `reports`, which reads back what `storage` wrote; `reports.kinds`
  maps each report kind to its builder.

Root modules: `service` (the wiring: intake → storage → acks and alerts, in one task group),
`runtime` (run until a signal), `config` (agg.toml), `fleet` (the inventory), `metrics`,
`metrics_http` and `service_health` (/metrics and /healthz), `startup` (errors that stop the
start), `gc_tuning`, `webhook`.
"""

__all__ = [
    "calibration",
    "cluster",
    "config",
    "delivery",
    "engine",
    "fleet",
    "reports",
    "runtime",
    "startup",
    "storage",
]

"""Delivery of alert transitions to people's tools, beside MQTT and InfluxDB.

- `alertmanager_payload`: pure. An envnet alert (the contract's `Alert`) and its node's
  inventory entry become a Prometheus Alertmanager v2 alert: labels, annotations, startsAt
  and endsAt, with the wall clock as a parameter.
- `alertmanager`: the HTTP shell. Sends to every configured Alertmanager (their HA docs ask
  clients to), refreshes firing alerts before their lease runs out, sends resolutions, retries
  with capped jittered backoff, counts outcomes and logs without secrets.

The JSON webhook sink (`aggregator.webhook`) stays for other consumers.
"""

from aggregator.delivery.alertmanager import AlertmanagerSettings, AlertmanagerSink
from aggregator.delivery.alertmanager_payload import FAMILIES, alert_key, postable

__all__ = ["FAMILIES", "AlertmanagerSettings", "AlertmanagerSink", "alert_key", "postable"]

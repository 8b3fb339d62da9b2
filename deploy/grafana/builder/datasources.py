"""The data sources the dashboards and alert rules query, as templates without secrets.

The uids are fixed so that every panel can name its data source by uid; `envnet grafana push`
fills in the URL, database and credentials from its options or ENVNET_* variables, so nothing
deployment-specific (and no secret) is ever committed.
"""

from __future__ import annotations

from typing import Final

from deploy.grafana.builder.grafana_json import JSON, datasource_ref

INFLUX_UID: Final = "envnet-influxdb"
PROMETHEUS_UID: Final = "envnet-prometheus"
ALERTMANAGER_UID: Final = "envnet-alertmanager"
ALERTMANAGER_NAME: Final = "envnet Alertmanager"

INFLUX: Final = datasource_ref(INFLUX_UID, "influxdb")
PROMETHEUS: Final = datasource_ref(PROMETHEUS_UID, "prometheus")
ALERTMANAGER: Final = datasource_ref(ALERTMANAGER_UID, "alertmanager")


def influxdb_template() -> JSON:
    # Placeholders: replaced by --influx-url / ENVNET_INFLUX_URL and --influx-db at push.
    settings = {
        "version": "InfluxQL",
        "dbName": "envnet",
        # POST keeps long InfluxQL (many node ids in a regex) out of URL length limits.
        "httpMode": "POST",
        # Nodes report every 60 s by default (edge/config.py report_interval_s).
        "timeInterval": "60s",
    }
    return _template(INFLUX, "envnet InfluxDB", "http://localhost:8086", settings)


def prometheus_template() -> JSON:
    # Placeholder: replaced by --prometheus-url / ENVNET_PROMETHEUS_URL at push.
    settings = {"httpMethod": "POST", "timeInterval": "15s"}
    return _template(PROMETHEUS, "envnet Prometheus", "http://localhost:9090", settings)


def alertmanager_template() -> JSON:
    """The Prometheus Alertmanager the aggregator sends its alerts to (issue 11).

    Grafana's Alertmanager data source is not a query data source: panels cannot query it.
    It makes the Alertmanager selectable on Grafana's Alerting pages (alert groups, silences,
    contact points). handleGrafanaManagedAlerts stays off: Grafana's own second-line rules are
    routed by Grafana, not through this Alertmanager."""
    # Placeholder: replaced by --alertmanager-url / ENVNET_ALERTMANAGER_URL at push.
    settings = {"implementation": "prometheus", "handleGrafanaManagedAlerts": False}
    return _template(ALERTMANAGER, ALERTMANAGER_NAME, "http://localhost:9093", settings)


def _template(ref: JSON, name: str, url: str, settings: JSON) -> JSON:
    return {
        "uid": ref["uid"],
        "name": name,
        "type": ref["type"],
        "access": "proxy",
        "url": url,
        "jsonData": settings,
        "isDefault": False,
    }

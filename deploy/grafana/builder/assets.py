"""Every generated file under deploy/grafana/, by path, and its exact committed text."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Final

from deploy.grafana.builder import boards, provisioning, rules
from deploy.grafana.builder.datasources import (
    alertmanager_template,
    influxdb_template,
    prometheus_template,
)
from deploy.grafana.builder.grafana_json import JSON

# Paths relative to deploy/grafana/. Core assets are pushed every time; optional/ only on
# request, because it needs a Prometheus server or an Alertmanager the core deployment does
# not.
ASSETS: Final[dict[str, Callable[[], JSON]]] = {
    "datasources/influxdb.json": influxdb_template,
    "dashboards/city-air.json": boards.city_air,
    "dashboards/air-quality.json": boards.air_quality,
    "dashboards/noise.json": boards.noise,
    "dashboards/odour.json": boards.odour,
    "dashboards/water-blooms.json": boards.water,
    "dashboards/alerts-fleet.json": boards.fleet,
    "dashboards/map.json": boards.node_map,
    "alerting/node-silent.json": rules.node_silent,
    "alerting/journal-dropped.json": rules.journal_dropped,
    "alerting/sensors-failed.json": rules.sensors_failed,
    "optional/aggregator-health/datasource.json": prometheus_template,
    "optional/aggregator-health/dashboard.json": boards.aggregator_health,
    "optional/alertmanager/datasource.json": alertmanager_template,
}

GENERATED_DIRS: Final = ("datasources", "dashboards", "alerting", "optional", "provisioning")
GENERATED_SUFFIXES: Final = (".json", ".yaml")


def to_text(document: JSON) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render(dashboards_path: str = provisioning.DEFAULT_DASHBOARDS_PATH) -> dict[str, str]:
    """Every generated file's text by path; the dashboard provider looks in `dashboards_path`."""
    files = {path: to_text(build()) for path, build in ASSETS.items()}
    files["provisioning/datasources/envnet.yaml"] = provisioning.datasources()
    files["provisioning/dashboards/envnet.yaml"] = provisioning.dashboards(dashboards_path)
    files["provisioning/alerting/envnet.yaml"] = provisioning.alert_rules()
    return files

"""Every generated file under deploy/grafana/, by path, and its exact committed text."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Final

from deploy.grafana.builder import boards, rules
from deploy.grafana.builder.datasources import influxdb_template, prometheus_template
from deploy.grafana.builder.grafana_json import JSON

# Paths relative to deploy/grafana/. Core assets are pushed every time; optional/ only on
# request, because it needs a Prometheus server the core deployment does not.
ASSETS: Final[dict[str, Callable[[], JSON]]] = {
    "datasources/influxdb.json": influxdb_template,
    "dashboards/city-air.json": boards.city_air,
    "dashboards/air-quality.json": boards.air_quality,
    "dashboards/noise.json": boards.noise,
    "dashboards/odour.json": boards.odour,
    "dashboards/water-blooms.json": boards.water,
    "dashboards/alerts-fleet.json": boards.fleet,
    "alerting/node-silent.json": rules.node_silent,
    "alerting/journal-dropped.json": rules.journal_dropped,
    "alerting/sensors-failed.json": rules.sensors_failed,
    "optional/aggregator-health/datasource.json": prometheus_template,
    "optional/aggregator-health/dashboard.json": boards.aggregator_health,
}

GENERATED_DIRS: Final = ("datasources", "dashboards", "alerting", "optional")


def to_text(document: JSON) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render() -> dict[str, str]:
    return {path: to_text(build()) for path, build in ASSETS.items()}

"""Grafana dashboard JSON pieces (panels, variables, annotations) for Grafana 10 and 11.

Only the fields envnet sets are written; Grafana fills defaults for the rest when it loads a
dashboard, so the files stay short enough to review in a diff.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from deploy.grafana.builder.limits import Band, Limit
from schemas.quantities import SPECS, Quantity, Unit

JSON = dict[str, Any]

# Grafana 10.4 and 11.x write schemaVersion 39; both load it without migration.
SCHEMA_VERSION: Final = 39
GRID_WIDTH: Final = 24

# Canonical units (ASCII on the wire, schemas/quantities.py) as Grafana units. Custom
# "suffix:" units where Grafana has no built-in one, so µg/m³ is never mistaken for ppm.
GRAFANA_UNITS: Final[dict[Unit, str]] = {
    "ug/m3": "suffix: µg/m³",
    "mg/m3": "suffix: mg/m³",
    "dB(A)": "suffix: dB(A)",
    "OU": "suffix: OU",
    "degC": "celsius",
    "pH": "none",
    "mg/L": "suffix: mg/L",
    "ug/L": "suffix: µg/L",
    "NTU": "suffix: NTU",
    "uS/cm": "suffix: µS/cm",
    "%": "percent",
    "hPa": "pressurehpa",
}


def unit_of(quantity: Quantity) -> str:
    return GRAFANA_UNITS[SPECS[quantity].unit]


def display_unit(quantity: Quantity) -> str:
    """The unit as a reader writes it after a number: " µg/m³", " °C", "" for pH."""
    unit = GRAFANA_UNITS[SPECS[quantity].unit]
    if unit.startswith("suffix:"):
        return " " + unit.removeprefix("suffix:").strip()
    return "" if unit == "none" else f" {SPECS[quantity].unit}"


def datasource_ref(uid: str, kind: str) -> JSON:
    return {"type": kind, "uid": uid}


def influx_target(
    datasource: JSON,
    query: str,
    ref_id: str = "A",
    alias: str | None = "$tag_node",
    result_format: str = "time_series",
) -> JSON:
    target: JSON = {
        "refId": ref_id,
        "datasource": datasource,
        "query": query,
        "rawQuery": True,
        "resultFormat": result_format,
    }
    if alias is not None:
        target["alias"] = alias
    return target


def prometheus_target(datasource: JSON, expr: str, legend: str, ref_id: str = "A") -> JSON:
    return {"refId": ref_id, "datasource": datasource, "expr": expr, "legendFormat": legend}


def thresholds(limits: Sequence[Limit]) -> JSON:
    """Absolute steps at each limit: green where values are acceptable, red past the last."""
    ordered = sorted(limits, key=lambda lim: lim.value)
    maxima = [lim for lim in ordered if lim.direction == "max"]
    base = "red" if ordered and ordered[0].direction == "min" else "green"
    steps: list[JSON] = [{"color": base, "value": None}]
    for lim in ordered:
        worst = lim is maxima[-1] if maxima else False
        color = "green" if lim.direction == "min" else "red" if worst else "orange"
        steps.append({"color": color, "value": lim.value})
    return {"mode": "absolute", "steps": steps}


def band_thresholds(bands: Sequence[Band]) -> JSON:
    """Absolute steps in the given colours, e.g. the HJ 633 AQI categories."""
    return {"mode": "absolute", "steps": [{"color": b.colour, "value": b.start} for b in bands]}


def value_text(texts: dict[int, str]) -> JSON:
    """A value mapping that shows each integer as its text (e.g. water class 6 as 劣V)."""
    options = {str(v): {"text": t, "index": i} for i, (v, t) in enumerate(texts.items())}
    return {"type": "value", "options": options}


def limits_description(quantity: Quantity, limits: Sequence[Limit]) -> str:
    unit = display_unit(quantity)
    return "\n".join(
        f"- Line at {lim.value:g}{unit}: {lim.label} ({lim.citation})." for lim in limits
    )


def _panel(
    kind: str, title: str, description: str, targets: Sequence[JSON], width: int, height: int
) -> JSON:
    """What every data panel starts with. A panel queries one data source, its targets'."""
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": targets[0]["datasource"],
        "gridPos": {"h": height, "w": width},
        "targets": list(targets),
    }


def timeseries(
    title: str,
    description: str,
    targets: Sequence[JSON],
    unit: str,
    limits: Sequence[Limit] = (),
    min_interval: str | None = None,
    width: int = 12,
    height: int = 8,
    draw_style: str = "line",
    steps: JSON | None = None,
    thresholds_style: str | None = None,
    defaults: JSON | None = None,
    custom: JSON | None = None,
    overrides: Sequence[JSON] = (),
) -> JSON:
    """A time series panel. Lines at `limits`, or `steps` (e.g. band_thresholds) drawn in
    `thresholds_style`; `defaults` and `custom` add field-config keys, `overrides` per field."""
    style = thresholds_style or ("dashed" if limits or steps else "off")
    panel: JSON = {
        **_panel("timeseries", title, description, targets, width, height),
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "color": {"mode": "palette-classic"},
                "thresholds": steps if steps is not None else thresholds(limits),
                "custom": {
                    "drawStyle": draw_style,
                    "lineWidth": 1,
                    "fillOpacity": 0,
                    "showPoints": "auto",
                    "spanNulls": False,
                    "thresholdsStyle": {"mode": style},
                    **(custom or {}),
                },
                **(defaults or {}),
            },
            "overrides": list(overrides),
        },
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }
    if min_interval is not None:
        panel["interval"] = min_interval
    return panel


def table(
    title: str,
    description: str,
    targets: Sequence[JSON],
    width: int,
    height: int,
    overrides: Sequence[JSON] = (),
) -> JSON:
    return {
        **_panel("table", title, description, targets, width, height),
        "fieldConfig": {"defaults": {"custom": {"filterable": True}}, "overrides": list(overrides)},
        "options": {"showHeader": True, "cellHeight": "sm"},
        "transformations": [],
    }


def stat(
    title: str,
    description: str,
    targets: Sequence[JSON],
    width: int = 12,
    height: int = 5,
    unit: str = "none",
    steps: JSON | None = None,
    decimals: int | None = None,
) -> JSON:
    """A stat per series; coloured by `steps` when given, else in one fixed colour."""
    defaults: JSON = {
        "unit": unit,
        "thresholds": steps if steps is not None else thresholds(()),
        "color": {"mode": "thresholds" if steps is not None else "fixed"},
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        **_panel("stat", title, description, targets, width, height),
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background" if steps is not None else "value",
            "graphMode": "none",
            "textMode": "value_and_name",
            "orientation": "horizontal",
        },
    }


def text(title: str, markdown: str, width: int = 12, height: int = 8) -> JSON:
    return {
        "type": "text",
        "title": title,
        "gridPos": {"h": height, "w": width},
        "options": {"mode": "markdown", "content": markdown},
    }


def row(title: str) -> JSON:
    return {"type": "row", "title": title, "collapsed": False, "gridPos": {"h": 1, "w": 24}}


def layout(panels: Sequence[JSON]) -> list[JSON]:
    """Number the panels and place them left to right, top to bottom, on the 24-column grid."""
    placed: list[JSON] = []
    x = y = row_height = 0
    for panel_id, panel in enumerate(panels, start=1):
        width, height = panel["gridPos"]["w"], panel["gridPos"]["h"]
        if x + width > GRID_WIDTH or panel["type"] == "row":
            x, y, row_height = 0, y + row_height, 0
        grid = {"h": height, "w": width, "x": x, "y": y}
        placed.append({"id": panel_id, **panel, "gridPos": grid})
        x, row_height = x + width, max(row_height, height)
        if panel["type"] == "row":
            x, y, row_height = 0, y + height, 0
    return placed


def query_variable(name: str, label: str, datasource: JSON, query: str) -> JSON:
    """A multi-select tag-value variable whose "All" matches everything (regex .*)."""
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": datasource,
        "query": query,
        "definition": query,
        "refresh": 1,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "sort": 1,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "hide": 0,
    }


def builtin_annotation() -> JSON:
    return {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }


def influx_annotation(
    name: str,
    datasource: JSON,
    query: str,
    text_col: str,
    tags: str,
    colour: str = "red",
    enable: bool = True,
) -> JSON:
    """An InfluxQL annotation query (the shape Grafana 10/11's InfluxDB editor saves)."""
    return {
        "name": name,
        "datasource": datasource,
        "enable": enable,
        "iconColor": colour,
        "target": {
            "refId": "Anno",
            "query": query,
            "rawQuery": True,
            "fromAnnotations": True,
            "textEditor": True,
            "textColumn": text_col,
            "tagsColumn": tags,
        },
    }


def dashboard(
    uid: str,
    title: str,
    description: str,
    tags: Sequence[str],
    panels: Sequence[JSON],
    variables: Sequence[JSON] = (),
    annotations: Sequence[JSON] = (),
    time_from: str = "now-24h",
    refresh: str = "1m",
) -> JSON:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": list(tags),
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": refresh,
        "time": {"from": time_from, "to": "now"},
        "templating": {"list": list(variables)},
        "annotations": {"list": [builtin_annotation(), *annotations]},
        "links": [
            {
                "title": "envnet dashboards",
                "type": "dashboards",
                "tags": ["envnet"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "panels": layout(panels),
        "schemaVersion": SCHEMA_VERSION,
    }


def join_by_field(field: str) -> JSON:
    """A transformation that joins the panel's query results into one table on `field`,
    keeping rows that only some queries have (an outer join)."""
    return {"id": "joinByField", "options": {"byField": field, "mode": "outer"}}


def geomap_markers(
    title: str,
    description: str,
    targets: Sequence[JSON],
    centre: tuple[float, float],
    zoom: float,
    colour_field: str,
    steps: JSON,
    label_field: str,
    width: int = 24,
    height: int = 14,
    transformations: Sequence[JSON] = (),
) -> JSON:
    """A Grafana 10/11 geomap panel: one marker per row at its `lat` and `lon` fields, in the
    colour of `colour_field` by `steps`, labelled with `label_field`."""
    lat, lon = centre
    marker_style: JSON = {
        "size": {"fixed": 10},
        "color": {"field": colour_field, "fixed": "text"},
        "opacity": 0.9,
        "symbol": {"mode": "fixed", "fixed": "img/icons/marker/circle.svg"},
        "text": {"mode": "field", "field": label_field, "fixed": ""},
        "textConfig": {"fontSize": 10, "offsetY": -14, "textAlign": "center"},
    }
    layer: JSON = {
        "type": "markers",
        "name": "Nodes",
        "config": {"style": marker_style, "showLegend": True},
        "location": {"mode": "coords", "latitude": "lat", "longitude": "lon"},
        "tooltip": True,
    }
    return {
        **_panel("geomap", title, description, targets, width, height),
        "fieldConfig": {
            "defaults": {"color": {"mode": "thresholds"}, "thresholds": steps},
            "overrides": [],
        },
        "options": {
            "view": {"id": "coords", "lat": lat, "lon": lon, "zoom": zoom, "allLayers": True},
            "controls": {"showZoom": True, "mouseWheelZoom": True, "showAttribution": True},
            "basemap": {"type": "default", "name": "Basemap", "config": {}},
            "layers": [layer],
            "tooltip": {"mode": "details"},
        },
        "transformations": list(transformations),
    }

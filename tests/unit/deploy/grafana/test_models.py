"""Every Grafana file envnet ships, checked against Grafana's published models.

- Dashboards and alert rules: against the Python models of grafana-foundation-sdk (Grafana
  Labs' SDK generated from Grafana's own schemas, pinned to the Grafana 11.6 models in the
  dev extras). Each file is decoded into the SDK's Dashboard or Rule and encoded back; every
  value must come back unchanged, so a key Grafana's schema does not have (a misspelt
  `gridpos`, a geomap `lattitude`) is dropped and fails the test. Values whose type is a
  closed set in the model (Literal or enum: a rule's noDataState, a panel's colour mode) must
  be one of its members.
  Two things the SDK does not model and the test therefore allows, by path: `definition` of a
  query variable (written by Grafana's own editor, absent from the schema), and the query
  fields of an InfluxDB annotation's `target` (its shape is the data source's query model,
  which the SDK has no InfluxDB type for; the queries themselves run on a real influxd in
  test_grafana_assets.py). Panels of a type the SDK has no options model for (alertlist) keep
  their options unchecked: the test lists them. A geomap layer's `config` is free-form in the
  schema; the markers' style is checked dimension by dimension against the SDK's dimension
  configs, its opacity and label layout (textConfig) are not.
- Provisioning YAML (data sources, dashboard provider, alert rules): the SDK has no model of
  these files, so they are checked against a JSON Schema written here from Grafana's
  provisioning documentation (administration/provisioning, alerting file provisioning), with
  no unknown keys; the alert rules inside against the SDK's Rule as above.

No Grafana server runs here: none of this shows that a Grafana renders the files.
"""

from __future__ import annotations

import enum
import json
import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.alerting import Rule
from grafana_foundation_sdk.models.dashboard import Dashboard

from deploy.grafana.builder.__main__ import ROOT
from deploy.grafana.builder.provisioning import ENV_VARIABLES

JSON = dict[str, Any]
Path_ = tuple[str | int, ...]

register_default_plugins()

# Paths (list indices as "*") that Grafana accepts and the SDK's models do not describe.
NOT_MODELLED: frozenset[tuple[str, ...]] = frozenset(
    {
        ("templating", "list", "*", "definition"),
        *(
            ("annotations", "list", "*", "target", key)
            for key in (
                "refId", "query", "rawQuery", "fromAnnotations", "textEditor", "textColumn",
                "tagsColumn",
            )
        ),
    }
)  # fmt: skip
# Panel types whose options the SDK has no model for (checked by nothing but Grafana).
UNMODELLED_PANEL_TYPES = {"alertlist"}


def _leaves(value: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path, value


_MISSING = object()


def _at(value: Any, path: Path_) -> Any:
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return _MISSING
        elif not isinstance(value, dict) or step not in value:
            return _MISSING
        value = value[step]
    return value


def _pattern(path: Path_) -> tuple[str, ...]:
    return tuple("*" if isinstance(step, int) else step for step in path)


def _closed_set_problems(model: object, where: str = "") -> list[str]:
    """Values outside the Literal or enum their model attribute is typed with."""
    if isinstance(model, list):
        return [p for i, item in enumerate(model) for p in _closed_set_problems(item, where)]
    if isinstance(model, dict):
        return [p for item in model.values() for p in _closed_set_problems(item, where)]
    if not hasattr(model, "to_json") or isinstance(model, cogruntime.UnknownDataquery):
        return []
    hints = typing.get_type_hints(type(model).__init__)
    problems = []
    for name, value in vars(model).items():
        allowed = _closed_set(hints.get(name))
        if value is not None and allowed is not None and value not in allowed:
            problems.append(f"{where}{type(model).__name__}.{name} = {value!r} not in {allowed}")
        problems += _closed_set_problems(value, f"{where}{type(model).__name__}.")
    return problems


def _closed_set(hint: Any) -> set[Any] | None:
    if hint is None:
        return None
    if typing.get_origin(hint) is typing.Literal:
        return set(typing.get_args(hint))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {member.value for member in hint}
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        return _closed_set(args[0])
    return None


def round_trip_problems(
    document: JSON, model: Any, allowed: frozenset[tuple[str, ...]]
) -> list[str]:
    decoded = model.from_json(document)
    back = json.loads(json.dumps(decoded, cls=JSONEncoder))
    problems = [
        f"{'.'.join(map(str, path))}: {value!r} did not survive Grafana's model"
        for path, value in _leaves(document)
        if _pattern(path) not in allowed and _at(back, path) != value
    ]
    return problems + _closed_set_problems(decoded)


def dashboard_files() -> list[Path]:
    return sorted([*ROOT.glob("dashboards/*.json"), *ROOT.glob("optional/*/dashboard.json")])


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_every_dashboard_is_a_grafana_dashboard(path: Path) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    assert round_trip_problems(document, Dashboard, NOT_MODELLED) == []


def test_only_known_panel_types_go_unchecked() -> None:
    unchecked = {
        panel["type"]
        for path in dashboard_files()
        for panel in json.loads(path.read_text(encoding="utf-8"))["panels"]
        if cogruntime.panelcfg_config(panel["type"]) is None and panel["type"] != "row"
    }
    assert unchecked == UNMODELLED_PANEL_TYPES


def test_the_model_check_catches_misspelt_keys_and_values() -> None:
    """The check can fail: a key the schema lacks, and a value outside a closed set."""
    board = json.loads((ROOT / "dashboards" / "map.json").read_text(encoding="utf-8"))
    geomap = next(p for p in board["panels"] if p["type"] == "geomap")
    location = geomap["options"]["layers"][0]["location"]
    location["lattitude"] = location.pop("latitude")
    geomap["gridpos"] = geomap.pop("gridPos")
    geomap["fieldConfig"]["defaults"]["color"]["mode"] = "by-aqi"
    problems = round_trip_problems(board, Dashboard, NOT_MODELLED)
    assert any("lattitude" in p for p in problems)
    assert any("gridpos" in p for p in problems)
    assert any("by-aqi" in p for p in problems)


# A geomap layer's `config` is free-form in Grafana's schema (each layer type has its own);
# the markers layer's style is made of Grafana's dimension configs, which the SDK models.
MARKER_DIMENSIONS = {
    "size": common.ScaleDimensionConfig,
    "color": common.ColorDimensionConfig,
    "symbol": common.ResourceDimensionConfig,
    "text": common.TextDimensionConfig,
}
# What the dimension models leave out: the style's own scalars and the label's layout.
MARKER_STYLE_SCALARS = {"opacity", "textConfig"}


def test_the_map_markers_are_made_of_grafana_dimension_configs() -> None:
    board = json.loads((ROOT / "dashboards" / "map.json").read_text(encoding="utf-8"))
    (geomap,) = [p for p in board["panels"] if p["type"] == "geomap"]
    (layer,) = geomap["options"]["layers"]
    assert layer["type"] == "markers"
    style = layer["config"]["style"]
    assert set(style) == set(MARKER_DIMENSIONS) | MARKER_STYLE_SCALARS
    for key, model in MARKER_DIMENSIONS.items():
        assert round_trip_problems(style[key], model, frozenset()) == [], key
    broken = {**style["text"], "mode": "column"}
    assert round_trip_problems(broken, common.TextDimensionConfig, frozenset()) != []


def rule_files() -> list[Path]:
    return sorted(ROOT.glob("alerting/*.json"))


@pytest.mark.parametrize("path", rule_files(), ids=lambda p: p.name)
def test_every_alert_rule_is_a_grafana_rule(path: Path) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    assert round_trip_problems(document, Rule, frozenset()) == []
    broken = {**document, "noDataState": "Silent"}
    assert round_trip_problems(broken, Rule, frozenset()) != []


# ------------------------------------------------------------------ provisioning files

_ENV = r"\$[A-Z_][A-Z0-9_]*"
# Grafana's administration/provisioning documentation, "Data sources" (the example file and
# its field list) and "Dashboards" (providers), for Grafana 10 and 11.
DATASOURCES_SCHEMA: JSON = {
    "type": "object",
    "required": ["apiVersion", "datasources"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": 1},
        "deleteDatasources": {"type": "array"},
        "prune": {"type": "boolean"},
        "datasources": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "type", "access", "url", "uid"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "type": {"enum": ["influxdb", "alertmanager", "prometheus"]},
                    "access": {"enum": ["proxy", "direct"]},
                    "orgId": {"type": "integer"},
                    "uid": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,40}$"},
                    "url": {"type": "string"},
                    "user": {"type": "string"},
                    "database": {"type": "string"},
                    "basicAuth": {"type": "boolean"},
                    "basicAuthUser": {"type": "string"},
                    "withCredentials": {"type": "boolean"},
                    "isDefault": {"type": "boolean"},
                    "jsonData": {"type": "object"},
                    "secureJsonData": {"type": "object"},
                    "version": {"type": "integer"},
                    "editable": {"type": "boolean"},
                },
            },
        },
    },
}
PROVIDERS_SCHEMA: JSON = {
    "type": "object",
    "required": ["apiVersion", "providers"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": 1},
        "providers": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "type", "options"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "orgId": {"type": "integer"},
                    "folder": {"type": "string"},
                    "folderUid": {"type": "string"},
                    "type": {"const": "file"},
                    "disableDeletion": {"type": "boolean"},
                    "updateIntervalSeconds": {"type": "integer", "minimum": 10},
                    "allowUiUpdates": {"type": "boolean"},
                    "options": {
                        "type": "object",
                        "required": ["path"],
                        "additionalProperties": False,
                        "properties": {
                            "path": {"type": "string", "pattern": "^/"},
                            "foldersFromFilesStructure": {"type": "boolean"},
                        },
                    },
                },
            },
        },
    },
}
# Grafana's alerting file provisioning: rule groups; each rule is checked against the SDK.
RULE_GROUPS_SCHEMA: JSON = {
    "type": "object",
    "required": ["apiVersion", "groups"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": 1},
        "groups": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["orgId", "name", "folder", "interval", "rules"],
                "additionalProperties": False,
                "properties": {
                    "orgId": {"type": "integer"},
                    "name": {"type": "string"},
                    "folder": {"type": "string"},
                    "interval": {"type": "string", "pattern": "^[0-9]+[smh]$"},
                    "rules": {"type": "array", "minItems": 1},
                },
            },
        },
    },
}
PROVISIONING = {
    "datasources/envnet.yaml": DATASOURCES_SCHEMA,
    "dashboards/envnet.yaml": PROVIDERS_SCHEMA,
    "alerting/envnet.yaml": RULE_GROUPS_SCHEMA,
}


def provisioning(name: str) -> JSON:
    document = yaml.safe_load((ROOT / "provisioning" / name).read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def test_provisioning_holds_exactly_the_documented_files() -> None:
    found = {str(p.relative_to(ROOT / "provisioning")) for p in ROOT.glob("provisioning/*/*")}
    assert found == set(PROVISIONING)


@pytest.mark.parametrize("name", sorted(PROVISIONING))
def test_every_provisioning_file_matches_grafanas_format(name: str) -> None:
    jsonschema.validate(provisioning(name), PROVISIONING[name])


def test_the_schemas_refuse_what_grafana_would_not_read() -> None:
    datasources = provisioning("datasources/envnet.yaml")
    datasources["datasources"][0]["jsonDate"] = {}
    with pytest.raises(jsonschema.ValidationError, match="jsonDate"):
        jsonschema.validate(datasources, DATASOURCES_SCHEMA)
    providers = provisioning("dashboards/envnet.yaml")
    providers["providers"][0]["options"]["path"] = "dashboards"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(providers, PROVIDERS_SCHEMA)


def test_provisioned_data_sources_are_the_pushed_ones_with_placeholders() -> None:
    """Same uid, type and settings as the push templates; every URL and secret an environment
    variable Grafana expands, each documented; no literal credential."""
    entries = {d["uid"]: d for d in provisioning("datasources/envnet.yaml")["datasources"]}
    templates = [
        json.loads((ROOT / "datasources" / "influxdb.json").read_text(encoding="utf-8")),
        json.loads((ROOT / "optional/alertmanager/datasource.json").read_text(encoding="utf-8")),
    ]
    assert set(entries) == {t["uid"] for t in templates}
    for template in templates:
        entry = entries[template["uid"]]
        assert (entry["type"], entry["name"]) == (template["type"], template["name"])
        assert set(entry["jsonData"]) == set(template["jsonData"])
        assert re.fullmatch(_ENV, entry["url"])
    alertmanager = entries["envnet-alertmanager"]
    assert (alertmanager["type"], alertmanager["jsonData"]["implementation"]) == (
        "alertmanager",
        "prometheus",
    )
    text = (ROOT / "provisioning" / "datasources" / "envnet.yaml").read_text(encoding="utf-8")
    used = set(re.findall(_ENV, text))
    assert used == {f"${name}" for name in ENV_VARIABLES}
    influx = entries["envnet-influxdb"]
    assert influx["secureJsonData"] == {"password": "$ENVNET_INFLUX_PASSWORD"}


def test_provisioned_rules_are_grafana_rules_without_interpolated_dollars() -> None:
    """Grafana expands $VAR in a provisioned rule's title and labels (not in its query model
    or annotations), so those must hold none; the rules are the pushed ones."""
    groups = provisioning("alerting/envnet.yaml")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    pushed = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in rule_files()}
    assert {r["uid"] for r in rules} == {r["uid"] for r in pushed.values()}
    for rule in rules:
        assert round_trip_problems(rule, Rule, frozenset()) == []
        assert "$" not in rule["title"] + "".join(rule.get("labels", {}).values())

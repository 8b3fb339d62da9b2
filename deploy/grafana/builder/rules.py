"""Grafana-managed alert rules, in the alerting provisioning API's format.

These are a second line for what Grafana is good at: noticing that data stopped or that a node
lost data. The standards alerts (GB 3095, GB 3096, GB 14554, GB 3838, WHO blooms) are raised by
the aggregator itself, which sees every reading as it arrives.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from deploy.grafana.builder import boards
from deploy.grafana.builder import influxql as q
from deploy.grafana.builder.datasources import INFLUX, INFLUX_UID
from deploy.grafana.builder.grafana_json import JSON
from schemas.storage import NODE_STATUS, READINGS

# Placeholder folder; `envnet grafana push --folder-uid` decides the real one.
FOLDER_UID: Final = "envnet"
RULE_GROUP: Final = "envnet-fleet"
EXPRESSION_UID: Final = "__expr__"
LABELS: Final = {"envnet": "fleet", "source": "grafana"}

# Nodes silent for longer than this drop out of the query and their alert resolves as a
# missing series; the aggregator's own liveness alerts and the fleet dashboard cover them.
SILENCE_LOOKBACK_S: Final = 24 * 3600
SILENCE_WINDOW_MIN: Final = 15


def _query(query: str, lookback_s: int) -> JSON:
    return {
        "refId": "A",
        "queryType": "",
        "relativeTimeRange": {"from": lookback_s, "to": 0},
        "datasourceUid": INFLUX_UID,
        "model": {
            "refId": "A",
            "datasource": INFLUX,
            "query": query,
            "rawQuery": True,
            "resultFormat": "time_series",
            "intervalMs": 60_000,
            "maxDataPoints": 43_200,
        },
    }


def _expression(ref_id: str, model: JSON) -> JSON:
    return {
        "refId": ref_id,
        "queryType": "",
        "relativeTimeRange": {"from": 0, "to": 0},
        "datasourceUid": EXPRESSION_UID,
        "model": {"refId": ref_id, "datasource": {"type": "__expr__", "uid": EXPRESSION_UID}}
        | model,
    }


def _last_then(evaluator: str, threshold: float) -> list[JSON]:
    """B = last value of each series of A; C = B compared with the threshold."""
    # No settings: strict mode (a non-numeric value is an error). Grafana's editor writes
    # {"mode": ""} for it, which its expression schema does not allow (only dropNN and
    # replaceNN); Grafana's backend reads an absent mode as strict too.
    reduce = {"type": "reduce", "expression": "A", "reducer": "last"}
    compare = {
        "type": "threshold",
        "expression": "B",
        "conditions": [{"evaluator": {"type": evaluator, "params": [threshold]}}],
    }
    return [_expression("B", reduce), _expression("C", compare)]


def _rule(
    uid: str,
    title: str,
    query: JSON,
    condition: list[JSON],
    pending: str,
    summary: str,
    description: str,
    panel_title: str,
    no_data: str,
) -> JSON:
    return {
        "uid": uid,
        "title": title,
        "ruleGroup": RULE_GROUP,
        "folderUID": FOLDER_UID,
        "orgID": 1,
        "condition": "C",
        "data": [query, *condition],
        "noDataState": no_data,
        "execErrState": "Error",
        "for": pending,
        "isPaused": False,
        "labels": {**LABELS, "severity": "warning"},
        "annotations": {
            "summary": summary,
            "description": description,
            "__dashboardUid__": boards.FLEET_UID,
            "__panelId__": str(_fleet_panel_id(panel_title)),
        },
    }


def _fleet_panel_id(title: str) -> int:
    panels = boards.fleet()["panels"]
    return next(int(p["id"]) for p in panels if p["title"] == title)


def node_silent() -> JSON:
    # Counts per minute with fill(0), then a 15-point moving average ×15: the number of
    # readings in the last 15 min, which is 0 for a silent node. A plain count over 15 min
    # would return no series at all for that node, and Grafana cannot alert on a missing one.
    window = SILENCE_WINDOW_MIN
    selection = f"moving_average(count({q.ident('value')}), {window}) * {window}"
    query = q.per_node(selection, READINGS.name, lookback_group=("time(1m)",))
    return _rule(
        uid="envnet-node-silent",
        title="envnet: node sent no readings for 15 min",
        query=_query(query, SILENCE_LOOKBACK_S),
        condition=_last_then("lt", 1),
        pending="1m",
        # No series at all means no node reported for a day: alert rather than stay quiet.
        no_data="Alerting",
        summary="Node {{ $labels.node }} has stored no readings for 15 minutes.",
        description=(
            "Counts readings timestamped in the last 15 min. Readings carry the start of "
            "their averaging interval, so nodes that report every 15 min or slower need a "
            "longer window. Nodes silent for over 24 h drop out of this rule; the "
            "aggregator's liveness alerts cover them."
        ),
        panel_title=boards.FLEET_READINGS_PANEL,
    )


def journal_dropped() -> JSON:
    # journal_dropped is a counter kept by the node (edge/journal.py), so any spread within
    # the window is readings lost for good.
    text = _Text(
        "envnet: node journal dropped readings",
        "Node {{ $labels.node }} dropped readings from its journal in the last hour.",
        "The node's journal hit its age or size bound while it could not deliver, and "
        "it discarded the oldest readings. Check the node's uplink and the aggregator.",
    )
    return _status_rule("journal_dropped", "spread", 3600, "0s", text, boards.FLEET_DROPPED_PANEL)


def sensors_failed() -> JSON:
    text = _Text(
        "envnet: node reports failed sensors",
        "Node {{ $labels.node }} reports {{ $values.B.Value }} failed sensor(s).",
        "From the node's status message. Failed for 10 min before it fires.",
    )
    return _status_rule("sensors_failed", "last", 900, "10m", text, boards.FLEET_SENSORS_PANEL)


class _Text(NamedTuple):
    """What a rule says: its title, and the summary and description of its alerts."""

    title: str
    summary: str
    description: str


def _status_rule(
    field: str, aggregate: str, lookback_s: int, pending: str, text: _Text, panel_title: str
) -> JSON:
    """A rule on `aggregate` of a field of the nodes' status messages, firing above 0."""
    selection = f"{aggregate}({q.ident(field)})"
    return _rule(
        uid="envnet-" + field.replace("_", "-"),
        title=text.title,
        query=_query(q.per_node(selection, NODE_STATUS.name), lookback_s),
        condition=_last_then("gt", 0),
        pending=pending,
        summary=text.summary,
        description=text.description,
        panel_title=panel_title,
        no_data="OK",
    )

"""The demo's live view is a pure rendering of what crossed MQTT."""

from __future__ import annotations

import json

from envnet.demo import _first_count
from envnet.demo_view import DemoState, render


def readings(node: str, value: float) -> bytes:
    return json.dumps(
        {
            "schema": "envnet.readings/1",
            "node": node,
            "seq": 1,
            "readings": [
                {
                    "ts": 1796000400000,
                    "quantity": "h2s",
                    "value": value,
                    "unit": "ug/m3",
                    "period_s": 60,
                    "stat": "mean",
                    "sensor": "gas",
                }
            ],
        }
    ).encode()


ALERT = {
    "schema": "envnet.alert/1",
    "node": "wwtp",
    "rule": "odour.h2s",
    "kind": "exceedance",
    "state": "firing",
    "severity": "warning",
    "standard": "GB 14554-93",
    "clause": "Table 1",
    "window_s": 60,
    "value": 151.5,
    "limit": 60.0,
    "since_ms": 1796000400000,
    "updated_ms": 1796000400000,
    "message": "h2s 151.5 ug/m3 vs plant-boundary limit 60",
}


def test_render_shows_latest_values_alerts_and_rate() -> None:
    state = DemoState()
    state.on_message("envnet/v1/nodes/wwtp/readings", readings("wwtp", 151.523))
    state.on_message("envnet/v1/alerts/wwtp/odour/h2s", json.dumps(ALERT).encode())
    state.on_message(
        "envnet/v1/alert-events",
        json.dumps(
            {
                "schema": "envnet.alert-event/1",
                "event": "fired",
                "at_ms": 1796000400000,
                "alert": ALERT,
            }
        ).encode(),
    )
    state.on_message("envnet/v1/nodes/wwtp/readings", b"not json")
    text = render(state, stored_per_s=12.0, stored_total=340.0, header="HEADER")
    assert "h2s=151.5" in text
    assert "active alerts: 1" in text and "odour.h2s" in text
    assert "fired" in text
    assert "12 readings/s stored" in text and "total 340" in text
    assert state.bad_messages == 1
    assert len(state.firing()) == 1


def test_first_count_reads_influxql_results_defensively() -> None:
    result: dict[str, object] = {"results": [{"series": [{"values": [[0, 42]]}]}]}
    assert _first_count(result) == 42
    assert _first_count({"results": [{"statement_id": 0}]}) == 0
    assert _first_count({}) == 0

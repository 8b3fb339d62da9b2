"""Alerts reach people: envnet → real Prometheus Alertmanager (Debian's 0.25), with the example
deploy/alertmanager/alertmanager.yml, on free ports (issue 11).

The config is the example's, changed by simulators.local_stack.local_alertmanager_config:
the incident webhook points at a small local receiver (a real HTTP server in this process);
group_wait / group_interval are 1 s instead of 30 s / 5 min, so notifications come within a
test's patience; and the WeCom API and the SMTP host point at a closed loopback port, so
nothing leaves the machine. Those receivers stay in the routes and fail quietly in
Alertmanager's own log, as they would with wrong credentials.

Readings come from a scripted odour node (GB 14554-93 H2S at a plant boundary, limit 60 µg/m³
for Grade II new), published on MQTT like a node publishes them, through a real aggregator,
mosquitto and influxd. Nothing sleeps to wait for an event: every wait polls with a deadline.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

import msgspec
import paho.mqtt.client as mqtt
import pytest

from aggregator.config import AggregatorConfig
from aggregator.delivery import FAMILIES, AlertmanagerSettings
from aggregator.fleet import Fleet, NodeInfo
from schemas import codec, topics
from schemas.messages import RULE_PATTERN, STATUS_SCHEMA, StatusMessage
from simulators.local_stack import Alertmanager, Influxd, Mosquitto, local_alertmanager_config
from tests.integration.e2e.test_alerts import MIN_MS, NodeFeed, origin, wait_acked
from tests.support.harness import (
    MqttProbe,
    aggregator_config,
    publisher,
    running_aggregator,
    wait_for,
)

ROOT: Final = Path(__file__).resolve().parents[3]
EXAMPLE: Final = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
WAIT_S: Final = 60.0
ENVNET: Final = Path(sys.executable).with_name("envnet")


# -- a webhook receiver for Alertmanager's notifications --------------------------------------


@dataclass
class Notifications:
    """What Alertmanager's webhook receiver POSTed (its payload version 4)."""

    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def story(self, node: str) -> list[tuple[str, str]]:
        """(status, alertname) of each notified alert of `node`, in arrival order."""
        with self.lock:
            return [
                (a["status"], a["labels"]["alertname"])
                for n in self.received
                for a in n["alerts"]
                if a["labels"].get("node") == node
            ]


class _Handler(BaseHTTPRequestHandler):
    sink: Notifications

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        payload = json.loads(self.rfile.read(length))
        with self.sink.lock:
            self.sink.received.append(payload)
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def notifications() -> Iterator[tuple[Notifications, str]]:
    sink = Notifications()
    handler = type("Handler", (_Handler,), {"sink": sink})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink, f"http://127.0.0.1:{server.server_address[1]}/envnet-alerts"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def alertmanager(
    tmp_path: Path, notifications: tuple[Notifications, str]
) -> Iterator[Alertmanager]:
    config = local_alertmanager_config(
        EXAMPLE, tmp_path / "am-config", notifications[1], group_wait="1s"
    )
    with Alertmanager(tmp_path / "alertmanager", config) as server:
        yield server


@pytest.fixture
def client(mosquitto: Mosquitto) -> Iterator[mqtt.Client]:
    connection = publisher(mosquitto.port)
    yield connection
    connection.loop_stop()
    connection.disconnect()


@pytest.fixture
def probe(mosquitto: Mosquitto) -> Iterator[MqttProbe]:
    watcher = MqttProbe(mosquitto.port, ["envnet/v1/nodes/+/ack"])
    yield watcher.start()
    watcher.stop()


def config_for(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path, am: Alertmanager
) -> AggregatorConfig:
    config = aggregator_config(mosquitto, influxd.url, tmp_path)
    section = AlertmanagerSettings(urls=(am.url,), retry_initial_s=0.1, retry_cap_s=0.5)
    return msgspec.structs.replace(config, alertmanager=section)


def plant(node: str, group: str = "Wujiang") -> NodeInfo:
    return NodeInfo(site=f"{node} boundary", odour_grade="II-new", group=group)


def am_alerts(am: Alertmanager, node: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = am.alerts()
    return [a for a in found if a["labels"].get("node") == node]


def one_alert(am: Alertmanager, node: str, rule: str) -> dict[str, Any]:
    """Wait until Alertmanager holds `rule` for `node`, and return it."""
    found: list[dict[str, Any]] = []

    def check() -> bool:
        found[:] = [a for a in am_alerts(am, node) if a["labels"]["alertname"] == rule]
        return bool(found)

    wait_for(check, WAIT_S, f"{rule} on {node} in Alertmanager")
    assert len(found) == 1, found
    return found[0]


def publish_status(client: mqtt.Client, status: StatusMessage) -> None:
    info = client.publish(
        topics.status(status.node), codec.STATUS.encode(status), qos=1, retain=True
    )
    info.wait_for_publish(timeout=10)
    assert info.is_published()


def notified(sink: Notifications, node: str, story: list[tuple[str, str]]) -> bool:
    return sink.story(node) == story


def alerts_list(mosquitto: Mosquitto, am: Alertmanager) -> dict[tuple[str, str], str]:
    """`envnet alerts list` with ENVNET_ALERTMANAGER_URL set: its rows by (node, rule)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVNET_")}
    env.update(ENVNET_MQTT_URL=mosquitto.url, ENVNET_ALERTMANAGER_URL=f"{am.url},http://x")
    result = subprocess.run(
        [str(ENVNET), "alerts", "list"], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[-1] == "ALERTMANAGER", lines
    return {(line.split()[0], line.split()[1]): line.rstrip() for line in lines[1:]}


def amtool(am: Alertmanager, *args: str) -> str:
    result = subprocess.run(
        ["amtool", f"--alertmanager.url={am.url}", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


# -- the tests -------------------------------------------------------------------------------


def test_an_odour_exceedance_arrives_with_its_labels_and_its_resolution_follows(
    mosquitto: Mosquitto,
    influxd: Influxd,
    alertmanager: Alertmanager,
    notifications: tuple[Notifications, str],
    tmp_path: Path,
    client: mqtt.Client,
    probe: MqttProbe,
) -> None:
    sink, _ = notifications
    node, t0 = "wwtp-east", origin()
    feed = NodeFeed(client, node, "h2s", "gas", 300)
    config = config_for(mosquitto, influxd, tmp_path, alertmanager)
    with running_aggregator(config, Fleet({node: plant(node)})) as agg:
        feed.send([(t0, 100.0)])
        alert = one_alert(alertmanager, node, "odour.h2s")
        assert alert["labels"] == {
            "alertname": "odour.h2s",
            "node": node,
            "family": "odour",
            "severity": "warning",
            "zone": "odour-II-new",
            "quantity": "h2s",
            "group": "Wujiang",
            "lane": "live",
        }
        notes = alert["annotations"]
        assert (notes["value"], notes["limit"]) == ("100 ug/m3", "60 ug/m3")
        assert notes["standard"] == "GB 14554-93 Table 1" and notes["suspect"] == "false"
        assert {"summary", "window_start", "window_end"} <= notes.keys()
        assert alert["status"]["state"] == "active"
        # The example routing sends every live alert to the incident webhook.
        wait_for(lambda: ("firing", "odour.h2s") in sink.story(node), WAIT_S, "firing note")

        feed.send([(t0 + 5 * MIN_MS, 10.0)])
        wait_acked(probe, feed)
        wait_for(lambda: not am_alerts(alertmanager, node), WAIT_S, "the alert to resolve")
        wait_for(lambda: ("resolved", "odour.h2s") in sink.story(node), WAIT_S, "resolved note")
        assert sink.story(node) == [("firing", "odour.h2s"), ("resolved", "odour.h2s")]
        assert agg.metric("envnet_alertmanager_posts_total", outcome="delivered") >= 2
        assert agg.metric("envnet_alertmanager_posts_total", outcome="rejected") == 0


def test_a_node_going_offline_inhibits_its_sensor_alerts(
    mosquitto: Mosquitto,
    influxd: Influxd,
    alertmanager: Alertmanager,
    tmp_path: Path,
    client: mqtt.Client,
) -> None:
    node, t0 = "wwtp-north", origin()
    feed = NodeFeed(client, node, "h2s", "gas", 300)
    config = config_for(mosquitto, influxd, tmp_path, alertmanager)
    with running_aggregator(config, Fleet({node: plant(node)})):
        # Like an edge agent: online at connect, then readings; then the broker publishes the
        # node's will (offline, retained) when its connection is lost.
        publish_status(client, StatusMessage(STATUS_SCHEMA, node, "online"))
        feed.send([(t0, 100.0)])
        assert one_alert(alertmanager, node, "odour.h2s")["status"]["state"] == "active"
        publish_status(client, StatusMessage(STATUS_SCHEMA, node, "offline", reason="lost"))
        one_alert(alertmanager, node, "liveness.node")

        def inhibited() -> bool:
            h2s = one_alert(alertmanager, node, "odour.h2s")
            return bool(h2s["status"]["inhibitedBy"]) and h2s["status"]["state"] == "suppressed"

        wait_for(inhibited, WAIT_S, "odour.h2s inhibited by liveness.node")
        liveness = one_alert(alertmanager, node, "liveness.node")
        assert liveness["status"]["state"] == "active"
        assert liveness["labels"]["family"] == "liveness"
        h2s = one_alert(alertmanager, node, "odour.h2s")
        assert h2s["status"]["inhibitedBy"] == [liveness["fingerprint"]]
        # What the operator's CLI says about it.
        rows = alerts_list(mosquitto, alertmanager)
        assert rows[(node, "odour.h2s")].endswith(f"inhibited by {liveness['fingerprint']}")
        assert rows[(node, "liveness.node")].endswith("active")


def test_a_silence_made_with_amtool_suppresses_the_webhook_notification(
    mosquitto: Mosquitto,
    influxd: Influxd,
    alertmanager: Alertmanager,
    notifications: tuple[Notifications, str],
    tmp_path: Path,
    client: mqtt.Client,
) -> None:
    sink, _ = notifications
    quiet, loud, t0 = "wwtp-maint", "wwtp-west", origin()
    silence = amtool(
        alertmanager, "silence", "add", f"node={quiet}", "--author=Li Wei",
        "--comment=maintenance window", "--duration=2h",
    ).strip()  # fmt: skip
    fleet = Fleet({quiet: plant(quiet), loud: plant(loud)})
    config = config_for(mosquitto, influxd, tmp_path, alertmanager)
    with running_aggregator(config, fleet):
        NodeFeed(client, quiet, "h2s", "gas", 300).send([(t0, 100.0)])
        silenced = one_alert(alertmanager, quiet, "odour.h2s")["status"]
        assert silenced["state"] == "suppressed" and silenced["silencedBy"] == [silence]
        # The unsilenced node fires after the silenced one, into the same routes and timers:
        # once its notification has come, the silenced one's would have come before it.
        NodeFeed(client, loud, "h2s", "gas", 300).send([(t0, 100.0)])
        wait_for(lambda: sink.story(loud) == [("firing", "odour.h2s")], WAIT_S, "loud note")
        assert sink.story(quiet) == []
        listed = amtool(alertmanager, "alert", "query", "--silenced", f"node={quiet}")
        assert "odour.h2s" in listed
        rows = alerts_list(mosquitto, alertmanager)
        assert rows[(quiet, "odour.h2s")].endswith(f"silenced by {silence}")
        assert rows[(loud, "odour.h2s")].endswith("active")


def test_an_aggregator_restart_neither_duplicates_nor_drops_an_alert(
    mosquitto: Mosquitto,
    influxd: Influxd,
    alertmanager: Alertmanager,
    notifications: tuple[Notifications, str],
    tmp_path: Path,
    client: mqtt.Client,
    probe: MqttProbe,
) -> None:
    sink, _ = notifications
    steady, resolving, t0 = "wwtp-steady", "wwtp-mend", origin()
    fleet = Fleet({steady: plant(steady), resolving: plant(resolving)})
    config = config_for(mosquitto, influxd, tmp_path, alertmanager)
    steady_feed = NodeFeed(client, steady, "h2s", "gas", 300)
    mend_feed = NodeFeed(client, resolving, "h2s", "gas", 300)
    with running_aggregator(config, fleet):
        steady_feed.send([(t0, 100.0)])
        mend_feed.send([(t0, 100.0)])
        before = one_alert(alertmanager, steady, "odour.h2s")
        one_alert(alertmanager, resolving, "odour.h2s")
        for node in (steady, resolving):
            fired = functools.partial(notified, sink, node, [("firing", "odour.h2s")])
            wait_for(fired, WAIT_S, node)
    # While the aggregator is down, the second node's H2S clears: the broker holds the
    # reading for the aggregator's persistent session.
    mend_feed.send([(t0 + 5 * MIN_MS, 10.0)])
    with running_aggregator(config, fleet) as agg:
        wait_acked(probe, mend_feed)
        wait_for(
            lambda: sink.story(resolving) == [("firing", "odour.h2s"), ("resolved", "odour.h2s")],
            WAIT_S,
            "the resolution that happened across the restart",
        )
        # The still-firing alert was sent again at start: the same alert (same labels, same
        # fingerprint and start), with a renewed lease, and nobody was notified twice.
        renewed: list[dict[str, Any]] = []

        def lease_renewed() -> bool:
            renewed[:] = [one_alert(alertmanager, steady, "odour.h2s")]
            return bool(renewed[0]["endsAt"] > before["endsAt"])

        wait_for(lease_renewed, WAIT_S, "the re-send at start to renew the lease")
        after = renewed[0]
        assert (after["fingerprint"], after["startsAt"]) == (
            before["fingerprint"],
            before["startsAt"],
        )
        assert after["status"]["state"] == "active"
        assert agg.metric("envnet_alertmanager_posts_total", outcome="rejected") == 0
        assert sink.story(steady) == [("firing", "odour.h2s")]


def test_the_web_ui_shows_the_envnet_alert_in_headless_chromium(
    mosquitto: Mosquitto,
    influxd: Influxd,
    alertmanager: Alertmanager,
    tmp_path: Path,
    client: mqtt.Client,
) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "chromium missing: install the Debian package (make os-packages)"
    node, t0 = "wwtp-ui", origin()
    config = config_for(mosquitto, influxd, tmp_path, alertmanager)
    with running_aggregator(config, Fleet({node: plant(node)})):
        NodeFeed(client, node, "h2s", "gas", 300).send([(t0, 100.0)])
        one_alert(alertmanager, node, "odour.h2s")
        # The alerts page, grouped by alert name (the UI's "Group (custom)" tab), so the
        # rule's name is on the page without a click; groups of one alert show its labels.
        url = f"{alertmanager.url}/#/alerts?customGrouping=true&group=alertname"
        page = dump_dom(chromium, url, tmp_path / "chromium")
    # What an operator sees: the envnet rule as the group, the node among its labels. (The
    # URL is in the page only percent-encoded, so these are the rendered labels.)
    assert 'alertname="odour.h2s"' in page, page[-3000:]
    assert f'node="{node}"' in page


def dump_dom(chromium: str, url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran (Alertmanager's UI is an Elm app)."""
    deadline = time.monotonic() + WAIT_S
    page = ""
    while time.monotonic() < deadline:
        result = subprocess.run(
            [
                chromium, "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                "--virtual-time-budget=10000", "--dump-dom", url,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )  # fmt: skip
        page = result.stdout
        if 'alertname="odour.h2s"' in page:
            break
    return page


def envnet_alerts_in(am: Alertmanager) -> list[dict[str, Any]]:
    """Alerts whose alertname is an envnet rule id (a family's prefix, the contract's
    pattern) and whose labels name a node."""
    found: list[dict[str, Any]] = am.alerts()
    return [
        a
        for a in found
        if re.match(RULE_PATTERN, a["labels"].get("alertname", ""))
        and a["labels"]["alertname"].partition(".")[0] in FAMILIES
        and a["labels"].get("node")
    ]


def test_the_demo_with_envnet_alertmanager_url_raises_envnet_alerts_there(
    alertmanager: Alertmanager, tmp_path: Path
) -> None:
    directory = tmp_path / "dev"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVNET_")}
    env["ENVNET_ALERTMANAGER_URL"] = alertmanager.url
    output = tmp_path / "demo.out"
    argv = [sys.executable, "-m", "envnet.cli", "demo", "--plain", "--nodes", "10",
            "--duration", "300", "--dir", str(directory)]  # fmt: skip
    with output.open("w") as out:
        demo = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            # However long a busy machine takes for the scripted H2S release (the 300 s is a
            # cap, not the expected run time): poll Alertmanager, then stop the demo.
            wait_for(lambda: bool(envnet_alerts_in(alertmanager)), 240, "an envnet alert")
        finally:
            demo.send_signal(signal.SIGINT)
            demo.wait(timeout=120)
    text = output.read_text()
    assert demo.returncode == 0, text[-3000:]
    assert f"its UI at {alertmanager.url}/#/alerts" in text
    assert not (directory / "alertmanager").exists(), "started its own Alertmanager"
    alert = envnet_alerts_in(alertmanager)[0]
    assert alert["labels"]["lane"] in ("live", "late") and alert["labels"]["family"] in FAMILIES


def test_a_restarted_alertmanager_gets_the_firing_alert_back_at_the_next_refresh(
    mosquitto: Mosquitto,
    influxd: Influxd,
    alertmanager: Alertmanager,
    tmp_path: Path,
    client: mqtt.Client,
) -> None:
    # A reading two minutes old (live: within alerts.late_after_s), so the alert's start is
    # in the past and is what Alertmanager shows, not "now" (event times ahead of the clock,
    # as origin() gives, are clamped to now).
    node, t0 = "wwtp-south", (int(time.time()) - 120) * 1000
    config = config_for(mosquitto, influxd, tmp_path, alertmanager)
    # Refresh every second, so the test need not wait a minute for it.
    section = msgspec.structs.replace(config.alertmanager, resend_s=1.0)
    config = msgspec.structs.replace(config, alertmanager=section)
    with running_aggregator(config, Fleet({node: plant(node)})):
        NodeFeed(client, node, "h2s", "gas", 300).send([(t0, 100.0)])
        before = one_alert(alertmanager, node, "odour.h2s")
        # Stopped, and started again on the same port with empty storage: it knows nothing.
        alertmanager.stop()
        fresh = Alertmanager(tmp_path / "alertmanager-2", alertmanager.config, alertmanager.port)
        with fresh:
            after = one_alert(fresh, node, "odour.h2s")
            assert (after["fingerprint"], after["startsAt"]) == (
                before["fingerprint"],
                before["startsAt"],
            )
            assert after["status"]["state"] == "active"
            assert after["startsAt"] == datetime.fromtimestamp(t0 / 1000, UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.000Z"
            )

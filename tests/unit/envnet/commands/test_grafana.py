"""`envnet grafana push` against a FAKE Grafana: no Grafana server can be installed or run here.

The fake is a stdlib HTTP server in a thread that records every request and emulates the few
Grafana HTTP API endpoints the push uses (data sources by uid, folders, POST
/api/dashboards/db, the alerting provisioning API for alert rules), with bearer-token auth. It
follows Grafana's documented behaviour (404 for a missing uid, 409 on a duplicate create, 412 on
a dashboard clash without overwrite) but it is not Grafana: these tests prove which calls the
push makes and with what payloads, not that a real Grafana accepts them.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from envnet.commands import grafana as grafana_push
from envnet.commands.grafana import PushError, influx_settings

JSON = dict[str, Any]
GRAFANA_TOKEN = "glsa_TEST-grafana-secret-1234"
INFLUX_TOKEN = "influx-secret-token-5678"
DASHBOARD_UIDS = {
    "envnet-air",
    "envnet-aqi",
    "envnet-noise",
    "envnet-odour",
    "envnet-water",
    "envnet-fleet",
    "envnet-map",
}
RULE_UIDS = {"envnet-node-silent", "envnet-journal-dropped", "envnet-sensors-failed"}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeGrafana:
    """Grafana's state and a log of requests; the HTTP handler below calls `handle`."""

    token: str
    requests: list[Request] = field(default_factory=list)
    datasources: dict[str, JSON] = field(default_factory=dict)
    folders: dict[str, JSON] = field(default_factory=dict)
    dashboards: dict[str, JSON] = field(default_factory=dict)
    rules: dict[str, JSON] = field(default_factory=dict)
    # (method, path) -> (status, body): answers that override the emulation.
    forced: dict[tuple[str, str], tuple[int, JSON]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, request: Request) -> tuple[int, JSON]:
        with self.lock:
            self.requests.append(request)
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return 401, {"message": "invalid API key"}
            forced = self.forced.get((request.method, request.path))
            return forced or self.route(request.method, request.path, request.body)

    def route(self, method: str, path: str, body: Any) -> tuple[int, JSON]:
        routes: list[tuple[str, str, Callable[[re.Match[str], Any], tuple[int, JSON]]]] = [
            ("GET", r"/api/datasources/uid/([^/]+)", self.get_datasource),
            ("POST", r"/api/datasources", self.create_datasource),
            ("PUT", r"/api/datasources/uid/([^/]+)", self.update_datasource),
            ("GET", r"/api/folders/([^/]+)", self.get_folder),
            ("POST", r"/api/folders", self.create_folder),
            ("POST", r"/api/dashboards/db", self.save_dashboard),
            ("GET", r"/api/v1/provisioning/alert-rules/([^/]+)", self.get_rule),
            ("POST", r"/api/v1/provisioning/alert-rules", self.create_rule),
            ("PUT", r"/api/v1/provisioning/alert-rules/([^/]+)", self.update_rule),
        ]
        for verb, pattern, endpoint in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                return endpoint(match, body)
        return 404, {"message": "Not found"}

    @staticmethod
    def found(store: dict[str, JSON], uid: str, what: str) -> tuple[int, JSON]:
        return (200, store[uid]) if uid in store else (404, {"message": f"{what} not found"})

    def get_datasource(self, match: re.Match[str], _body: Any) -> tuple[int, JSON]:
        return self.found(self.datasources, match[1], "Data source")

    def create_datasource(self, _match: re.Match[str], body: JSON) -> tuple[int, JSON]:
        if body["uid"] in self.datasources:
            return 409, {"message": "data source with the same uid already exists"}
        self.datasources[body["uid"]] = body
        return 200, {"datasource": body, "id": len(self.datasources), "message": "Datasource added"}

    def update_datasource(self, match: re.Match[str], body: JSON) -> tuple[int, JSON]:
        if match[1] not in self.datasources:
            return 404, {"message": "Data source not found"}
        self.datasources[match[1]] = body
        return 200, {"datasource": body, "message": "Datasource updated"}

    def get_folder(self, match: re.Match[str], _body: Any) -> tuple[int, JSON]:
        return self.found(self.folders, match[1], "folder")

    def create_folder(self, _match: re.Match[str], body: JSON) -> tuple[int, JSON]:
        if body["uid"] in self.folders:
            return 409, {"message": "a folder with the same uid already exists"}
        self.folders[body["uid"]] = body
        return 200, body

    def save_dashboard(self, _match: re.Match[str], body: JSON) -> tuple[int, JSON]:
        uid = body["dashboard"]["uid"]
        if body.get("folderUid") not in self.folders:
            return 400, {"message": "folder not found"}
        if uid in self.dashboards and not body.get("overwrite"):
            return 412, {"status": "name-exists", "message": "A dashboard with the same uid"}
        self.dashboards[uid] = body
        return 200, {"status": "success", "uid": uid, "version": 1}

    def get_rule(self, match: re.Match[str], _body: Any) -> tuple[int, JSON]:
        return self.found(self.rules, match[1], "alert rule")

    def create_rule(self, _match: re.Match[str], body: JSON) -> tuple[int, JSON]:
        if body["folderUID"] not in self.folders:
            return 400, {"message": "folder does not exist"}
        if body["uid"] in self.rules:
            return 409, {"message": "alert rule already exists"}
        self.rules[body["uid"]] = body
        return 201, body

    def update_rule(self, match: re.Match[str], body: JSON) -> tuple[int, JSON]:
        if match[1] not in self.rules:
            return 404, {"message": "alert rule not found"}
        self.rules[match[1]] = body
        return 200, body

    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests]


def handler_for(fake: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.respond()

        def do_POST(self) -> None:
            self.respond()

        def do_PUT(self) -> None:
            self.respond()

        def respond(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            path = self.path.split("?", 1)[0]
            request = Request(self.command, path, headers, json.loads(raw) if raw else None)
            status, body = fake.handle(request)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            """Silence the default per-request stderr line."""

    return Handler


@pytest.fixture
def grafana() -> Iterator[tuple[FakeGrafana, str]]:
    fake = FakeGrafana(token=GRAFANA_TOKEN)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(fake))
    # A short poll interval only makes shutdown() return sooner at teardown.
    serve = {"poll_interval": 0.01}
    thread = threading.Thread(target=server.serve_forever, kwargs=serve, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def isolated_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """main() configures the root logger; put it back so other tests are unaffected."""
    for variable in ("ENVNET_GRAFANA_URL", "ENVNET_GRAFANA_TOKEN", "ENVNET_PROMETHEUS_URL"):
        monkeypatch.delenv(variable, raising=False)
    for variable in ("ENVNET_INFLUX_URL", "ENVNET_INFLUX_DB", "ENVNET_INFLUX_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def push(url: str, *extra: str) -> int:
    argv = ["--url", url, "--influx-url", "http://influx:8086", "--log-level", "debug", *extra]
    return grafana_push.main(argv)


def with_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVNET_GRAFANA_TOKEN", GRAFANA_TOKEN)
    monkeypatch.setenv("ENVNET_INFLUX_TOKEN", INFLUX_TOKEN)


def assert_no_secret(text: str) -> None:
    assert GRAFANA_TOKEN not in text
    assert INFLUX_TOKEN not in text


# ------------------------------------------------------------------ push


def test_first_push_creates_everything_with_the_right_payloads(
    grafana: tuple[FakeGrafana, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = grafana
    with_tokens(monkeypatch)
    assert push(url) == 0

    assert all(r.headers["authorization"] == f"Bearer {GRAFANA_TOKEN}" for r in fake.requests)
    calls = fake.calls()
    assert calls[:4] == [
        ("GET", "/api/datasources/uid/envnet-influxdb"),
        ("POST", "/api/datasources"),
        ("GET", "/api/folders/envnet"),
        ("POST", "/api/folders"),
    ]
    dashboards = 4 + len(DASHBOARD_UIDS)
    assert calls[4:dashboards] == [("POST", "/api/dashboards/db")] * len(DASHBOARD_UIDS)
    assert calls[dashboards:] == [
        call
        for uid in ("envnet-journal-dropped", "envnet-node-silent", "envnet-sensors-failed")
        for call in (
            ("GET", f"/api/v1/provisioning/alert-rules/{uid}"),
            ("POST", "/api/v1/provisioning/alert-rules"),
        )
    ]

    datasource = fake.datasources["envnet-influxdb"]
    assert datasource["type"] == "influxdb"
    assert datasource["url"] == "http://influx:8086"
    assert datasource["jsonData"]["dbName"] == "envnet"
    assert datasource["jsonData"]["version"] == "InfluxQL"
    assert datasource["jsonData"]["httpHeaderName1"] == "Authorization"
    assert datasource["secureJsonData"] == {"httpHeaderValue1": f"Token {INFLUX_TOKEN}"}

    assert fake.folders == {"envnet": {"title": "envnet", "uid": "envnet"}}
    assert set(fake.dashboards) == DASHBOARD_UIDS
    for body in fake.dashboards.values():
        assert body["overwrite"] is True
        assert body["folderUid"] == "envnet"
        assert body["dashboard"]["id"] is None
    assert set(fake.rules) == RULE_UIDS
    assert all(rule["folderUID"] == "envnet" for rule in fake.rules.values())


def test_second_push_updates_instead_of_duplicating(
    grafana: tuple[FakeGrafana, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = grafana
    with_tokens(monkeypatch)
    assert push(url) == 0
    first = len(fake.requests)
    assert push(url) == 0

    second = [(r.method, r.path) for r in fake.requests[first:]]
    assert ("POST", "/api/datasources") not in second
    assert ("PUT", "/api/datasources/uid/envnet-influxdb") in second
    assert ("POST", "/api/folders") not in second
    assert ("POST", "/api/v1/provisioning/alert-rules") not in second
    assert {p for m, p in second if m == "PUT" and "alert-rules" in p} == {
        f"/api/v1/provisioning/alert-rules/{uid}" for uid in RULE_UIDS
    }
    assert (len(fake.datasources), len(fake.folders)) == (1, 1)
    assert (len(fake.dashboards), len(fake.rules)) == (len(DASHBOARD_UIDS), 3)


def test_custom_folder_and_optional_prometheus(
    grafana: tuple[FakeGrafana, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = grafana
    with_tokens(monkeypatch)
    extra = ("--folder-uid", "suzhou", "--prometheus-url", "http://prom:9090")
    assert push(url, *extra) == 0

    assert set(fake.folders) == {"suzhou"}
    assert fake.datasources["envnet-prometheus"]["url"] == "http://prom:9090"
    assert "envnet-aggregator" in fake.dashboards
    assert all(rule["folderUID"] == "suzhou" for rule in fake.rules.values())


def test_alertmanager_data_source_only_when_asked(
    grafana: tuple[FakeGrafana, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Alertmanager data source (type alertmanager, Prometheus implementation) is pushed
    with the first member of ENVNET_ALERTMANAGER_URL's cluster list, and not without it."""
    fake, url = grafana
    with_tokens(monkeypatch)
    assert push(url) == 0
    assert "envnet-alertmanager" not in fake.datasources

    monkeypatch.setenv("ENVNET_ALERTMANAGER_URL", "http://am1:9093, http://am2:9093")
    assert push(url) == 0
    datasource = fake.datasources["envnet-alertmanager"]
    assert (datasource["type"], datasource["url"]) == ("alertmanager", "http://am1:9093")
    assert datasource["jsonData"]["implementation"] == "prometheus"


def test_influxdb_1x_credentials_from_the_url(
    grafana: tuple[FakeGrafana, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = grafana
    monkeypatch.setenv("ENVNET_GRAFANA_TOKEN", GRAFANA_TOKEN)
    monkeypatch.setenv("ENVNET_INFLUX_URL", "http://reader:s3cret@influx:8086")
    argv = ["--url", url, "--influx-db", "city"]
    assert grafana_push.main(argv) == 0

    datasource = fake.datasources["envnet-influxdb"]
    assert datasource["url"] == "http://influx:8086"
    assert datasource["user"] == "reader"
    assert datasource["secureJsonData"] == {"password": "s3cret"}
    assert datasource["jsonData"]["dbName"] == "city"
    assert "httpHeaderName1" not in datasource["jsonData"]


# ------------------------------------------------------------------ failures


def test_401_is_reported_clearly_without_the_token(
    grafana: tuple[FakeGrafana, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, url = grafana
    fake.token = "some-other-token"
    with_tokens(monkeypatch)
    assert push(url) == 1

    out, err = capsys.readouterr()
    assert f"Grafana at {url} refused the credentials (401)" in err
    assert "check the token" in err
    assert fake.calls() == [("GET", "/api/datasources/uid/envnet-influxdb")]
    assert_no_secret(out + err)


def test_connection_refused_is_reported_clearly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Bound but never listening, then closed: nothing accepts on this port.
    with_tokens(monkeypatch)
    assert push(f"http://127.0.0.1:{port}") == 1

    out, err = capsys.readouterr()
    assert f"cannot reach Grafana at http://127.0.0.1:{port}: Connection refused" in err
    assert_no_secret(out + err)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (403, "denied datasource envnet-influxdb (403): the token needs the Admin role"),
        (400, "rejected datasource envnet-influxdb (400): database is locked"),
        (500, "failed on datasource envnet-influxdb (500): database is locked"),
    ],
)
def test_refusals_are_reported_with_what_was_refused(
    grafana: tuple[FakeGrafana, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    status: int,
    expected: str,
) -> None:
    fake, url = grafana
    fake.forced[("POST", "/api/datasources")] = (status, {"message": "database is locked"})
    with_tokens(monkeypatch)
    assert push(url) == 1

    out, err = capsys.readouterr()
    assert expected in err
    assert fake.calls()[-1] == ("POST", "/api/datasources")  # stopped at the first failure
    assert_no_secret(out + err)


def test_grafana_under_a_sub_path() -> None:
    assert grafana_push.api_base("http://h/grafana") == "http://h/grafana/"
    assert grafana_push.api_base("http://h:3000/") == "http://h:3000/"
    assert grafana_push.api_base("http://h:3000") == "http://h:3000"


def test_missing_token_fails_before_any_request(
    grafana: tuple[FakeGrafana, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = grafana
    assert push(url) == 1
    assert "no Grafana credentials" in capsys.readouterr().err
    assert fake.requests == []


def test_bad_asset_file_is_named(
    grafana: tuple[FakeGrafana, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    fake, url = grafana
    assets = tmp_path / "grafana"
    shutil.copytree(grafana_push.DEFAULT_ASSETS, assets, ignore=shutil.ignore_patterns("*.py"))
    broken = assets / "dashboards" / "noise.json"
    broken.write_text('{"uid": "envnet-noise",', encoding="utf-8")
    with_tokens(monkeypatch)
    assert push(url, "--assets", str(assets)) == 1

    err = capsys.readouterr().err
    assert f"{broken}: not valid JSON" in err
    assert fake.requests == []


def test_asset_without_uid_is_refused(tmp_path: Path) -> None:
    (tmp_path / "alerting").mkdir()
    rule = tmp_path / "alerting" / "x.json"
    rule.write_text(json.dumps({"title": "no uid"}), encoding="utf-8")
    for sub in ("datasources", "dashboards"):
        (tmp_path / sub).mkdir()
        shutil.copy(next((grafana_push.DEFAULT_ASSETS / sub).glob("*.json")), tmp_path / sub)
    with pytest.raises(PushError, match=r"x\.json: missing uid, ruleGroup"):
        grafana_push.load_assets(tmp_path, include_optional=False)


# ------------------------------------------------------------------ dry run, secrets


def test_dry_run_prints_the_plan_and_sends_nothing(
    grafana: tuple[FakeGrafana, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, url = grafana
    with_tokens(monkeypatch)
    assert push(url, "--dry-run") == 0

    out, err = capsys.readouterr()
    assert fake.requests == []
    assert f"dry run: nothing sent to {url}" in out
    assert "datasource envnet-influxdb" in out
    assert "http://influx:8086, db envnet, auth token" in out
    for uid in DASHBOARD_UIDS | RULE_UIDS:
        assert uid in out
    assert_no_secret(out + err)


def test_dry_run_needs_no_url_or_token(capsys: pytest.CaptureFixture[str]) -> None:
    assert grafana_push.main(["--dry-run"]) == 0
    assert "nothing sent to (no --url)" in capsys.readouterr().out


def test_tokens_never_reach_logs_or_output(
    grafana: tuple[FakeGrafana, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _fake, url = grafana
    with_tokens(monkeypatch)
    # Tokens given as options too, with debug logging of every library on.
    extra = ("--token", GRAFANA_TOKEN, "--influx-token", INFLUX_TOKEN)
    assert push(url, *extra) == 0
    assert push(url, *extra, "--dry-run") == 0

    out, err = capsys.readouterr()
    assert "grafana_upserted" in err  # the structured log did run, at debug level
    assert "created" in out
    assert_no_secret(out + err)


def test_settings_are_repr_safe() -> None:
    influx = influx_settings("http://u:pw-secret@influx:8086/", "envnet", None)
    assert influx.url == "http://influx:8086"
    assert (influx.username, influx.password) == ("u", "pw-secret")
    assert "pw-secret" not in repr(influx)
    args = argparse.Namespace(
        url="http://g:3000",
        token=GRAFANA_TOKEN,
        influx_url=None,
        influx_db=None,
        influx_token=INFLUX_TOKEN,
        prometheus_url=None,
        alertmanager_url=None,
        folder_uid="envnet",
        folder_title="envnet",
        assets=None,
        timeout=1.0,
        dry_run=False,
    )
    settings = grafana_push.settings_from(args, {})
    assert_no_secret(repr(settings))


def test_url_credentials_and_token_together_are_refused() -> None:
    with pytest.raises(PushError, match="either in the URL or as a token"):
        influx_settings("http://u:p@influx:8086", "envnet", "tok")

"""Push envnet's Grafana assets (deploy/grafana/) to a Grafana server through grafana-client.

`envnet grafana push --url http://grafana:3000` upserts, in this order: the data sources (by
uid, with URL, database and credentials filled in here), the folder, the dashboards (overwritten
into the folder) and the Grafana-managed alert rules (created or updated by uid). `--dry-run`
prints that plan and sends nothing.

The core (reading the assets, filling the data sources, planning) is pure; `GrafanaHttp` is the
only code that talks to Grafana. Tokens are never logged or printed: they live only in
`PushSettings`/`InfluxSettings` fields excluded from repr and in the HTTP headers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, TextIO
from urllib.parse import unquote, urlsplit, urlunsplit

from grafana_client.api import GrafanaApi
from grafana_client.client import (
    GrafanaClientError,
    GrafanaException,
    GrafanaServerError,
    GrafanaTimeoutError,
    GrafanaUnauthorizedError,
)

from deploy import grafana as grafana_assets
from schemas.runtime.logs import configure_logging, get_logger, redact_url

log = get_logger("envnet.commands.grafana")

JSON = dict[str, Any]

# The committed assets ship inside the package (pyproject.toml package-data), so this is
# right both in a checkout and in an installed wheel.
DEFAULT_ASSETS: Final = Path(grafana_assets.__file__).resolve().parent
DEFAULT_FOLDER_UID: Final = "envnet"
DEFAULT_FOLDER_TITLE: Final = "envnet"
DEFAULT_INFLUX_DB: Final = "envnet"
DEFAULT_TIMEOUT_S: Final = 10.0
PUSH_MESSAGE: Final = "envnet grafana push"

ActionKind = Literal["datasource", "folder", "dashboard", "alert-rule"]
Outcome = Literal["created", "updated", "unchanged"]


class PushError(Exception):
    """A failure explained for the operator; the command exits 1 with this message."""


@dataclass(frozen=True, slots=True)
class InfluxSettings:
    url: str
    database: str
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def auth(self) -> str:
        if self.token:
            return "token"
        return "user/password" if self.username else "none"


@dataclass(frozen=True, slots=True)
class PushSettings:
    # URLs may carry basic-auth credentials, so they stay out of repr like the tokens.
    grafana_url: str | None = field(repr=False)
    token: str | None = field(repr=False)
    assets: Path
    folder_uid: str
    folder_title: str
    influx: InfluxSettings
    prometheus_url: str | None = field(repr=False)
    dry_run: bool
    timeout_s: float
    alertmanager_url: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Assets:
    datasources: tuple[JSON, ...]
    dashboards: tuple[JSON, ...]
    alert_rules: tuple[JSON, ...]


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    uid: str
    title: str
    payload: JSON = field(repr=False)
    detail: str = ""


# ---------------------------------------------------------------- settings (pure)


def settings_from(args: argparse.Namespace, environ: Mapping[str, str]) -> PushSettings:
    """Options win over ENVNET_* variables, which win over defaults."""

    def pick(value: str | None, variable: str) -> str | None:
        return value or environ.get(variable) or None

    influx_url = pick(args.influx_url, "ENVNET_INFLUX_URL")
    influx_db = pick(args.influx_db, "ENVNET_INFLUX_DB") or DEFAULT_INFLUX_DB
    influx_token = pick(args.influx_token, "ENVNET_INFLUX_TOKEN")
    grafana_url = pick(args.url, "ENVNET_GRAFANA_URL")
    if grafana_url is None and not args.dry_run:
        raise PushError("no Grafana URL: pass --url or set ENVNET_GRAFANA_URL")
    return PushSettings(
        grafana_url=grafana_url,
        token=pick(args.token, "ENVNET_GRAFANA_TOKEN"),
        assets=Path(args.assets) if args.assets else DEFAULT_ASSETS,
        folder_uid=args.folder_uid,
        folder_title=args.folder_title,
        influx=influx_settings(influx_url, influx_db, influx_token),
        prometheus_url=pick(args.prometheus_url, "ENVNET_PROMETHEUS_URL"),
        alertmanager_url=first_url(pick(args.alertmanager_url, "ENVNET_ALERTMANAGER_URL")),
        dry_run=args.dry_run,
        timeout_s=args.timeout,
    )


def first_url(urls: str | None) -> str | None:
    """ENVNET_ALERTMANAGER_URL may list an Alertmanager cluster (comma-separated) for the
    aggregator; Grafana's data source takes one member, which shows the cluster's alerts."""
    if urls is None:
        return None
    members = [u.strip() for u in urls.split(",") if u.strip()]
    return members[0] if members else None


def influx_settings(url: str | None, database: str, token: str | None) -> InfluxSettings:
    """Credentials may come in the URL (InfluxDB 1.x users) or as a token (2.x, 3.x)."""
    if url is None:
        return InfluxSettings(url="", database=database, token=token)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise PushError(f"bad InfluxDB URL {redact_url(url)!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PushError(f"InfluxDB URL must be http(s)://host[:port], got {redact_url(url)!r}")
    if parts.username and token:
        raise PushError("give InfluxDB credentials either in the URL or as a token, not both")
    netloc = parts.hostname + (f":{port}" if port else "")
    return InfluxSettings(
        url=urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")),
        database=database,
        token=token,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


# ---------------------------------------------------------------- assets (read, validate)


def load_assets(root: Path, include_optional: bool, include_alertmanager: bool = False) -> Assets:
    if not root.is_dir():
        raise PushError(f"asset directory {root} not found; pass --assets DIR")
    optional = root / "optional" / "aggregator-health"
    datasources = _read_all(root / "datasources", _check_datasource)
    dashboards = _read_all(root / "dashboards", _check_dashboard)
    if include_optional:
        datasources += (_read(optional / "datasource.json", _check_datasource),)
        dashboards += (_read(optional / "dashboard.json", _check_dashboard),)
    if include_alertmanager:
        alertmanager = root / "optional" / "alertmanager" / "datasource.json"
        datasources += (_read(alertmanager, _check_datasource),)
    rules = _read_all(root / "alerting", _check_alert_rule)
    return Assets(datasources, dashboards, rules)


def _read_all(directory: Path, check: Callable[[JSON], str | None]) -> tuple[JSON, ...]:
    files = sorted(directory.glob("*.json"))
    if not files:
        raise PushError(f"{directory}: no *.json asset files")
    return tuple(_read(path, check) for path in files)


def _read(path: Path, check: Callable[[JSON], str | None]) -> JSON:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PushError(f"{path}: no such asset file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PushError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise PushError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise PushError(f"{path}: expected a JSON object")
    problem = check(document)
    if problem:
        raise PushError(f"{path}: {problem}")
    return document


def _missing(document: JSON, keys: Sequence[str]) -> str | None:
    absent = [k for k in keys if not document.get(k)]
    return f"missing {', '.join(absent)}" if absent else None


def _check_datasource(document: JSON) -> str | None:
    return _missing(document, ("uid", "name", "type", "access"))


def _check_dashboard(document: JSON) -> str | None:
    problem = _missing(document, ("uid", "title", "panels"))
    if problem is None and document.get("id") is not None:
        # A committed id would make Grafana update whichever dashboard has that id.
        return "dashboard must not carry an 'id'; Grafana matches by uid"
    return problem


def _check_alert_rule(document: JSON) -> str | None:
    keys = ("uid", "title", "ruleGroup", "condition", "data", "noDataState", "execErrState", "for")
    return _missing(document, keys)


# ---------------------------------------------------------------- plan (pure)


def plan(assets: Assets, settings: PushSettings) -> list[Action]:
    """Everything to upsert, in dependency order: data sources, folder, dashboards, rules."""
    folder = {"uid": settings.folder_uid, "title": settings.folder_title}
    return [
        *(_datasource_action(ds, settings) for ds in assets.datasources),
        Action("folder", settings.folder_uid, settings.folder_title, folder),
        *(_dashboard_action(d, settings.folder_uid) for d in assets.dashboards),
        *(_rule_action(r, settings.folder_uid) for r in assets.alert_rules),
    ]


def _datasource_action(template: JSON, settings: PushSettings) -> Action:
    kind = template["type"]
    if kind == "influxdb":
        payload = influx_datasource(template, settings.influx)
        detail = f"{payload['url']}, db {settings.influx.database}, auth {settings.influx.auth}"
    elif kind == "prometheus" and settings.prometheus_url:
        payload = {**template, "url": settings.prometheus_url}
        detail = redact_url(settings.prometheus_url)
    elif kind == "alertmanager" and settings.alertmanager_url:
        payload = {**template, "url": settings.alertmanager_url}
        detail = redact_url(settings.alertmanager_url)
    else:
        raise PushError(f"data source {template['uid']}: no settings for type {kind!r}")
    return Action("datasource", template["uid"], template["name"], payload, f"{kind}: {detail}")


def influx_datasource(template: JSON, influx: InfluxSettings) -> JSON:
    """The template with the deployment's URL, database and credentials filled in."""
    json_data = {**template.get("jsonData", {}), "dbName": influx.database}
    payload: JSON = {**template, "url": influx.url or template["url"], "jsonData": json_data}
    if influx.token:
        # InfluxDB 2.x/3.x answer InfluxQL on /query with a DBRP mapping and this header.
        json_data["httpHeaderName1"] = "Authorization"
        payload["secureJsonData"] = {"httpHeaderValue1": f"Token {influx.token}"}
    elif influx.username:
        payload["user"] = influx.username
        payload["secureJsonData"] = {"password": influx.password or ""}
    return payload


def _dashboard_action(dashboard: JSON, folder_uid: str) -> Action:
    payload = {
        "dashboard": {**dashboard, "id": None},
        "folderUid": folder_uid,
        "overwrite": True,
        "message": PUSH_MESSAGE,
    }
    return Action("dashboard", dashboard["uid"], dashboard["title"], payload)


def _rule_action(rule: JSON, folder_uid: str) -> Action:
    payload = {**rule, "folderUID": folder_uid}
    return Action("alert-rule", rule["uid"], rule["title"], payload, f"group {rule['ruleGroup']}")


def describe(action: Action) -> str:
    """One line for the plan or the result; never includes the payload (it holds secrets)."""
    detail = f" ({action.detail})" if action.detail else ""
    return f"{action.kind:<10} {action.uid:<24} {action.title}{detail}"


# ---------------------------------------------------------------- Grafana (I/O)


@dataclass(frozen=True, slots=True)
class ByUid:
    """A kind of Grafana object that the push creates, or else updates, by its uid: its
    grafana-client calls (get, create, update)."""

    get: Callable[[str], Any]
    create: Callable[[JSON], Any]
    update: Callable[[str, JSON], Any]

    def find(self, uid: str) -> JSON | None:
        return _unless_missing(lambda: self.get(uid))

    def upsert(self, action: Action) -> Outcome:
        if self.find(action.uid) is None:
            self.create(action.payload)
            return "created"
        self.update(action.uid, action.payload)
        return "updated"


class GrafanaHttp:
    """The Grafana HTTP API calls the push needs, through grafana-client."""

    def __init__(self, api: Any) -> None:
        # grafana-client is untyped; Any is confined to this class and ByUid.
        self._api = api
        self.datasources = ByUid(
            api.datasource.get_datasource_by_uid,
            api.datasource.create_datasource,
            api.datasource.update_datasource_by_uid,
        )
        self.alert_rules = ByUid(
            api.alertingprovisioning.get_alertrule,
            api.alertingprovisioning.create_alertrule,
            api.alertingprovisioning.update_alertrule,
        )

    @classmethod
    def connect(cls, url: str, token: str | None, timeout_s: float) -> GrafanaHttp:
        has_basic_auth = bool(urlsplit(url).password)
        if not token and not has_basic_auth:
            raise PushError(
                "no Grafana credentials: set ENVNET_GRAFANA_TOKEN (or pass --token) to a "
                "service account token with the Admin role"
            )
        api = GrafanaApi.from_url(url=api_base(url), credential=token or None, timeout=timeout_s)
        return cls(api)

    def find_folder(self, uid: str) -> JSON | None:
        return _unless_missing(lambda: self._api.folder.get_folder(uid))

    def create_folder(self, uid: str, title: str) -> None:
        self._api.folder.create_folder(title, uid=uid)

    def put_dashboard(self, payload: JSON) -> None:
        self._api.dashboard.update_dashboard(payload)


def api_base(url: str) -> str:
    """grafana-client appends "api" to the URL path as is: a sub-path needs its trailing /."""
    parts = urlsplit(url)
    if parts.path.endswith("/") or not parts.path:
        return url
    return urlunsplit(parts._replace(path=parts.path + "/"))


def _unless_missing(call: Callable[[], Any]) -> JSON | None:
    try:
        found = call()
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise
    return found if isinstance(found, dict) else None


def _upsert_datasource(action: Action, grafana: GrafanaHttp) -> Outcome:
    return grafana.datasources.upsert(action)


def _ensure_folder(action: Action, grafana: GrafanaHttp) -> Outcome:
    if grafana.find_folder(action.uid) is None:
        grafana.create_folder(action.uid, action.title)
        return "created"
    return "unchanged"


def _put_dashboard(action: Action, grafana: GrafanaHttp) -> Outcome:
    # POST /api/dashboards/db with overwrite creates or replaces by uid in one call.
    grafana.put_dashboard(action.payload)
    return "updated"


def _upsert_alert_rule(action: Action, grafana: GrafanaHttp) -> Outcome:
    return grafana.alert_rules.upsert(action)


APPLY: Final[dict[ActionKind, Callable[[Action, GrafanaHttp], Outcome]]] = {
    "datasource": _upsert_datasource,
    "folder": _ensure_folder,
    "dashboard": _put_dashboard,
    "alert-rule": _upsert_alert_rule,
}


_ERRNO_TEXT = re.compile(r"\[Errno -?\d+\] ([^')\"]+)")


def _reason(exc: GrafanaException) -> str:
    """Grafana's own explanation, from the JSON body it sends with an error."""
    response = exc.response
    if isinstance(response, dict) and response.get("message"):
        return str(response["message"])
    return str(exc.message)


@contextlib.contextmanager
def explained(url: str, what: str) -> Iterator[None]:
    """Turn grafana-client and network exceptions into one clear PushError."""
    where = redact_url(url)
    try:
        yield
    except GrafanaUnauthorizedError:
        msg = f"Grafana at {where} refused the credentials (401) on {what}: check the token"
        raise PushError(msg) from None
    except GrafanaClientError as exc:
        if exc.status_code == 403:
            msg = f"Grafana at {where} denied {what} (403): the token needs the Admin role"
            raise PushError(msg) from None
        msg = f"Grafana at {where} rejected {what} ({exc.status_code}): {_reason(exc)}"
        raise PushError(msg) from None
    except GrafanaServerError as exc:
        msg = f"Grafana at {where} failed on {what} ({exc.status_code}): {_reason(exc)}"
        raise PushError(msg) from None
    except GrafanaTimeoutError:
        raise PushError(f"Grafana at {where} did not answer in time while pushing {what}") from None
    except GrafanaException as exc:
        raise PushError(f"HTTP error talking to Grafana at {where}: {exc.message}") from None
    except OSError as exc:
        # niquests' ConnectionError is an OSError: refused, DNS, TLS.
        found = _ERRNO_TEXT.search(str(exc))
        reason = found.group(1).strip() if found else type(exc).__name__
        raise PushError(f"cannot reach Grafana at {where}: {reason}") from None


def warnings(settings: PushSettings) -> list[str]:
    found = []
    if not settings.influx.url:
        found.append(
            "no InfluxDB URL (--influx-url, ENVNET_INFLUX_URL): the data source keeps the "
            "template's http://localhost:8086, which is Grafana's own host"
        )
    if settings.influx.auth == "none":
        found.append("no InfluxDB credentials: the data source will query without auth")
    return found


def write_plan(actions: Sequence[Action], settings: PushSettings, out: TextIO) -> None:
    target = redact_url(settings.grafana_url) if settings.grafana_url else "(no --url)"
    out.write(f"dry run: nothing sent to {target}; would upsert:\n")
    out.writelines(f"  {describe(a)}\n" for a in actions)
    out.writelines(f"warning: {w}\n" for w in warnings(settings))


def push(settings: PushSettings, out: TextIO) -> None:
    assets = load_assets(
        settings.assets,
        include_optional=settings.prometheus_url is not None,
        include_alertmanager=settings.alertmanager_url is not None,
    )
    actions = plan(assets, settings)
    if settings.dry_run or settings.grafana_url is None:
        write_plan(actions, settings, out)
        return
    url = settings.grafana_url
    for warning in warnings(settings):
        log.warning("grafana_push_warning", message=warning)
    log.info("grafana_push_start", grafana=redact_url(url), actions=len(actions))
    grafana = GrafanaHttp.connect(url, settings.token, settings.timeout_s)
    for action in actions:
        with explained(url, f"{action.kind} {action.uid}"):
            outcome = APPLY[action.kind](action, grafana)
        log.info("grafana_upserted", kind=action.kind, uid=action.uid, outcome=outcome)
        out.write(f"{outcome:<9} {describe(action)}\n")
    log.info("grafana_push_done", grafana=redact_url(url), actions=len(actions))


# ---------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="Grafana base URL [ENVNET_GRAFANA_URL]")
    parser.add_argument(
        "--token",
        help="Grafana service account token [ENVNET_GRAFANA_TOKEN; prefer the variable: "
        "options are visible in the process list]",
    )
    parser.add_argument("--influx-url", help="InfluxDB URL as Grafana sees it [ENVNET_INFLUX_URL]")
    parser.add_argument("--influx-db", help="database or DBRP-mapped bucket [ENVNET_INFLUX_DB]")
    parser.add_argument("--influx-token", help="InfluxDB 2.x/3.x token [ENVNET_INFLUX_TOKEN]")
    parser.add_argument(
        "--prometheus-url",
        help="also push the optional aggregator-health dashboard and its Prometheus data "
        "source [ENVNET_PROMETHEUS_URL]",
    )
    parser.add_argument(
        "--alertmanager-url",
        help="also push the Alertmanager data source, for Grafana's Alerting pages; the first "
        "of a comma-separated list [ENVNET_ALERTMANAGER_URL]",
    )
    parser.add_argument("--folder-uid", default=DEFAULT_FOLDER_UID)
    parser.add_argument("--folder-title", default=DEFAULT_FOLDER_TITLE)
    parser.add_argument("--assets", help=f"asset directory (default {DEFAULT_ASSETS})")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, send nothing")


def run(args: argparse.Namespace) -> int:
    try:
        push(settings_from(args, os.environ), sys.stdout)
    except PushError as exc:
        log.error("grafana_push_failed", reason=str(exc))
        sys.stderr.write(f"envnet grafana push: {exc}\n")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="envnet grafana push",
        description="Upsert envnet's data sources, dashboards and alert rules into Grafana.",
    )
    add_arguments(parser)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())

"""`envnet fleet enrol|list|retire`: add a node to the central site, list them, take one out.

enrol NODE writes three things, each validated before it replaces anything:
- the broker login: a random password hashed with `mosquitto_passwd -U` from a private
  temporary file (never on a command line, never logged) into the nodes' password file, and
  the node's block in the ACL;
- the inventory entry in fleet.toml: the new table is appended to the file's text (other
  nodes and comments stay as they are), the result is loaded with aggregator.fleet.load_fleet,
  and only then renamed over the old file (a running aggregator reloads it: hot reload);
- the node.toml the technician copies to the Pi (deploy/pi/node.toml with the node id, the
  broker URL with the credentials, and the CA file), mode 0600.
The password is printed once, in the [mqtt] lines on standard output. Reload the broker
afterwards (systemctl reload mosquitto) so that it re-reads the password file and the ACL.

retire NODE removes the login, the ACL block and the inventory entry; the aggregator resolves
the node's open alerts when it reloads the inventory. Bad input exits 2 with a message.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import msgspec

from aggregator.fleet import Fleet, load_fleet
from schemas.messages import ID_REGEX
from schemas.runtime.configfile import ConfigError
from schemas.runtime.toml_text import value as toml_value

EXIT_BAD_INPUT: Final = 2
REPO_TEMPLATE: Final = Path(__file__).resolve().parents[2] / "deploy" / "pi" / "node.toml"
INSTALLED_TEMPLATE: Final = Path("/etc/envnet/node-template.toml")
DEFAULTS: Final = {
    "fleet": ("ENVNET_FLEET", "/etc/envnet/fleet.toml"),
    "passwd": ("ENVNET_MOSQUITTO_PASSWD", "/etc/mosquitto/envnet.passwd"),
    "acl": ("ENVNET_MOSQUITTO_ACL", "/etc/mosquitto/envnet.acl"),
    "broker": ("ENVNET_BROKER", "broker.example:8883"),
    "ca_file": ("ENVNET_NODE_CA_FILE", "/etc/envnet/ca.crt"),
}
# --zone per --kind: the inventory field it sets, and the values the standards know
# (aggregator/fleet.py: GB 3095 §4.1, GB 3096 §4, GB 14554 Table 1, GB 3838 classes).
ZONES: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "air": ("air_zone", ("1", "2")),
    "noise": ("noise_zone", ("0", "1", "2", "3", "4a", "4b")),
    "odour": ("odour_grade", ("I", "II-new", "II-existing", "III-new", "III-existing")),
    "water": ("water_target", ("1", "2", "3", "4", "5")),
}
INTEGER_FIELDS: Final = {"air_zone", "water_target"}


class EnrolError(Exception):
    """Bad input or a state that forbids the change: exit 2, nothing changed."""


def _default(key: str) -> str:
    env, fallback = DEFAULTS[key]
    return os.environ.get(env) or fallback


def _add_paths(parser: argparse.ArgumentParser, *keys: str) -> None:
    helps = {
        "fleet": "the inventory (ENVNET_FLEET)",
        "passwd": "the nodes' mosquitto password file (ENVNET_MOSQUITTO_PASSWD)",
        "acl": "the mosquitto ACL file (ENVNET_MOSQUITTO_ACL)",
    }
    for key in keys:
        parser.add_argument(f"--{key}", type=Path, default=None, help=helps[key])


def add_enrol_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("node", help="the node id (lower case letters, digits, - and _)")
    parser.add_argument(
        "--kind",
        action="append",
        required=True,
        choices=sorted(ZONES),
        help="what the node measures; repeat, with one --zone each",
    )
    parser.add_argument(
        "--zone",
        action="append",
        required=True,
        help="per --kind: air 1|2, noise 0|1|2|3|4a|4b, odour grade, water class 1-5",
    )
    parser.add_argument("--water-body", choices=("river", "lake"), help="for --kind water")
    parser.add_argument("--lat", type=float, required=True)
    parser.add_argument("--lon", type=float, required=True)
    parser.add_argument("--group", help="district or group (the map and alert labels)")
    parser.add_argument("--site-type", help="e.g. roadside, background, industrial")
    parser.add_argument("--site", help="the site's name (default: the node id)")
    _add_paths(parser, "fleet", "passwd", "acl")
    parser.add_argument("--broker", default=None, help="HOST[:PORT] the node connects to")
    parser.add_argument("--ca-file", default=None, help="the CA file's path on the Pi")
    parser.add_argument("--template", type=Path, default=None, help="node.toml template")
    parser.add_argument("--out", type=Path, default=None, help="node.toml to write")


def add_list_arguments(parser: argparse.ArgumentParser) -> None:
    _add_paths(parser, "fleet")
    parser.add_argument("--json", action="store_true", help="one JSON object per node")


def add_retire_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("node")
    _add_paths(parser, "fleet", "passwd", "acl")


def _path(args: argparse.Namespace, key: str) -> Path:
    given: Path | None = getattr(args, key)
    return given if given is not None else Path(_default(key))


# -- the inventory's text -------------------------------------------------------------------


def inventory_fields(
    kinds: Sequence[str], zones: Sequence[str], water_body: str | None
) -> dict[str, object]:
    """The inventory fields that --kind/--zone pairs set; EnrolError for bad input."""
    if len(kinds) != len(zones):
        raise EnrolError(f"{len(kinds)} --kind but {len(zones)} --zone: give one zone per kind")
    fields: dict[str, object] = {}
    for kind, zone in zip(kinds, zones, strict=True):
        name, allowed = ZONES[kind]
        if zone not in allowed:
            raise EnrolError(f"--kind {kind}: --zone {zone!r} is not one of {', '.join(allowed)}")
        fields[name] = int(zone) if name in INTEGER_FIELDS else zone
    if "water_target" in fields:
        if water_body is None:
            raise EnrolError("--kind water needs --water-body river|lake (GB 3838 TP limits)")
        fields["water_body"] = water_body
    elif water_body is not None:
        raise EnrolError("--water-body is for --kind water")
    return fields


def node_table(node: str, site: str, lat: float, lon: float, fields: dict[str, object]) -> str:
    lines = [f"[nodes.{node}]", f"site = {toml_value(site)}"]
    lines.append(f"location = {{ lat = {lat!r}, lon = {lon!r} }}")
    lines.extend(f"{key} = {toml_value(value)}" for key, value in fields.items())
    return "\n".join(lines) + "\n"


_HEADER = re.compile(r"^\s*\[")


def without_node(text: str, node: str) -> str | None:
    """The inventory's text without NODE's tables ([nodes.NODE] and [nodes.NODE.*]), or None
    if it has none in that form. Comments directly above the table go with it."""
    lines = text.splitlines(keepends=True)
    own = re.compile(rf"^\s*\[\s*nodes\.{re.escape(node)}\s*(\]|\.)")
    out: list[str] = []
    inside = found = False
    for line in lines:
        if _HEADER.match(line):
            inside = bool(own.match(line))
            if inside:
                found = True
                while out and (out[-1].lstrip().startswith("#") or not out[-1].strip()):
                    out.pop()
                if out:
                    out.append("\n")
        if not inside:
            out.append(line)
    if not found:
        return None
    text = "".join(out).rstrip("\n")
    return text + "\n" if text else ""


def replace_validated(path: Path, text: str) -> Fleet:
    """Write `text` next to `path`, load it as an inventory, then rename it over `path`."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            # Same mode and owner (root:envnet 0640): the aggregator must still read it.
            shutil.copymode(path, tmp)
            st = path.stat()
            if (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
                os.chown(tmp, st.st_uid, st.st_gid)
        fleet = load_fleet(tmp)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return fleet


# -- the broker's files ---------------------------------------------------------------------


def acl_block(node: str) -> str:
    base = f"envnet/v1/nodes/{node}"
    return (
        f"\n# node {node} (envnet fleet enrol)\nuser {node}\n"
        f"topic write {base}/readings\ntopic write {base}/status\n"
        f"topic read {base}/ack\ntopic read {base}/refusal\n"
    )


def without_acl_block(text: str, node: str) -> str:
    return text.replace(acl_block(node), "")


def hashed_entry(node: str, password: str) -> str:
    """`node:hash` from mosquitto_passwd -U, run on a private temporary file."""
    exe = shutil.which("mosquitto_passwd")
    if exe is None:
        raise EnrolError("mosquitto_passwd not found (Debian package mosquitto)")
    with tempfile.TemporaryDirectory() as work:
        entry = Path(work) / "entry"
        entry.touch(mode=0o600)
        entry.write_text(f"{node}:{password}\n")
        # The password is in the file, never on the command line (ps would show it).
        subprocess.run([exe, "-U", str(entry)], check=True, capture_output=True)  # noqa: S603
        return entry.read_text().strip()


def _rewrite(path: Path, text: str) -> None:
    """In place, so the file keeps its owner and mode (Debian: root:mosquitto 0640)."""
    if path.exists():
        with path.open("r+", encoding="utf-8") as handle:
            handle.write(text)
            handle.truncate()
    else:
        path.touch(mode=0o640)
        path.write_text(text, encoding="utf-8")


def _users(text: str) -> list[str]:
    return [line.partition(":")[0] for line in text.splitlines() if ":" in line]


# -- node.toml ------------------------------------------------------------------------------


def node_toml(template: str, node: str, url: str, ca_file: str) -> str:
    text, ids = re.subn(r'(?m)^id = "[^"]*"', f"id = {toml_value(node)}", template, count=1)
    text, urls = re.subn(r'(?m)^url = "[^"]*"', f"url = {toml_value(url)}", text, count=1)
    text = re.sub(r'(?m)^ca_file = "[^"]*"', f"ca_file = {toml_value(ca_file)}", text, count=1)
    if not (ids and urls):
        raise EnrolError("the node.toml template has no [node] id or [mqtt] url line")
    return text


def _template(args: argparse.Namespace) -> str:
    given = args.template or os.environ.get("ENVNET_NODE_TEMPLATE")
    for candidate in (Path(given),) if given else (REPO_TEMPLATE, INSTALLED_TEMPLATE):
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    raise EnrolError("no node.toml template found: pass --template deploy/pi/node.toml")


# -- the commands ---------------------------------------------------------------------------


def _check_node(node: str) -> None:
    if not ID_REGEX.match(node):
        raise EnrolError(f"{node!r} is not a node id (lower case letters, digits, - and _)")
    if node.startswith("envnet-"):
        raise EnrolError("node ids starting with 'envnet-' are reserved for envnet's services")


def _enrol(args: argparse.Namespace) -> int:
    node = args.node
    _check_node(node)
    if not (-90 <= args.lat <= 90 and -180 <= args.lon <= 180):
        raise EnrolError(f"--lat {args.lat} --lon {args.lon}: not a position on Earth")
    fields = inventory_fields(args.kind, args.zone, args.water_body)
    for key, value in (("group", args.group), ("site_type", args.site_type)):
        if value is not None:
            fields[key] = value
    fleet_path, passwd, acl = _path(args, "fleet"), _path(args, "passwd"), _path(args, "acl")
    text = fleet_path.read_text(encoding="utf-8") if fleet_path.exists() else ""
    current = load_fleet(fleet_path) if fleet_path.exists() else Fleet({})
    if node in current:
        raise EnrolError(f"{node} is already in {fleet_path}; retire it first")
    users = _users(passwd.read_text()) if passwd.exists() else []
    if node in users:
        raise EnrolError(f"{node} already has a login in {passwd}; retire it first")
    template = _template(args)
    out: Path = args.out or Path(f"{node}.node.toml")
    password = secrets.token_hex(24)  # hex: goes into the mqtts:// URL without escaping
    broker = args.broker or _default("broker")
    url = f"mqtts://{node}:{password}@{broker if ':' in broker else broker + ':8883'}"
    config = node_toml(template, node, url, args.ca_file or _default("ca_file"))
    table = node_table(node, args.site or node, args.lat, args.lon, fields)
    separator = "\n" if text.endswith("\n") else ("\n\n" if text else "")
    entry = hashed_entry(node, password)  # before any file changes: it may fail
    try:
        replace_validated(fleet_path, text + separator + table)
    except ConfigError as exc:
        raise EnrolError(f"the new inventory does not load: {exc}") from None
    old = passwd.read_text() if passwd.exists() else ""
    _rewrite(passwd, old + ("" if not old or old.endswith("\n") else "\n") + entry + "\n")
    acl_text = acl.read_text() if acl.exists() else ""
    if acl_block(node) not in acl_text:
        _rewrite(acl, acl_text + acl_block(node))
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(config)
    sys.stderr.write(
        f"envnet fleet: {node} enrolled: {fleet_path}, {passwd}, {acl}; its node.toml: {out} "
        "(copy it to the Pi as /etc/envnet/node.toml, root:envnet 0640); "
        "reload the broker: systemctl reload mosquitto\n"
    )
    # The only time the password is shown.
    sys.stdout.write(f'[mqtt]\nurl = "{url}"\n')
    return 0


def _retire(args: argparse.Namespace) -> int:
    node = args.node
    _check_node(node)
    fleet_path, passwd, acl = _path(args, "fleet"), _path(args, "passwd"), _path(args, "acl")
    if node not in load_fleet(fleet_path):
        raise EnrolError(f"{node} is not in {fleet_path}")
    remaining = without_node(fleet_path.read_text(encoding="utf-8"), node)
    if remaining is None:
        raise EnrolError(f"{fleet_path}: no [nodes.{node}] table to remove; edit it by hand")
    try:
        replace_validated(fleet_path, remaining)
    except ConfigError as exc:
        raise EnrolError(f"the inventory without {node} does not load: {exc}") from None
    if passwd.exists():
        kept = [ln for ln in passwd.read_text().splitlines() if ln.partition(":")[0] != node]
        _rewrite(passwd, "".join(f"{line}\n" for line in kept))
    if acl.exists():
        _rewrite(acl, without_acl_block(acl.read_text(), node))
    sys.stderr.write(
        f"envnet fleet: {node} retired from {fleet_path}, {passwd}, {acl}; "
        "reload the broker: systemctl reload mosquitto\n"
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    fleet = load_fleet(_path(args, "fleet"))
    for info in sorted(fleet, key=lambda i: i.node):
        kinds = [kind for kind, (name, _) in ZONES.items() if getattr(info, name) is not None]
        if args.json:
            sys.stdout.write(msgspec.json.encode(info).decode() + "\n")
            continue
        where = f"{info.location.lat},{info.location.lon}" if info.location else "-"
        sys.stdout.write(
            f"{info.node:<24} {'+'.join(kinds) or '-':<14} {info.group or '-':<12} "
            f"{where:<20} {info.site}\n"
        )
    return 0


def _guarded(action: str, args: argparse.Namespace) -> int:
    runs = {"enrol": _enrol, "retire": _retire, "list": _list}
    try:
        return runs[action](args)
    except (EnrolError, OSError, UnicodeDecodeError) as exc:
        sys.stderr.write(f"envnet fleet {action}: {exc}\n")
        return EXIT_BAD_INPUT
    except subprocess.CalledProcessError as exc:
        sys.stderr.write(f"envnet fleet {action}: mosquitto_passwd failed: {exc.stderr!r}\n")
        return 1


def run_enrol(args: argparse.Namespace) -> int:
    return _guarded("enrol", args)


def run_retire(args: argparse.Namespace) -> int:
    return _guarded("retire", args)


def run_list(args: argparse.Namespace) -> int:
    return _guarded("list", args)

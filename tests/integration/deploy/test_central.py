"""The central site's deployment: the aggregator's hardened systemd unit, and
deploy/central/install.sh run against a temporary root file system (a dry run, then for real,
twice), then `envnet fleet enrol` against what it installed."""

from __future__ import annotations

import hashlib
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Final

import pytest

from aggregator.config import load_aggregator_config
from aggregator.fleet import load_fleet
from envnet.cli import main as envnet
from tests.support.tls_broker import make_pki
from tests.unit.deploy.test_pi import parse_unit

REPO: Final = Path(__file__).resolve().parents[3]
INSTALL: Final = REPO / "deploy" / "central" / "install.sh"
UNIT: Final = REPO / "deploy" / "systemd" / "envnet-aggregator.service"
MOSQUITTO_GID: Final = 105


def test_the_unit_is_hardened_and_reloads_the_inventory() -> None:
    service = parse_unit(UNIT.read_text())["Service"]

    def one(key: str) -> str:
        assert len(service.get(key, [])) == 1, f"{key}: {service.get(key)}"
        return service[key][0]

    assert one("User") == "envnet" and one("Group") == "envnet"
    assert one("ExecStart").startswith("/opt/envnet/venv/bin/envnet aggregator --config ")
    assert one("ExecReload") == "/bin/kill -HUP $MAINPID"  # SIGHUP: reload fleet.toml
    assert one("Restart") == "always" and one("RestartPreventExitStatus") == "2"
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices",
                "ProtectKernelTunables", "ProtectKernelModules", "ProtectControlGroups",
                "RestrictSUIDSGID", "LockPersonality", "MemoryDenyWriteExecute"):  # fmt: skip
        assert one(key) == "yes", key
    assert one("ProtectSystem") == "strict"
    assert one("ReadWritePaths") == "/var/lib/envnet" == "/var/lib/" + one("StateDirectory")
    assert one("CapabilityBoundingSet") == ""
    assert one("EnvironmentFile") == "-/etc/envnet/aggregator.env"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verifies_the_unit_and_rates_it_ok(tmp_path: Path) -> None:
    copy = tmp_path / UNIT.name
    text = UNIT.read_text()
    copy.write_text(text.replace("ExecStart=/opt/envnet/venv/bin/envnet ", "ExecStart=/bin/true "))
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(copy)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stderr
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(copy)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d)", security.stdout)
    assert match, security.stdout[-500:] + security.stderr
    assert float(match.group(1)) <= 2.0, security.stdout  # systemd rates <= 2 as "OK"


def test_the_installer_parses_and_passes_shellcheck() -> None:
    assert subprocess.run(["bash", "-n", str(INSTALL)], check=False).returncode == 0
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed here (Debian package shellcheck); bash -n passed")
    done = subprocess.run(["shellcheck", str(INSTALL)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout


# -- install.sh against a temporary root ---------------------------------------------------


def debian_root(tmp_path: Path) -> Path:
    """A Debian root as the installer sees it after the packages: users and groups."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc" / "group").write_text(f"root:x:0:\nmosquitto:x:{MOSQUITTO_GID}:\n")
    (root / "etc" / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (root / "etc" / "gshadow").write_text("root:*::\nmosquitto:!::\n")
    return root


def install(root: Path, *args: str) -> list[str]:
    done = subprocess.run(["bash", str(INSTALL), "--root", str(root), *args],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def snapshot(root: Path) -> dict[str, str]:
    def one(p: Path) -> str:
        if p.is_symlink():
            return f"-> {p.readlink()}"
        st = p.stat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest()
        return f"{digest} {stat.S_IMODE(st.st_mode):o} {st.st_uid}:{st.st_gid}"

    return {str(p.relative_to(root)): one(p) for p in sorted(root.rglob("*"))
            if p.is_file() or p.is_symlink()}  # fmt: skip


def mode_owner(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def test_a_dry_run_changes_nothing_and_two_runs_install_once(tmp_path: Path) -> None:
    root = debian_root(tmp_path)
    before = snapshot(root)
    planned = install(root, "--dry-run")
    assert snapshot(root) == before
    assert planned[0] == f"envnet central install: root {root}, dry run"
    assert "would: create system user envnet" in planned
    assert f"would: install {root}/etc/systemd/system/envnet-aggregator.service" in planned

    pki = make_pki(tmp_path / "pki")
    tls = tmp_path / "tls"
    tls.mkdir()
    shutil.copy(pki.ca_cert, tls / "ca.crt")
    shutil.copy(pki.server_cert, tls / "server.crt")
    shutil.copy(pki.server_key, tls / "server.key")
    routes = tmp_path / "alertmanager.yml"
    routes.write_text("route:\n  receiver: envnet-null\nreceivers:\n  - name: envnet-null\n")
    debian_example = root / "etc" / "prometheus" / "alertmanager.yml"
    debian_example.parent.mkdir(parents=True)
    debian_example.write_text("# Debian's example\n")
    am = ["--alertmanager-config", str(routes)]
    done = install(root, "--tls-dir", str(tls), "--broker-host", "broker.city.example", *am)
    assert [line for line in done if line.startswith("would:")] == []

    # The user, as useradd wrote it into the root's files.
    passwd = (root / "etc" / "passwd").read_text()
    assert re.search(r"^envnet:[^:]*:\d+:\d+::/var/lib/envnet:/usr/sbin/nologin$", passwd, re.M)
    envnet_gid = int(re.findall(r"^envnet:x:(\d+):", (root / "etc/group").read_text(), re.M)[0])

    etc, mosq = root / "etc" / "envnet", root / "etc" / "mosquitto"
    assert mode_owner(etc) == (0o750, 0, envnet_gid)
    # The broker: the shipped settings and ACL, the password files for mosquitto to read.
    shipped = REPO / "deploy" / "mosquitto"
    for name in ("envnet.conf", "envnet-tls.conf"):
        assert (mosq / "conf.d" / name).read_text() == (shipped / name).read_text()
    assert (mosq / "envnet.acl").read_text() == (shipped / "envnet.acl").read_text()
    assert mode_owner(mosq / "envnet.passwd") == (0o640, 0, MOSQUITTO_GID)
    assert (mosq / "envnet.passwd").read_text() == ""
    assert mode_owner(mosq / "envnet-services.passwd") == (0o640, 0, MOSQUITTO_GID)
    (login,) = (mosq / "envnet-services.passwd").read_text().splitlines()
    assert login.startswith("envnet-aggregator:$7$")
    assert mode_owner(mosq / "certs" / "server.key") == (0o640, 0, MOSQUITTO_GID)
    assert (mosq / "certs" / "envnet-ca.crt").read_bytes() == pki.ca_cert.read_bytes()
    # The aggregator's secrets: only in aggregator.env, root:envnet 0640.
    env = (etc / "aggregator.env").read_text()
    assert mode_owner(etc / "aggregator.env") == (0o640, 0, envnet_gid)
    (password,) = re.findall(
        r"^ENVNET_MQTT_URL=mqtts://envnet-aggregator:([0-9a-f]{48})@broker.city.example:8884$",
        env,
        re.M,
    )
    assert password not in "\n".join(done) and password not in login
    assert "ENVNET_FLEET=/etc/envnet/fleet.toml" in env.splitlines()
    # agg.toml, the empty inventory and the node template.
    assert mode_owner(etc / "agg.toml") == (0o640, 0, envnet_gid)
    agg = load_aggregator_config(etc / "agg.toml", {})
    assert agg.mqtt.ca_file == "/etc/mosquitto/certs/envnet-ca.crt"
    assert mode_owner(etc / "fleet.toml") == (0o640, 0, envnet_gid)
    assert len(load_fleet(etc / "fleet.toml")) == 0
    template = REPO / "deploy" / "pi" / "node.toml"
    assert (etc / "node-template.toml").read_text() == template.read_text()
    # Alertmanager's routes, installed once; Debian's example kept beside them.
    assert debian_example.read_text() == routes.read_text()
    assert (debian_example.parent / "alertmanager.yml.debian").read_text() == "# Debian's example\n"
    # The unit, enabled; influxd and alertmanager enabled.
    units = root / "etc" / "systemd" / "system"
    assert (units / "envnet-aggregator.service").read_text() == UNIT.read_text()
    wants = units / "multi-user.target.wants"
    assert {p.name: str(p.readlink()) for p in wants.iterdir()} == {
        "envnet-aggregator.service": "/etc/systemd/system/envnet-aggregator.service",
        "influxdb.service": "/lib/systemd/system/influxdb.service",
        "prometheus-alertmanager.service": "/lib/systemd/system/prometheus-alertmanager.service",
    }

    # Again, after the operator edited the routes: nothing changes, and it says so.
    debian_example.write_text(routes.read_text() + "# the operator's edit\n")
    before = snapshot(root)
    again = install(root, "--tls-dir", str(tls), *am)
    assert snapshot(root) == before
    assert [line for line in again if line.startswith(("done:", "would:"))] == []


def test_enrolment_works_against_what_the_installer_laid_out(tmp_path: Path) -> None:
    root = debian_root(tmp_path)
    install(root)
    etc, mosq = root / "etc" / "envnet", root / "etc" / "mosquitto"
    out = tmp_path / "node.toml"
    code = envnet(["fleet", "enrol", "sz-gusu-1", "--kind", "air", "--zone", "2",
                   "--lat", "31.3", "--lon", "120.6", "--fleet", str(etc / "fleet.toml"),
                   "--passwd", str(mosq / "envnet.passwd"), "--acl", str(mosq / "envnet.acl"),
                   "--template", str(etc / "node-template.toml"), "--out", str(out)])  # fmt: skip
    assert code == 0
    assert [i.node for i in load_fleet(etc / "fleet.toml")] == ["sz-gusu-1"]
    # Replaced atomically, keeping its mode; the password file rewritten in place.
    envnet_gid = int(re.findall(r"^envnet:x:(\d+):", (root / "etc/group").read_text(), re.M)[0])
    assert mode_owner(etc / "fleet.toml") == (0o640, 0, envnet_gid)  # the aggregator reads it
    assert mode_owner(mosq / "envnet.passwd") == (0o640, 0, MOSQUITTO_GID)
    assert (mosq / "envnet.passwd").read_text().startswith("sz-gusu-1:$7$")

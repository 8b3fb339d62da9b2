"""The Raspberry Pi deployment files as text: the hardened systemd unit, and what the installer
claims."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
PI = REPO / "deploy" / "pi"
UNIT = PI / "envnet-edge.service"
INSTALL = PI / "install.sh"


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """systemd's unit syntax as far as this unit uses it: sections, repeatable keys."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_the_unit_is_a_hardened_notify_service_with_a_watchdog() -> None:
    service = parse_unit(UNIT.read_text())["Service"]

    def one(key: str) -> str:
        assert len(service.get(key, [])) == 1, f"{key}: {service.get(key)}"
        return service[key][0]

    assert one("Type") == "notify"
    assert one("NotifyAccess") == "main"
    assert 10 <= int(one("WatchdogSec")) <= 300
    assert one("Restart") == "always"
    assert one("User") == "envnet" and one("Group") == "envnet"
    assert set(one("SupplementaryGroups").split()) == {"dialout", "i2c"}
    assert one("ExecStart").startswith("/opt/envnet/venv/bin/envnet edge --config ")
    for key in (
        "NoNewPrivileges",
        "ProtectHome",
        "PrivateTmp",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectControlGroups",
        "RestrictSUIDSGID",
        "LockPersonality",
        "MemoryDenyWriteExecute",
    ):
        assert one(key) == "yes", key
    assert one("ProtectSystem") == "strict"
    # The journal is the only place it writes.
    assert one("StateDirectory") == "envnet"
    assert one("ReadWritePaths") == "/var/lib/envnet"
    assert one("WorkingDirectory") == "/var/lib/envnet"
    assert one("DevicePolicy") == "closed"
    allowed = {entry.split()[0] for entry in service["DeviceAllow"]}
    assert allowed == {"char-ttyAMA", "char-ttyS", "char-ttyUSB", "char-ttyACM", "char-i2c"}
    assert one("CapabilityBoundingSet") == ""
    assert "@system-service" in service["SystemCallFilter"]
    assert parse_unit(UNIT.read_text())["Install"]["WantedBy"] == ["multi-user.target"]


def test_the_installer_does_not_claim_bullseye() -> None:
    text = INSTALL.read_text()
    assert "bullseye works" not in text
    assert "Python" in text.splitlines()[1] + text.splitlines()[2]

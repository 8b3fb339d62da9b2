"""The Raspberry Pi deployment: systemd-analyze and shellcheck on the unit and scripts, and
deploy/pi/install.sh run against a temporary root file system (a dry run, then for real, twice)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unit.deploy.test_pi import INSTALL, PI, REPO, UNIT

SCRIPTS = [INSTALL, REPO / "deploy" / "mosquitto" / "add-node.sh"]


def verifiable_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at a binary that exists here: systemd-analyze
    refuses a unit whose command is missing, and /opt/envnet is only on a Pi."""
    text = UNIT.read_text()
    assert "ExecStart=/opt/envnet/venv/bin/envnet " in text
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace("ExecStart=/opt/envnet/venv/bin/envnet ", "ExecStart=/bin/true "))
    return copy


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verifies_the_unit_and_rates_it_ok(tmp_path: Path) -> None:
    copy = verifiable_copy(tmp_path)
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(copy)],
        capture_output=True,
        text=True,
        check=False,
    )
    # verify exits 0 even for lines it ignores ("Failed to parse ..., ignoring"): any output
    # at all is a finding.
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


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse_and_pass_shellcheck(script: Path) -> None:
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed here (Debian package shellcheck); bash -n passed")
    done = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout


# -- install.sh against a temporary root ---------------------------------------------------

CONFIG_TXT = """\
# For more options and information see http://rptl.io/configtxt
#dtparam=i2c_arm=on
#dtparam=spi=on
dtparam=audio=on
enable_uart=0

[cm4]
otg_mode=1

[pi4]
arm_boost=1
"""
CMDLINE = (
    "console=serial0,115200 console=tty1 root=PARTUUID=3d2b7e05-02 rootfstype=ext4 "
    "fsck.repair=yes rootwait\n"
)


def pi_root(tmp_path: Path, boot: str = "boot/firmware", python: str = "python3.11") -> Path:
    """A Raspberry Pi OS root as the installer sees it: boot files, users, groups."""
    root = tmp_path / "root"
    (root / boot).mkdir(parents=True)
    (root / boot / "config.txt").write_text(CONFIG_TXT)
    (root / boot / "cmdline.txt").write_text(CMDLINE)
    (root / "etc").mkdir()
    (root / "etc" / "modules").write_text("# /etc/modules\n")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc" / "group").write_text("root:x:0:\ndialout:x:20:\ni2c:x:998:\n")
    (root / "etc" / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (root / "etc" / "gshadow").write_text("root:*::\ndialout:!::\ni2c:!::\n")
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "python3").symlink_to(python)  # bookworm's
    return root


def install(root: Path, *args: str) -> list[str]:
    done = subprocess.run(
        ["bash", str(INSTALL), "--root", str(root), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): (
            f"-> {p.readlink()}" if p.is_symlink() else hashlib.sha256(p.read_bytes()).hexdigest()
        )
        for p in sorted(root.rglob("*"))
        if p.is_file() or p.is_symlink()
    }


def test_a_dry_run_lists_every_change_and_makes_none(tmp_path: Path) -> None:
    root = pi_root(tmp_path)
    (root / "etc" / "envnet").mkdir()
    (root / "etc" / "envnet" / "node.toml").write_text('[node]\nid = "mine"\n')
    before = snapshot(root)
    out = install(root, "--dry-run")
    assert snapshot(root) == before
    boot = f"{root}/boot/firmware"
    assert out == [
        f"envnet edge install: root {root}, dry run",
        "ok: Python 3.11 (envnet needs >= 3.11)",
        f"would: {boot}/config.txt: enable_uart=0 -> enable_uart=1",
        f"would: {boot}/config.txt: add dtparam=i2c_arm=on",
        f"would: {boot}/cmdline.txt: remove the serial console",
        f"would: {root}/etc/modules: add i2c-dev",
        "ok: group i2c exists",
        "would: create system user envnet",
        "would: add envnet to dialout",
        "would: add envnet to i2c",
        "skip: venv under --root (run this installer on the Pi to create /opt/envnet/venv)",
        f"ok: {root}/etc/envnet exists",
        f"ok: {root}/etc/envnet/node.toml kept (not overwritten)",
        f"would: install {root}/etc/systemd/system/envnet-edge.service",
        "would: enable envnet-edge.service",
        "note: UART/I2C settings changed: reboot; envnet-edge.service starts at boot",
    ]


def test_a_dry_run_on_this_host_plans_the_venv_from_this_tree() -> None:
    done = subprocess.run(
        ["bash", str(INSTALL), "--dry-run", "--steps", "venv"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"would: pip install {REPO}[edge] into /opt/envnet/venv" in done.stdout


needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("useradd") is None,
    reason="writes files owned by root and runs useradd --prefix: needs root",
)


@needs_root
@pytest.mark.parametrize("boot", ["boot/firmware", "boot"], ids=["bookworm", "older-boot-dir"])
def test_install_into_a_root_then_again_changes_nothing(tmp_path: Path, boot: str) -> None:
    root = pi_root(tmp_path, boot)
    first = install(root, "--steps", "boot,user,config,service")
    assert not any(line.startswith("would:") for line in first)

    config = (root / boot / "config.txt").read_text()
    assert "enable_uart=1\n" in config and "enable_uart=0" not in config
    # Appended under [all], not inside the [pi4] section that ends the file.
    assert config.endswith("[pi4]\narm_boost=1\n\n# envnet (deploy/pi/install.sh)\n[all]\n"
                           "dtparam=i2c_arm=on\n")  # fmt: skip
    assert (root / boot / "cmdline.txt").read_text() == (
        "console=tty1 root=PARTUUID=3d2b7e05-02 rootfstype=ext4 fsck.repair=yes rootwait\n"
    )
    assert "i2c-dev\n" in (root / "etc" / "modules").read_text()
    passwd = (root / "etc" / "passwd").read_text()
    assert re.search(r"^envnet:[^:]*:\d+:\d+::/var/lib/envnet:/usr/sbin/nologin$", passwd, re.M)
    group = (root / "etc" / "group").read_text()
    assert re.search(r"^dialout:x:20:envnet$", group, re.M)
    assert re.search(r"^i2c:x:998:envnet$", group, re.M)
    node = root / "etc" / "envnet" / "node.toml"
    assert node.read_text() == (PI / "node.toml").read_text()
    assert node.stat().st_mode & 0o777 == 0o640  # it holds the broker password
    envnet_gid = int(re.findall(r"^envnet:x:(\d+):", group, re.M)[0])
    assert node.stat().st_gid == envnet_gid and node.stat().st_uid == 0
    unit = root / "etc" / "systemd" / "system" / "envnet-edge.service"
    assert unit.read_text() == UNIT.read_text()
    wants = root / "etc/systemd/system/multi-user.target.wants/envnet-edge.service"
    assert str(wants.readlink()) == "/etc/systemd/system/envnet-edge.service"

    before = snapshot(root)
    again = install(root, "--steps", "boot,user,config,service")
    assert snapshot(root) == before
    changes = [line for line in again if line.startswith(("done:", "would:"))]
    assert changes == []
    assert "note: envnet-edge.service not started now (--no-start, --root, or no systemd)" in again


@pytest.mark.parametrize("dry_run", [["--dry-run"], []], ids=["dry-run", "for-real"])
def test_a_root_with_python_3_9_is_refused_before_any_change(
    tmp_path: Path, dry_run: list[str]
) -> None:
    root = pi_root(tmp_path, "boot", python="python3.9")  # Raspberry Pi OS bullseye
    before = snapshot(root)
    done = subprocess.run(
        ["bash", str(INSTALL), "--root", str(root), "--steps", "boot,config", *dry_run],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "envnet needs Python >= 3.11" in done.stderr
    assert "has Python 3.9" in done.stderr and "bookworm" in done.stderr
    assert snapshot(root) == before
    assert not [line for line in done.stdout.splitlines() if line.startswith(("done:", "would:"))]


def test_a_root_whose_python_cannot_be_told_gets_a_note(tmp_path: Path) -> None:
    root = pi_root(tmp_path)
    (root / "usr" / "bin" / "python3").unlink()
    out = install(root, "--dry-run", "--steps", "boot")
    assert out[1] == f"note: cannot tell the Python of {root}/usr/bin/python3: envnet needs >= 3.11"

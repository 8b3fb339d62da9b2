"""systemd notifications from the edge agent: a real AF_UNIX datagram socket receives READY=1,
WATCHDOG=1 and STOPPING=1 from a real `envnet edge` process, and the pings stop while its loop
is wedged in a driver read."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.watchdog import (
    NoNotifier,
    Schedule,
    SdNotifier,
    SystemdWatchdog,
    notify_address,
    systemd_watchdog,
    watchdog_timeout_s,
)
from simulators.local_stack import Mosquitto
from tests.harness import wait_for

# -- the pieces ---------------------------------------------------------------------------


def test_notify_address_forms() -> None:
    assert notify_address("/run/systemd/notify") == "/run/systemd/notify"
    assert notify_address("@/org/freedesktop/systemd1/notify") == (
        "\0/org/freedesktop/systemd1/notify"
    )
    assert notify_address(None) is None
    assert notify_address("") is None
    assert notify_address("vsock:2:1234") is None


def test_watchdog_timeout_from_the_environment() -> None:
    assert watchdog_timeout_s({"WATCHDOG_USEC": "30000000"}, 42) == 30.0
    assert watchdog_timeout_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, 42) == 30.0
    assert watchdog_timeout_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"}, 42) is None
    assert watchdog_timeout_s({"WATCHDOG_USEC": "0"}, 42) is None
    assert watchdog_timeout_s({"WATCHDOG_USEC": "soon"}, 42) is None
    assert watchdog_timeout_s({}, 42) is None


@pytest.fixture
def receiver() -> Iterator[tuple[socket.socket, str]]:
    """A notify socket bound in the abstract namespace, as systemd's own is."""
    name = f"@envnet-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name[1:])
    try:
        yield sock, name
    finally:
        sock.close()


def receive(sock: socket.socket, timeout_s: float) -> str | None:
    sock.settimeout(timeout_s)
    try:
        return sock.recv(4096).decode()
    except TimeoutError:
        return None


def test_sd_notifier_reaches_a_path_socket_and_an_abstract_one(
    receiver: tuple[socket.socket, str],
) -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as directory:  # AF_UNIX paths: < 108 bytes
        path = str(Path(directory) / "notify")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as by_path:
            by_path.bind(path)
            assert SdNotifier(path).send("READY=1")
            assert receive(by_path, 5) == "READY=1"
    sock, name = receiver
    address = notify_address(name)
    assert address is not None
    assert SdNotifier(address).send("WATCHDOG=1")
    assert receive(sock, 5) == "WATCHDOG=1"
    assert not SdNotifier("\0envnet-nobody-listens").send("WATCHDOG=1")  # logged, not raised


class Recorder:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, state: str) -> bool:
        self.sent.append(state)
        return True


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_pings_at_half_the_timeout_only_while_the_sampler_keeps_its_schedule() -> None:
    notes, ticks = Recorder(), Ticks()
    until_due = [0.5]
    hook = SystemdWatchdog(
        notes, 10.0, lambda: until_due[0], Schedule(max_behind_s=10, max_ahead_s=11), ticks
    )
    hook.started()
    assert notes.sent == ["READY=1\nSTATUS=sampling"]
    hook.turn_done()
    ticks.now += 4.9
    hook.turn_done()
    assert notes.sent.count("WATCHDOG=1") == 1  # not again before half the timeout
    ticks.now += 0.1
    hook.turn_done()
    assert notes.sent.count("WATCHDOG=1") == 2
    # The wall clock stepped back an hour (NTP on a Pi without RTC): the loop turns, but the
    # sampler waits for a time an hour away. No pings, so systemd restarts the agent.
    until_due[0] = 3600.0
    for _ in range(100):
        ticks.now += 1.0
        hook.turn_done()
    assert notes.sent.count("WATCHDOG=1") == 2
    assert "STATUS=sampler ahead of schedule by 3600 s" in notes.sent
    until_due[0] = -30.0  # behind: not stepped for longer than the timeout
    hook.turn_done()
    assert notes.sent.count("WATCHDOG=1") == 2
    until_due[0] = 0.2
    hook.turn_done()
    assert notes.sent.count("WATCHDOG=1") == 3
    hook.stopping()
    assert notes.sent[-1] == "STOPPING=1"


def test_without_systemd_the_hook_sends_nothing() -> None:
    hook = systemd_watchdog({"WATCHDOG_USEC": "1000000"}, lambda: 0.0, 1.0)
    hook.started()
    hook.turn_done()
    assert hook.pings == 0
    assert isinstance(NoNotifier(), NoNotifier)
    assert not NoNotifier().send("READY=1")


# -- a real edge agent under a real notify socket ------------------------------------------


def node_toml(tmp_path: Path, mqtt_url: str, wedge: Path) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(f"""
[node]
id = "wd-node"
[mqtt]
url = "{mqtt_url}"
[sampling]
sample_interval_s = 0.2
report_interval_s = 1
[journal]
path = "{tmp_path / "journal.sqlite"}"
[[sensors]]
id = "pm"
driver = "wedge"
options = {{ wedge_file = "{wedge}" }}
""")
    return path


def expect(sock: socket.socket, wanted: str, timeout_s: float) -> float:
    """Wait for a datagram containing `wanted`; return when it came (monotonic)."""
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        message = receive(sock, left)
        if message is not None and wanted in message.split("\n"):
            return time.monotonic()
    raise AssertionError(f"no {wanted} within {timeout_s} s")


def drain(sock: socket.socket) -> list[str]:
    sock.setblocking(False)
    out: list[str] = []
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except BlockingIOError:
        return out
    finally:
        sock.setblocking(True)


def test_a_real_agent_notifies_ready_pings_and_stops_pinging_when_wedged(
    receiver: tuple[socket.socket, str], mosquitto: Mosquitto, tmp_path: Path
) -> None:
    sock, name = receiver
    wedge = tmp_path / "wedge"
    entered = tmp_path / "wedge.entered"
    env = {**os.environ, "NOTIFY_SOCKET": name, "WATCHDOG_USEC": "1000000"}
    config = node_toml(tmp_path, mosquitto.url, wedge)
    edge = subprocess.Popen(
        [sys.executable, "-m", "tests.wedge_edge", "edge", "--config", str(config)],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        expect(sock, "READY=1", 30)
        first = expect(sock, "WATCHDOG=1", 5)
        second = expect(sock, "WATCHDOG=1", 5)
        assert second - first >= 0.4  # half of WATCHDOG_USEC, not every turn

        wedge.touch()  # the next driver read blocks, and with it the agent's loop
        wait_for(entered.exists, 10, "the driver read to block")
        drain(sock)  # pings sent before the read blocked
        assert receive(sock, 2.0) is None, "pinged while wedged"  # 4 ping periods

        wedge.unlink()  # the read returns; the loop turns again
        expect(sock, "WATCHDOG=1", 5)

        edge.send_signal(signal.SIGTERM)
        expect(sock, "STOPPING=1", 10)
        assert edge.wait(timeout=20) == 0
    finally:
        wedge.unlink(missing_ok=True)
        edge.kill()
        edge.wait(timeout=10)

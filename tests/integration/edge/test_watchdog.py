"""systemd notifications from a real `envnet edge` process on a real mosquitto: READY=1,
WATCHDOG=1 and STOPPING=1 reach a real AF_UNIX socket, and the pings stop while its loop is
wedged in a driver read."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.local_stack import Mosquitto
from tests.support.harness import wait_for
from tests.unit.edge.test_watchdog import receive

# -- the pieces ---------------------------------------------------------------------------


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
        [sys.executable, "-m", "tests.support.wedge_edge", "edge", "--config", str(config)],
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

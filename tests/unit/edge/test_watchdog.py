"""systemd notifications from the edge agent: addresses, the timeout, a real AF_UNIX datagram
socket, and pings only while the sampler keeps its schedule. A real `envnet edge` process:
tests/integration/edge/test_watchdog.py."""

from __future__ import annotations

import socket
import tempfile
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

"""Start real mosquitto, influxd and victoria-metrics processes on free ports, with data in a
directory of our choosing. Used by `envnet demo` and by the integration-test fixtures.

Each service is a context manager that owns exactly one process and stops only that one.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar, Final, Self

from schemas.runtime.logs import get_logger
from simulators.alertmanager_ui import unpack_ui

log = get_logger("simulators.local_stack")

READY_TIMEOUT_S: Final = 30.0

# mosquitto settings that matter for envnet, shared with deploy/mosquitto/envnet.conf:
# - max_queued_messages: the default of 1000 silently drops QoS 1 messages for a subscriber
#   that falls behind or is briefly away ("Outgoing messages are being dropped").
# - max_inflight_messages: QoS 1 messages in flight per client; 20 by default throttles the
#   aggregator's intake on high-latency links.
# - persistence off: the edge journals are the durable store (a batch stays there until the
#   aggregator acks it), and mosquitto 2.0 rewrites its whole database on every autosave, which
#   stalled all delivery for 4-5 s every 30 s with a large backlog queued (bench/README.md).
MOSQUITTO_TUNING: Final = """\
persistence false
max_queued_messages 1000000
max_queued_bytes 2147483648
max_inflight_messages 1000
max_packet_size 2097152
"""


class ServiceError(RuntimeError):
    """A service binary is missing, or its process did not become ready."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_binary(name: str, *extra_dirs: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for directory in (*extra_dirs, "/usr/sbin", "/usr/bin"):
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    msg = f"{name} not found: run `make os-packages` (Debian packages mosquitto, influxdb)"
    raise ServiceError(msg)


def _wait(
    name: str, check: Callable[[], bool], process: subprocess.Popen[bytes], log_path: Path
) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
            raise ServiceError(f"{name} exited with {process.returncode}:\n{tail}")
        if check():
            return
        time.sleep(0.05)
    raise ServiceError(f"{name} not ready after {READY_TIMEOUT_S} s (log: {log_path})")


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.5) as response:  # noqa: S310 - loopback
            return bool(200 <= response.status < 300)
    except (urllib.error.URLError, OSError):
        return False


class _Process(ABC):
    """One child process in its own process group, stopped with SIGTERM then SIGKILL."""

    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self.directory = directory
        self.log_path = directory / f"{name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    def _spawn(self, argv: list[str]) -> subprocess.Popen[bytes]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv of a known binary
                argv, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self._process

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def stop(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL, for tests of crash behaviour."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @abstractmethod
    def start(self) -> None:
        """Start the process and return once it serves requests."""


class _Server(_Process):
    """A service listening on one loopback port: the given one, or a free one."""

    NAME: ClassVar[str]
    SCHEME: ClassVar[str] = "http"

    def __init__(self, directory: Path, port: int | None = None) -> None:
        super().__init__(self.NAME, directory)
        self.port = port or free_port()

    @property
    def url(self) -> str:
        return f"{self.SCHEME}://127.0.0.1:{self.port}"


class Mosquitto(_Server):
    NAME = "mosquitto"
    SCHEME = "mqtt"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "mosquitto.conf"
        # mosquitto reads this as root before dropping to its own user, and keeps no files
        # (no persistence; logs go to our pipe), so the directory's owner does not matter.
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "log_dest stdout\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            f"{MOSQUITTO_TUNING}",
            encoding="utf-8",
        )
        process = self._spawn([find_binary("mosquitto"), "-c", str(conf)])
        _wait("mosquitto", lambda: _port_open(self.port), process, self.log_path)
        log.info("service_started", service="mosquitto", port=self.port, pid=process.pid)


class Influxd(_Server):
    """InfluxDB 1.x (Debian's 1.6.7): the v1 HTTP API, /write and /query."""

    NAME = "influxd"

    def __init__(self, directory: Path, port: int | None = None) -> None:
        super().__init__(directory, port)
        self._rpc_port = free_port()

    def start(self) -> None:
        d = self.directory
        d.mkdir(parents=True, exist_ok=True)
        conf = d / "influxdb.conf"
        conf.write_text(
            "reporting-disabled = true\n"
            f'bind-address = "127.0.0.1:{self._rpc_port}"\n'
            f'[meta]\n  dir = "{d}/meta"\n  logging-enabled = false\n'
            f'[data]\n  dir = "{d}/data"\n  wal-dir = "{d}/wal"\n'
            "  query-log-enabled = false\n"
            "[monitor]\n  store-enabled = false\n"
            "[subscriber]\n  enabled = false\n"
            "[continuous_queries]\n  enabled = false\n"
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
            "  pprof-enabled = false\n  unix-socket-enabled = false\n"
            '[logging]\n  level = "warn"\n',
            encoding="utf-8",
        )
        process = self._spawn([find_binary("influxd"), "-config", str(conf)])
        _wait("influxd", lambda: _http_ok(f"{self.url}/ping"), process, self.log_path)
        log.info("service_started", service="influxd", port=self.port, pid=process.pid)

    def query(self, q: str, database: str = "") -> dict[str, object]:
        """Run InfluxQL over /query and return the decoded JSON."""
        return influx_query(self.url, q, database)

    def write(self, lines: Sequence[str], database: str) -> None:
        """Write line protocol (ms precision) over /write; raises for anything but 204."""
        body = "\n".join(lines).encode()
        url = f"{self.url}/write?db={urllib.parse.quote(database)}&precision=ms"
        request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local server
            if response.status != 204:
                raise RuntimeError(f"influxd /write answered {response.status}")


def influx_query(url: str, q: str, database: str = "") -> dict[str, object]:
    params = {"q": q, "epoch": "ms"}
    if database:
        params["db"] = database
    data = urllib.parse.urlencode(params).encode()
    request = urllib.request.Request(f"{url.rstrip('/')}/query", data=data, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - configured URL
        result: dict[str, object] = json.loads(response.read())
    return result


class VictoriaMetrics(_Server):
    """A real server that accepts the InfluxDB v2 write API (/api/v2/write), used to test the
    v2 path here, where no InfluxDB 2 package is available."""

    NAME = "victoria-metrics"

    def start(self) -> None:
        process = self._spawn(
            [
                find_binary("victoria-metrics"),
                f"-storageDataPath={self.directory / 'data'}",
                f"-httpListenAddr=127.0.0.1:{self.port}",
                "-loggerLevel=ERROR",
                "-search.latencyOffset=0s",
                # Replayed and simulated data may be years old; keep it all.
                "-retentionPeriod=100y",
            ]
        )
        _wait("victoria-metrics", lambda: _http_ok(f"{self.url}/health"), process, self.log_path)
        log.info("service_started", service="victoria-metrics", port=self.port, pid=process.pid)


class Alertmanager(_Server):
    """Prometheus Alertmanager (Debian's prometheus-alertmanager), clustering off, its data and
    its web UI (simulators.alertmanager_ui) in our directory. `config` is an alertmanager.yml
    (deploy/alertmanager/ has the example)."""

    NAME = "alertmanager"

    def __init__(self, directory: Path, config: Path, port: int | None = None) -> None:
        super().__init__(directory, port)
        self.config = config

    def start(self) -> None:
        binary = find_binary("prometheus-alertmanager", "/usr/bin")
        ui = unpack_ui(self.directory / "ui")
        process = self._spawn(
            [
                binary,
                f"--config.file={self.config}",
                f"--web.ui-path={ui}",
                f"--storage.path={self.directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",  # no gossip: one member, no port to collide
                "--log.level=warn",
            ]
        )
        _wait("alertmanager", lambda: _http_ok(f"{self.url}/-/ready"), process, self.log_path)
        log.info("service_started", service="alertmanager", port=self.port, pid=process.pid)

    def alerts(self, **filters: str) -> list[dict[str, object]]:
        """GET /api/v2/alerts (all states unless filtered)."""
        return alertmanager_alerts(self.url, **filters)


def alertmanager_alerts(url: str, **filters: str) -> list[dict[str, object]]:
    query = urllib.parse.urlencode(filters)
    address = f"{url.rstrip('/')}/api/v2/alerts" + (f"?{query}" if query else "")
    with urllib.request.urlopen(address, timeout=10) as response:  # noqa: S310 - configured URL
        result: list[dict[str, object]] = json.loads(response.read())
    return result


# The example config's endpoints that would leave this machine, and where a local run sends
# them instead: the discard port on loopback, where nothing listens, so those receivers fail
# at once and quietly (in Alertmanager's log). The webhook goes to a local receiver if given.
EXAMPLE_WEBHOOK: Final = "http://127.0.0.1:9099/envnet-alerts"
_NOWHERE: Final = "127.0.0.1:9"
_OUTSIDE: Final = (
    (
        'wechat_api_url: "https://qyapi.weixin.qq.com/cgi-bin/"',
        f'wechat_api_url: "http://{_NOWHERE}/"',
    ),
    ('smtp_smarthost: "smtp.example.org:587"', f'smtp_smarthost: "{_NOWHERE}"'),
)


def local_alertmanager_config(
    example: Path, directory: Path, webhook_url: str | None = None, group_wait: str | None = None
) -> Path:
    """The example alertmanager.yml (with its templates) for a run on this machine: nothing
    leaves it, the webhook goes to `webhook_url`, and `group_wait`/`group_interval` become
    `group_wait` when given (tests: notifications within seconds, not minutes)."""
    text = example.read_text(encoding="utf-8")
    for before, after in (*_OUTSIDE, (EXAMPLE_WEBHOOK, webhook_url or f"http://{_NOWHERE}/")):
        if before not in text:
            raise ServiceError(f"{example}: expected {before!r}")
        text = text.replace(before, after)
    if group_wait is not None:
        text = re.sub(r"group_(wait|interval): \d+[smh]", rf"group_\1: {group_wait}", text)
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copytree(example.parent / "templates", directory / "templates", dirs_exist_ok=True)
    path = directory / "alertmanager.yml"
    path.write_text(text, encoding="utf-8")
    return path


class EnvnetAggregator(_Process):
    """`envnet aggregator` as a child process, with its config file and environment (the
    ENVNET_* variables that name the broker and database); ready once it is connected to
    the broker, as its /metrics says."""

    def __init__(
        self, directory: Path, config: Path, metrics_port: int, env: dict[str, str]
    ) -> None:
        super().__init__("aggregator", directory)
        self.config = config
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        self._env = env

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "envnet.cli", "aggregator", "--config", str(self.config)]
        with self.log_path.open("ab") as log_file:
            self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                argv, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
                env=self._env,
            )  # fmt: skip
        _wait("aggregator", lambda: self.metric("envnet_mqtt_connected") == 1.0,
              self._process, self.log_path)  # fmt: skip
        log.info("service_started", service="aggregator", pid=self._process.pid)

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def metric(self, name: str, **labels: str) -> float | None:
        """The sum of a metric's samples whose labels include `labels`, None if it cannot
        be read."""
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=2) as response:  # noqa: S310
                text = response.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError):
            return None
        return metric_sum(text, name, **labels)


def metric_sum(text: str, name: str, **labels: str) -> float | None:
    """The sum of the samples of `name` in Prometheus text whose labels include `labels`."""
    total, seen = 0.0, False
    for match in re.finditer(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", text, re.MULTILINE):
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
            seen = True
    return total if seen else None

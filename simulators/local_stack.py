"""Start real mosquitto, influxd and victoria-metrics processes on free ports, with data in a
directory of our choosing. Used by `envnet demo` and by the integration-test fixtures.

Each service is a context manager that owns exactly one process and stops only that one.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
    msg = f"{name} not found: run `make os-packages` (deploy/dev/install-os-packages.sh)"
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


# nats-server (2.9) settings that matter for envnet; docs/cluster/broker.md has the numbers.
# - max_payload: 2.9.10 did not apply it to MQTT PUBLISH here (4 MiB went through with the
#   default 1 MB); set to mosquitto's max_packet_size anyway, for the NATS side and for
#   versions that apply it. The aggregator's max_payload_bytes is the cap that acts.
# - stream_replicas / consumer_replicas 3: every MQTT stream (sessions, retained messages,
#   QoS 1 messages) and every QoS 1 subscription's consumer (its pending and in-flight
#   messages) on all three servers, so the loss of any one keeps a quorum of two. With R1
#   consumers the aggregator's queued readings were lost with the consumer's server.
# - max_ack_pending: QoS 1 messages in flight per subscription, as mosquitto's
#   max_inflight_messages (NATS's default of 1024 is close already).
NATS_MAX_PAYLOAD_BYTES: Final = 2 * 1024 * 1024
NATS_MQTT_TUNING: Final = """\
  stream_replicas: {replicas}
  consumer_replicas: {replicas}
  consumer_memory_storage: false
  max_ack_pending: 1000
  ack_wait: "30s"
"""
_BIND_CLASH: Final = "address already in use"


# The subjects nats-server 2.9 delivers a QoS 1 subscription's messages on (the deliver
# subject of the subscription's JetStream consumer, $MQTT.sub.<random>). A user with subscribe
# permissions needs this too, else every QoS 1 SUBSCRIBE is refused (SUBACK 0x80, "Unable to
# create subscription for JetStream consumer ... subscribe permission violation" in the log);
# QoS 1 PUBLISH and the acks need no internal subject (measured, docs/cluster/broker.md).
NATS_MQTT_DELIVERY: Final = "$MQTT.sub.>"


@dataclass(frozen=True, slots=True)
class NatsUser:
    """One login of a secured NatsCluster, for MQTT connections only (allowed_connection_types:
    the NATS client port refuses it, so the $MQTT.sub.> grant below cannot be used from a NATS
    client to read other sessions' deliveries). `publish`/`subscribe`: the NATS subjects this
    user may publish/subscribe to (the MQTT topic a/b/c is the subject a.b.c), None for all; a
    `subscribe` list needs NATS_MQTT_DELIVERY for QoS 1."""

    name: str
    password: str = field(repr=False)
    publish: tuple[str, ...] | None = None
    subscribe: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class NatsSecurity:
    """TLS on every server's MQTT listener (a server certificate for 127.0.0.1, signed by
    `ca_file`) and logins: the MQTT listeners accept only these users, with their passwords.
    The readiness probe logs in as `probe_user`, which must be one of them."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    users: tuple[NatsUser, ...]
    probe_user: str

    def __post_init__(self) -> None:
        names = [u.name for u in self.users]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate NATS user names: {names}")
        if self.probe_user not in names:
            raise ValueError(f"probe_user {self.probe_user!r} is not one of the users")

    def user(self, name: str) -> NatsUser:
        return next(u for u in self.users if u.name == name)

    def config_text(self) -> str:
        """The `authorization` block (top level: nats-server authenticates MQTT clients
        against the server's users) and the `tls` block for inside `mqtt { }`."""
        users = "".join(f"    {_nats_user(u)}\n" for u in self.users)
        return f"authorization {{\n  users = [\n{users}  ]\n}}\n"

    def mqtt_tls_text(self) -> str:
        return (
            f'  tls {{\n    cert_file: "{self.cert_file}"\n    key_file: "{self.key_file}"\n'
            f'    ca_file: "{self.ca_file}"\n  }}\n'
        )


def _nats_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid NATS config string


def _nats_user(user: NatsUser) -> str:
    fields = [
        f"user: {_nats_string(user.name)}",
        f"password: {_nats_string(user.password)}",
        'allowed_connection_types: ["MQTT"]',
    ]
    permissions = []
    for verb, subjects in (("publish", user.publish), ("subscribe", user.subscribe)):
        if subjects is not None:
            allowed = ", ".join(_nats_string(s) for s in subjects)
            permissions.append(f"{verb}: {{ allow: [{allowed}] }}")
    if permissions:
        fields.append(f"permissions: {{ {', '.join(permissions)} }}")
    return "{ " + ", ".join(fields) + " }"


def _mqtt_string(text: str) -> bytes:
    data = text.encode("utf-8")
    return len(data).to_bytes(2, "big") + data


def _remaining_length(n: int) -> bytes:
    """MQTT 3.1.1 section 2.2.3: 7 bits a byte, least significant first."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mqtt_connect_packet(client_id: str, login: tuple[str, str] | None = None) -> bytes:
    """A clean-session MQTT 3.1.1 CONNECT, keepalive 5 s, with a username and password if
    `login` is given (section 3.1)."""
    flags = 0x02 | (0xC0 if login else 0)
    body = b"\x00\x04MQTT\x04" + bytes([flags]) + b"\x00\x05" + _mqtt_string(client_id)
    if login:
        body += _mqtt_string(login[0]) + _mqtt_string(login[1])
    return b"\x10" + _remaining_length(len(body)) + body


def mqtt_connack(
    port: int,
    login: tuple[str, str] | None = None,
    ca_file: Path | None = None,
    client_id: str = "envnet-ready-probe",
) -> int | None:
    """The return code of the CONNACK to a clean-session MQTT 3.1.1 CONNECT (over TLS,
    verified against `ca_file`, when given), None if none came. nats-server answers 3
    (server unavailable) until its JetStream streams are usable."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            sock: socket.socket = raw
            if ca_file is not None:
                context = ssl.create_default_context(cafile=str(ca_file))
                sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
            with sock:
                sock.sendall(mqtt_connect_packet(client_id, login))
                answer = sock.recv(4)
                if len(answer) == 4 and answer[3] == 0:
                    sock.sendall(b"\xe0\x00")  # DISCONNECT
    except OSError:  # refused while starting, reset, or a TLS error (ssl.SSLError)
        return None
    return answer[3] if len(answer) == 4 and answer[0] == 0x20 else None


class _NatsServer(_Process):
    """One member of a NatsCluster: its ports stay the same across restarts."""

    def __init__(
        self, directory: Path, index: int, size: int, security: NatsSecurity | None = None
    ) -> None:
        super().__init__(f"nats-{index}", directory)
        self.index = index
        self.size = size
        self.security = security
        self.assign_ports()

    def assign_ports(self) -> None:
        self.client_port, self.route_port = free_port(), free_port()
        self.monitor_port, self.mqtt_port = free_port(), free_port()

    def config_text(self, route_ports: Sequence[int]) -> str:
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in route_ports)
        replicas = min(self.size, 3)
        security = self.security
        return (
            f"server_name: n{self.index}\n"
            f"host: 127.0.0.1\nport: {self.client_port}\n"
            f"http: 127.0.0.1:{self.monitor_port}\n"
            f"max_payload: {NATS_MAX_PAYLOAD_BYTES}\n"
            f'jetstream {{\n  store_dir: "{self.directory / "store"}"\n}}\n'
            f"cluster {{\n  name: envnet\n  listen: 127.0.0.1:{self.route_port}\n"
            f"  routes: [{routes}]\n}}\n"
            f"{security.config_text() if security else ''}"
            f"mqtt {{\n  host: 127.0.0.1\n  port: {self.mqtt_port}\n"
            f"{NATS_MQTT_TUNING.format(replicas=replicas)}"
            f"{security.mqtt_tls_text() if security else ''}}}\n"
        )

    def start(self) -> None:
        """Spawn (the config must be written); readiness is the cluster's to judge."""
        self._spawn([find_binary("nats-server"), "-c", str(self.directory / "nats.conf")])

    def write_config(self, route_ports: Sequence[int]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "nats.conf").write_text(self.config_text(route_ports), encoding="utf-8")

    def exited(self) -> bool:
        return self._process is None or self._process.poll() is not None

    def alive(self) -> bool:
        return not self.exited()

    def bind_clash(self) -> bool:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return _BIND_CLASH in text.lower()

    def ready(self) -> bool:
        """This server is current with the JetStream meta leader, and MQTT CONNECT is
        accepted (its MQTT streams are usable). healthz with no options would also wait for
        every stream and consumer here, and after a SIGKILL the MQTT retained-messages
        consumer of the killed incarnation stayed "not current" for over 90 s (2.9.10), so
        js-server-only."""
        if not _http_ok(f"http://127.0.0.1:{self.monitor_port}/healthz?js-server-only=true"):
            return False
        security = self.security
        if security is None:
            return mqtt_connack(self.mqtt_port) == 0
        probe = security.user(security.probe_user)
        login = (probe.name, probe.password)
        return mqtt_connack(self.mqtt_port, login, security.ca_file) == 0


class NatsCluster:
    """`size` nats-server processes on loopback forming one JetStream cluster, each with an
    MQTT listener: a clustered MQTT broker (docs/cluster/broker.md). Server i keeps its ports
    and its JetStream store (directory/nats-i/store) across kill(i) and start_server(i).
    With `security`, the MQTT listeners speak only TLS and accept only its users."""

    START_ATTEMPTS: ClassVar[int] = 3
    # Electing a meta leader and placing replicated streams on a busy 2-core machine.
    READY_TIMEOUT_S: ClassVar[float] = 90.0

    def __init__(
        self, directory: Path, size: int = 3, security: NatsSecurity | None = None
    ) -> None:
        self.directory = directory
        self.security = security
        self.servers = [
            _NatsServer(directory / f"nats-{i}", i, size, security) for i in range(size)
        ]

    @property
    def urls(self) -> list[str]:
        return [self.url(i) for i in range(len(self.servers))]

    def url(self, i: int) -> str:
        scheme = "mqtt" if self.security is None else "mqtts"
        return f"{scheme}://127.0.0.1:{self.servers[i].mqtt_port}"

    def login_url(self, i: int, user: str) -> str:
        """Server i's URL with `user`'s login in it (secured clusters only)."""
        if self.security is None:
            raise ValueError("this cluster has no logins")
        login = self.security.user(user)
        name, password = (urllib.parse.quote(t, safe="") for t in (login.name, login.password))
        credentials = f"{name}:{password}"
        return f"mqtts://{credentials}@127.0.0.1:{self.servers[i].mqtt_port}"

    def pid(self, i: int) -> int | None:
        return self.servers[i].pid

    def alive(self, i: int) -> bool:
        return self.servers[i].alive()

    def monitor_url(self, i: int) -> str:
        """Server i's monitoring endpoint (/healthz, /jsz, /connz)."""
        return f"http://127.0.0.1:{self.servers[i].monitor_port}"

    def start(self) -> None:
        for attempt in range(1, self.START_ATTEMPTS + 1):
            for server in self.servers:
                others = [s.route_port for s in self.servers if s is not server]
                server.write_config(others)
                server.start()
            try:
                self._wait_ready(self.servers)
            except ServiceError:
                clashed = any(s.exited() and s.bind_clash() for s in self.servers)
                self.stop()
                if not clashed or attempt == self.START_ATTEMPTS:
                    raise
                log.warning("port_clash_retry", service="nats-server", attempt=attempt)
                for server in self.servers:
                    server.assign_ports()
                continue
            log.info("service_started", service="nats-cluster", urls=self.urls,
                     pids=[s.pid for s in self.servers])  # fmt: skip
            return

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def kill(self, i: int) -> None:
        """SIGKILL server i."""
        self.servers[i].kill()

    def start_server(self, i: int) -> None:
        """Restart server i on its ports and store; return once it has rejoined the cluster,
        JetStream is current there and it accepts MQTT. Its ports cannot change (the other
        servers route to them), so a port taken meanwhile is a ServiceError."""
        server = self.servers[i]
        server.start()
        self._wait_ready([server])
        log.info("service_started", service=server.name, pid=server.pid)

    def _wait_ready(self, servers: Sequence[_NatsServer]) -> None:
        deadline = time.monotonic() + self.READY_TIMEOUT_S
        waiting = list(servers)
        while waiting:
            for server in [s for s in waiting if s.exited()]:
                tail = server.log_path.read_text(errors="replace")[-2000:]
                raise ServiceError(f"{server.name} exited:\n{tail}")
            waiting = [s for s in waiting if not s.ready()]
            if waiting and time.monotonic() > deadline:
                names = ", ".join(s.name for s in waiting)
                raise ServiceError(f"{names} not ready after {self.READY_TIMEOUT_S} s")
            if waiting:
                time.sleep(0.1)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


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

"""A real mosquitto with TLS, per-node passwords and the shipped ACL, for tests.

The broker runs deploy/mosquitto/envnet-tls.conf and envnet.acl as shipped, with only the
paths and the ports replaced: the nodes' listener and the services' listener, each on a free
loopback port. Its password files are written by deploy/mosquitto/add-node.sh (users named
envnet-… are services, with --service; the others are nodes).
Certificates come from the `openssl` command line (no Python dependency): a throw-away CA and
a server certificate for 127.0.0.1 and localhost.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from simulators.local_stack import MOSQUITTO_TUNING, Mosquitto, ServiceError, find_binary, free_port

REPO: Final = Path(__file__).resolve().parents[2]
TLS_CONF: Final = REPO / "deploy" / "mosquitto" / "envnet-tls.conf"
ACL: Final = REPO / "deploy" / "mosquitto" / "envnet.acl"
ADD_NODE: Final = REPO / "deploy" / "mosquitto" / "add-node.sh"
READY_TIMEOUT_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class Pki:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run([find_binary("openssl"), *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory: Path, name: str = "envnet test CA") -> tuple[Path, Path]:
    """A self-signed CA certificate and its key (P-256: fast to make, small)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "ca.crt", directory / "ca.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    return cert, key


def make_pki(directory: Path) -> Pki:
    ca_cert, ca_key = make_ca(directory)
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    extensions = directory / "server.ext"
    extensions.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
        encoding="utf-8",
    )
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(csr), "-subj", "/CN=localhost",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(extensions),
        cwd=directory,
    )  # fmt: skip
    return Pki(ca_cert=ca_cert, ca_key=ca_key, server_cert=cert, server_key=key)


def is_service(user: str) -> bool:
    return user.startswith("envnet-")


def add_node(passwd_file: Path, user: str, password: str) -> str:
    """Run the shipped add-node.sh; return the node.toml lines it printed."""
    service = ["--service"] if is_service(user) else []
    done = subprocess.run(
        ["bash", str(ADD_NODE), "--passwd", str(passwd_file), "--password-stdin", *service, user],
        input=password + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def shipped_tls_conf(
    ports: tuple[int, int], pki: Pki, passwd_files: tuple[Path, Path], acl_file: Path
) -> str:
    """deploy/mosquitto/envnet-tls.conf with the test's paths and ports (nodes', services');
    fails if a line it replaces is no longer in the shipped file (so the test keeps testing
    what ships)."""
    text = TLS_CONF.read_text(encoding="utf-8")
    replacements = {
        "listener 8883\n": f"listener {ports[0]} 127.0.0.1\n",
        "listener 8884\n": f"listener {ports[1]} 127.0.0.1\n",
        "/etc/mosquitto/certs/envnet-ca.crt": str(pki.ca_cert),
        "/etc/mosquitto/certs/server.crt": str(pki.server_cert),
        "/etc/mosquitto/certs/server.key": str(pki.server_key),
        "/etc/mosquitto/envnet.passwd": str(passwd_files[0]),
        "/etc/mosquitto/envnet-services.passwd": str(passwd_files[1]),
        "/etc/mosquitto/envnet.acl": str(acl_file),
    }
    for old, new in replacements.items():
        if old not in text:
            raise AssertionError(f"{TLS_CONF} no longer contains {old!r}")
        text = text.replace(old, new)
    return text


class TlsMosquitto(Mosquitto):
    """mosquitto on free loopback ports with the shipped TLS, password and ACL settings:
    `port` is the nodes' listener, `services_port` the services'."""

    def __init__(self, directory: Path, pki: Pki, passwd_files: tuple[Path, Path]) -> None:
        super().__init__(directory)
        self.pki = pki
        self.passwd_files = passwd_files
        self.services_port = free_port()

    @property
    def url(self) -> str:
        return f"mqtts://127.0.0.1:{self.port}"

    def port_for(self, user: str) -> int:
        return self.services_port if is_service(user) else self.port

    def credentials_url(self, user: str, password: str) -> str:
        return f"mqtts://{user}:{password}@127.0.0.1:{self.port_for(user)}"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        ports = (self.port, self.services_port)
        conf = self.directory / "mosquitto.conf"
        conf.write_text(
            # As root, mosquitto would drop to the 'mosquitto' user, which cannot read a
            # test's private temporary directory.
            "user root\n"
            "log_dest stdout\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            f"{MOSQUITTO_TUNING}"
            f"{shipped_tls_conf(ports, self.pki, self.passwd_files, ACL)}",
            encoding="utf-8",
        )
        process = self._spawn([find_binary("mosquitto"), "-c", str(conf)])
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not all(self._handshake_ok(port) for port in ports):
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise ServiceError(f"TLS mosquitto did not start:\n{tail}")
            time.sleep(0.05)

    def _handshake_ok(self, port: int) -> bool:
        """Ready when a TLS handshake with our CA succeeds."""
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=1) as raw,
                context.wrap_socket(raw, server_hostname="127.0.0.1"),
            ):
                return True
        except OSError:  # refused while starting; ssl.SSLError is an OSError
            return False


@dataclass(frozen=True, slots=True)
class TlsBroker:
    broker: TlsMosquitto
    pki: Pki
    passwords: dict[str, str]

    def url(self, user: str) -> str:
        return self.broker.credentials_url(user, self.passwords[user])


@contextmanager
def tls_broker(directory: Path, users: dict[str, str]) -> Iterator[TlsBroker]:
    """Start a TLS broker whose password files hold `users` (name -> password): the users
    named envnet-… in the services' file, the others in the nodes' file."""
    pki = make_pki(directory / "pki")
    passwd_files = (directory / "envnet.passwd", directory / "envnet-services.passwd")
    for user, password in users.items():
        add_node(passwd_files[1 if is_service(user) else 0], user, password)
    for passwd_file in passwd_files:  # mosquitto refuses to start without either file
        passwd_file.touch(mode=0o600, exist_ok=True)
    with TlsMosquitto(directory / "mosquitto", pki, passwd_files) as broker:
        yield TlsBroker(broker, pki, dict(users))


@dataclass
class TlsProbe:
    """A paho subscriber (or publisher) logged in to the TLS broker as `user`."""

    client: mqtt.Client
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    disconnects: list[object] = field(default_factory=list)  # reason codes, but our own stop
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: bool = False

    def on(self, predicate: Callable[[str], bool]) -> list[bytes]:
        with self.lock:
            return [payload for topic, payload in self.messages if predicate(topic)]

    def stop(self) -> None:
        self.stopping = True
        self.client.loop_stop()
        self.client.disconnect()


def connect_result(
    tb: TlsBroker,
    user: str | None,
    password: str | None,
    port: int | None = None,
    *,
    client_id: str = "",
    clean_session: bool = True,
) -> ReasonCode:
    """The CONNACK reason code the broker gives these credentials (on `port`, by default
    the listener for `user`)."""
    client = _tls_client(tb, client_id, clean_session)
    if user is not None:
        client.username_pw_set(user, password)
    result: list[ReasonCode] = []
    client.on_connect = lambda c, u, f, rc, p: result.append(rc)
    client.connect("127.0.0.1", port or tb.broker.port_for(user or ""))
    deadline = time.monotonic() + 10
    while not result and time.monotonic() < deadline:
        client.loop(0.05)
    client.disconnect()
    assert result, "no CONNACK"
    return result[0]


def _tls_client(tb: TlsBroker, client_id: str = "", clean_session: bool = True) -> mqtt.Client:
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean_session,
    )
    client.tls_set(ca_certs=str(tb.pki.ca_cert), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    return client


def tls_probe(
    tb: TlsBroker,
    user: str,
    subscribe: list[str],
    *,
    client_id: str = "",
    clean_session: bool = True,
    port: int | None = None,
) -> TlsProbe:
    """Logged in as `user` (a password from the broker's table), subscribed to `subscribe`
    at QoS 1; returns once the broker has answered the subscription."""
    client = _tls_client(tb, client_id, clean_session)
    client.username_pw_set(user, tb.passwords[user])
    probe = TlsProbe(client)
    subscribed = threading.Event()

    def on_connect(c: mqtt.Client, *_: object) -> None:
        if subscribe:
            c.subscribe([(topic, 1) for topic in subscribe])
        else:
            subscribed.set()

    def on_message(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        with probe.lock:
            probe.messages.append((m.topic, bytes(m.payload)))

    def on_disconnect(c: mqtt.Client, u: object, f: object, rc: ReasonCode, p: object) -> None:
        if not probe.stopping:
            probe.disconnects.append(rc)

    client.on_connect = on_connect
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = on_message
    client.on_disconnect = on_disconnect
    client.connect("127.0.0.1", port or tb.broker.port_for(user))
    client.loop_start()
    assert subscribed.wait(10), f"{user} did not connect and subscribe"
    return probe

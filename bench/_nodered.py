"""Node-RED as the peer system of `bench/peer_nodered.py`: its install (from npm, cached),
the two flows the bench compares envnet with, and the process that runs them.

Both flows subscribe to the same readings topics at QoS 1 and write to the same influxd
database as the aggregator, through node-red-contrib-influxdb's `influxdb batch` node. A
function node decodes the `envnet.readings/1` JSON (schemas/README.md) into that node's
point objects: measurement `readings`, field `value`, the reading's tags, its `ts` in ms.

- `per-message`: one InfluxDB write per MQTT message;
- `join`: a join node collects messages (up to a count, or a timeout after the first) and
  one function decodes the whole group into one write.

Node-RED acknowledges MQTT on arrival (mqtt.js), not after storage, and sends no envnet acks;
the bench counts what reached InfluxDB. Its flows also answer `envnet-bench/ping` with
`envnet-bench/pong` (so the bench knows the subscriptions are in place) and serve
`GET /bench/counts`: messages decoded and writes failed, as its catch node saw them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from simulators.local_stack import free_port

Flow = Literal["join", "per-message"]
FLOWS: Final[tuple[Flow, ...]] = ("join", "per-message")

NODE_RED_SPEC: Final = "4.1"
INFLUXDB_NODE_SPEC: Final = "0.7.0"
CACHE_DIR: Final = Path.home() / ".cache" / "envnet-bench" / "nodered"
INSTALL_TIMEOUT_S: Final = 600.0
READY_TIMEOUT_S: Final = 60.0
STOP_TIMEOUT_S: Final = 20.0
READINGS_FILTER: Final = "envnet/v1/nodes/+/readings"
PING_TOPIC: Final = "envnet-bench/ping"
PONG_TOPIC: Final = "envnet-bench/pong"


class NodeRedError(RuntimeError):
    """Node-RED could not be installed or started, or did not take messages."""


# -- install --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeRedInstall:
    """A directory with node_modules/node-red and node_modules/node-red-contrib-influxdb."""

    root: Path

    @property
    def red_js(self) -> Path:
        return self.root / "node_modules" / "node-red" / "red.js"

    def version(self, package: str) -> str:
        meta = self.root / "node_modules" / package / "package.json"
        return str(json.loads(meta.read_text(encoding="utf-8"))["version"])

    @property
    def complete(self) -> bool:
        return (
            self.red_js.exists()
            and (self.root / "node_modules" / "node-red-contrib-influxdb" / "influxdb.js").exists()
        )


def install(
    node_red: str = NODE_RED_SPEC,
    influxdb_node: str = INFLUXDB_NODE_SPEC,
    cache_dir: Path | None = CACHE_DIR,
    scratch: Path | None = None,
) -> NodeRedInstall:
    """Node-RED and node-red-contrib-influxdb from npm, into a fresh temporary directory,
    kept under `cache_dir` keyed by the requested versions (None: not kept, in `scratch`)."""
    key = f"node-red-{node_red}_influxdb-{influxdb_node}"
    if cache_dir is not None:
        cached = NodeRedInstall(cache_dir / key)
        if cached.complete:
            return cached
    npm = shutil.which("npm")
    if npm is None:
        raise NodeRedError("npm not found: Node.js 20 and npm are needed for the peer bench")
    parent = scratch if cache_dir is None else cache_dir
    assert parent is not None
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=parent))
    (work / "package.json").write_text('{"name": "envnet-bench-peer", "private": true}\n')
    argv = [npm, "install", "--no-audit", "--no-fund", "--omit=dev", "--prefix", str(work)]
    argv += [f"node-red@{node_red}", f"node-red-contrib-influxdb@{influxdb_node}"]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        shutil.rmtree(work, ignore_errors=True)
        raise NodeRedError(f"npm install took over {INSTALL_TIMEOUT_S:.0f} s") from None
    if done.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        raise NodeRedError(f"npm install failed ({done.returncode}):\n{done.stderr[-2000:]}")
    if cache_dir is None:
        return NodeRedInstall(work)
    target = cache_dir / key
    try:
        work.rename(target)  # atomic: a concurrent bench finds a whole install or none
    except OSError:
        shutil.rmtree(work, ignore_errors=True)  # another bench put one there first
    return NodeRedInstall(target)


# -- flows ----------------------------------------------------------------------------------

# envnet.readings/1 → the influxdb batch node's points. `ts` is epoch ms (precision "ms").
_POINTS_JS: Final = """
function points(text, out) {
    const m = JSON.parse(text);
    const rs = m.readings;
    for (let i = 0; i < rs.length; i++) {
        const r = rs[i];
        out.push({
            measurement: "readings",
            tags: {node: m.node, sensor: r.sensor, quantity: r.quantity, stat: r.stat,
                   period_s: String(r.period_s)},
            fields: {value: r.value},
            timestamp: r.ts,
        });
    }
}
"""

_PER_MESSAGE_JS: Final = (
    _POINTS_JS
    + """
const out = [];
points(msg.payload, out);
global.set("decoded", (global.get("decoded") || 0) + 1);
msg.payload = out;
return msg;
"""
)

_JOINED_JS: Final = (
    _POINTS_JS
    + """
const out = [];
for (const text of msg.payload) points(text, out);
global.set("decoded", (global.get("decoded") || 0) + msg.payload.length);
msg.payload = out;
return msg;
"""
)

_FAILED_JS: Final = """
const n = Array.isArray(msg.payload) ? msg.payload.length : 0;
global.set("failed_points", (global.get("failed_points") || 0) + n);
global.set("failed_writes", (global.get("failed_writes") || 0) + 1);
global.set("last_error", String(msg.error && msg.error.message));
return null;
"""

_COUNTS_JS: Final = """
msg.payload = {
    decoded: global.get("decoded") || 0,
    failed_points: global.get("failed_points") || 0,
    failed_writes: global.get("failed_writes") || 0,
    last_error: global.get("last_error") || "",
};
return msg;
"""


@dataclass(frozen=True, slots=True)
class FlowSpec:
    flow: Flow
    mqtt_port: int
    influx_port: int
    database: str
    join_messages: int = 0  # join flow: messages per write
    join_timeout_s: float = 1.0  # join flow: a partial group is written this long after its first


def _function(node_id: str, name: str, code: str, wires: list[list[str]]) -> dict[str, object]:
    return {
        "id": node_id,
        "type": "function",
        "z": "tab",
        "name": name,
        "func": code,
        "outputs": 1,
        "noerr": 0,
        "initialize": "",
        "finalize": "",
        "libs": [],
        "wires": wires,
    }


def flows(spec: FlowSpec) -> list[dict[str, object]]:
    """flows.json for one flow."""
    joined = spec.flow == "join"
    nodes: list[dict[str, object]] = [
        {"id": "tab", "type": "tab", "label": f"envnet bench: {spec.flow}"},
        {
            "id": "broker",
            "type": "mqtt-broker",
            "name": "bench mosquitto",
            "broker": "127.0.0.1",
            "port": str(spec.mqtt_port),
            "clientid": f"envnet-bench-nodered-{spec.flow}",
            "autoConnect": True,
            "usetls": False,
            "protocolVersion": "4",
            "keepalive": "60",
            "cleansession": True,
        },
        {
            "id": "influx",
            "type": "influxdb",
            "hostname": "127.0.0.1",
            "port": str(spec.influx_port),
            "protocol": "http",
            "database": spec.database,
            "name": "bench influxd",
            "usetls": False,
            "tls": "",
            "influxdbVersion": "1.x",
        },
        {
            "id": "readings",
            "type": "mqtt in",
            "z": "tab",
            "name": "envnet readings",
            "topic": READINGS_FILTER,
            "qos": "1",
            "datatype": "utf8",
            "broker": "broker",
            "nl": False,
            "rap": True,
            "rh": 0,
            "inputs": 0,
            "wires": [["join" if joined else "decode"]],
        },
        _function(
            "decode",
            "envnet.readings/1 to points",
            _JOINED_JS if joined else _PER_MESSAGE_JS,
            [["write"]],
        ),
        {
            "id": "write",
            "type": "influxdb batch",
            "z": "tab",
            "influxdb": "influx",
            "precision": "ms",
            "retentionPolicy": "",
            "name": "write points",
            "wires": [],
        },
        {
            "id": "catch",
            "type": "catch",
            "z": "tab",
            "scope": ["write"],
            "uncaught": False,
            "wires": [["failed"]],
        },
        _function("failed", "count failed writes", _FAILED_JS, [[]]),
        {
            "id": "ping",
            "type": "mqtt in",
            "z": "tab",
            "topic": PING_TOPIC,
            "qos": "1",
            "datatype": "utf8",
            "broker": "broker",
            "nl": False,
            "rap": True,
            "rh": 0,
            "inputs": 0,
            "wires": [["pong"]],
        },
        {
            "id": "pong",
            "type": "mqtt out",
            "z": "tab",
            "topic": PONG_TOPIC,
            "qos": "1",
            "retain": "false",
            "broker": "broker",
            "wires": [],
        },
        {
            "id": "counts_in",
            "type": "http in",
            "z": "tab",
            "url": "/bench/counts",
            "method": "get",
            "upload": False,
            "wires": [["counts"]],
        },
        _function("counts", "counts", _COUNTS_JS, [["counts_out"]]),
        {"id": "counts_out", "type": "http response", "z": "tab", "statusCode": "", "wires": []},
    ]
    if joined:
        nodes.append(
            {
                "id": "join",
                "type": "join",
                "z": "tab",
                "name": f"{spec.join_messages} messages or {spec.join_timeout_s:g} s",
                "mode": "custom",
                "build": "array",
                "property": "payload",
                "propertyType": "msg",
                "key": "topic",
                "joiner": "\\n",
                "joinerType": "str",
                "accumulate": False,
                "timeout": f"{spec.join_timeout_s:g}",
                "count": str(spec.join_messages),
                "reduceRight": False,
                "wires": [["decode"]],
            }
        )
    # Node-RED tells flow nodes from config nodes by their position in the editor.
    for y, node in enumerate(nodes):
        if "z" in node:
            node.update(x=200, y=40 * y)
    return nodes


def _settings_js(port: int, flow_file: Path) -> str:
    settings = {
        "uiHost": "127.0.0.1",
        "uiPort": port,
        "flowFile": str(flow_file),
        "credentialSecret": False,
        "httpAdminRoot": False,  # no editor and no admin API: only the flows' endpoints
        "logging": {"console": {"level": "warn", "metrics": False, "audit": False}},
        "telemetry": {"enabled": False},
        "externalModules": {"autoInstall": False},
    }
    return f"module.exports = {json.dumps(settings, indent=2)};\n"


# -- the process ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Counts:
    decoded: int
    failed_points: int
    failed_writes: int
    last_error: str


# An overrun Node-RED (thousands of writes pending) may not answer its endpoint at all.
UNKNOWN_COUNTS: Final = Counts(-1, -1, -1, "Node-RED did not answer GET /bench/counts")


class NodeRedProcess:
    """`node red.js` with a settings file, a flows file and a user directory of its own,
    stopped (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, installed: NodeRedInstall, spec: FlowSpec, directory: Path) -> None:
        self._installed = installed
        self._spec = spec
        self._dir = directory
        self.port = free_port()
        self.log_path = directory / "node-red.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def _write_files(self) -> Path:
        user = self._dir / "user"
        user.mkdir(parents=True, exist_ok=True)
        # Node-RED finds node-red-contrib-influxdb in its user directory's node_modules.
        link = user / "node_modules"
        if not link.exists():
            link.symlink_to(self._installed.root / "node_modules", target_is_directory=True)
        flow_file = user / "flows.json"
        flow_file.write_text(json.dumps(flows(self._spec), indent=1), encoding="utf-8")
        # The influxdb config node reads its credentials; unencrypted (credentialSecret false).
        creds = {"influx": {"username": "", "password": ""}}
        (user / "flows_cred.json").write_text(json.dumps(creds), encoding="utf-8")
        settings = user / "settings.js"
        settings.write_text(_settings_js(self.port, flow_file), encoding="utf-8")
        return settings

    def __enter__(self) -> Self:
        node = shutil.which("node")
        if node is None:
            raise NodeRedError("node not found: Node.js 20 is needed for the peer bench")
        settings = self._write_files()
        argv = [node, str(self._installed.red_js), "--userDir", str(self._dir / "user")]
        argv += ["--settings", str(settings)]
        with self.log_path.open("ab") as log_file:
            self._process = subprocess.Popen(
                argv,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self._dir,
                env={**os.environ, "NODE_ENV": "production"},
                start_new_session=True,
            )
        try:
            self._wait_serving()
            self._wait_subscribed()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _check_alive(self) -> None:
        process = self._process
        if process is not None and process.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise NodeRedError(f"node-red exited with {process.returncode}:\n{tail}")

    def counts(self, timeout_s: float = 10.0) -> Counts:
        self._check_alive()
        url = f"http://127.0.0.1:{self.port}/bench/counts"
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            data = json.loads(response.read())
        return Counts(
            int(data["decoded"]),
            int(data["failed_points"]),
            int(data["failed_writes"]),
            str(data["last_error"]),
        )

    def _wait_serving(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                self.counts()
                return
            except (urllib.error.URLError, OSError, ValueError):
                time.sleep(0.2)
        raise NodeRedError(f"node-red did not serve its flows within {READY_TIMEOUT_S:.0f} s")

    def _wait_subscribed(self) -> None:
        """Ping until the flow pongs: its MQTT connection and subscriptions are in place."""
        ponged: list[bool] = []
        client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        client.on_message = lambda c, u, m: ponged.append(True)
        client.connect("127.0.0.1", self._spec.mqtt_port)
        client.subscribe(PONG_TOPIC, qos=1)
        client.loop_start()
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while time.monotonic() < deadline and not ponged:
                self._check_alive()
                client.publish(PING_TOPIC, b"ping", qos=1)
                time.sleep(0.2)
            if not ponged:
                raise NodeRedError("node-red's flow did not answer a ping over MQTT")
        finally:
            client.loop_stop()
            client.disconnect()

    def stop(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

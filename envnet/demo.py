"""`envnet demo`: a live simulated city network, end to end, on real mosquitto and influxd.

It starts (unless ENVNET_MQTT_URL and ENVNET_INFLUX_URL name running services) mosquitto and
influxd with data under .dev/, and (unless ENVNET_ALERTMANAGER_URL names one) Prometheus
Alertmanager with the example deploy/alertmanager/alertmanager.yml, then the aggregator and a
simulated fleet as child processes, and shows a live view and Alertmanager's UI address.
On Ctrl-C or after --duration it stops what it started, and only that.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from envnet.argtypes import non_negative_float, positive_float, positive_int
from envnet.demo_view import DemoState, render
from schemas.runtime.configfile import ConfigError
from schemas.runtime.endpoints import parse_mqtt_url
from schemas.runtime.logs import get_logger
from simulators.local_stack import (
    Alertmanager,
    Influxd,
    Mosquitto,
    ServiceError,
    free_port,
    influx_query,
    local_alertmanager_config,
)

if TYPE_CHECKING:  # paho is imported lazily: `envnet --help` must not need it
    import paho.mqtt.client as mqtt

log = get_logger("envnet.demo")

DATABASE: Final = "envnet"
CLEAR: Final = "\x1b[H\x1b[2J"
# How often the view checks its stop conditions (Ctrl-C, --duration, --until-alert).
_TICK_S: Final = 0.2


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration", type=non_negative_float, default=None, help="stop after N seconds"
    )
    parser.add_argument(
        "--until-alert",
        metavar="RULE",
        default=None,
        help="stop as soon as an alert of RULE fires, e.g. odour.h2s (--duration still caps "
        "the run; the exit status is 1 if RULE did not fire)",
    )
    fleet = parser.add_mutually_exclusive_group()
    fleet.add_argument(
        "--nodes", type=positive_int, default=None, help="simulated nodes (default 10)"
    )
    fleet.add_argument(
        "--fleet",
        type=Path,
        default=None,
        help="run the fleet this file describes (see the README's fleet files) instead of "
        "the built-in Suzhou city",
    )
    parser.add_argument(
        "--accel", type=positive_float, default=60.0, help="event-time speed-up (60)"
    )
    parser.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    parser.add_argument("--dir", type=Path, default=Path(".dev"), help="state directory")
    parser.add_argument("--plain", action="store_true", help="no screen redraws (for logs/CI)")


@dataclass(frozen=True, slots=True)
class Stack:
    mqtt_url: str
    influx_url: str
    database: str
    own: bool
    # Comma-separated, as ENVNET_ALERTMANAGER_URL; the first one's UI is shown.
    alertmanager_urls: str = ""

    @property
    def alertmanager_ui(self) -> str:
        first = self.alertmanager_urls.split(",")[0].strip()
        return f"{first.rstrip('/')}/#/alerts" if first else ""


# The example config beside the code (a source checkout, where `make demo` runs).
ALERTMANAGER_EXAMPLE: Final = (
    Path(__file__).resolve().parents[1] / "deploy" / "alertmanager" / "alertmanager.yml"
)


@contextlib.contextmanager
def stack(directory: Path) -> Iterator[Stack]:
    """The broker and database: the environment's if it names both, else our own; and the
    environment's Alertmanager if ENVNET_ALERTMANAGER_URL names one, else our own."""
    with contextlib.ExitStack() as own:
        am_urls = os.environ.get("ENVNET_ALERTMANAGER_URL", "").strip()
        if not am_urls:
            if not ALERTMANAGER_EXAMPLE.exists():
                msg = f"{ALERTMANAGER_EXAMPLE} not found: set ENVNET_ALERTMANAGER_URL"
                raise ServiceError(msg)
            config = local_alertmanager_config(ALERTMANAGER_EXAMPLE, directory / "alertmanager")
            am = own.enter_context(Alertmanager(directory / "alertmanager", config))
            am_urls = am.url
        mqtt_url = os.environ.get("ENVNET_MQTT_URL")
        influx_url = os.environ.get("ENVNET_INFLUX_URL")
        database = os.environ.get("ENVNET_INFLUX_DB") or DATABASE
        if mqtt_url and influx_url:
            log.info("using_existing_services", mqtt=parse_mqtt_url(mqtt_url).display)
            yield Stack(mqtt_url, influx_url, database, own=False, alertmanager_urls=am_urls)
            return
        mqtt = own.enter_context(Mosquitto(directory / "mosquitto"))
        influx = own.enter_context(Influxd(directory / "influxdb"))
        yield Stack(mqtt.url, influx.url, database, own=True, alertmanager_urls=am_urls)


def _aggregator_config(path: Path, metrics_port: int, state_dir: Path, fleet: Path) -> None:
    path.write_text(
        "# Written by envnet demo. ENVNET_* variables supply the broker and database.\n"
        f'[fleet]\npath = "{fleet}"\n'
        f'[metrics]\nhost = "127.0.0.1"\nport = {metrics_port}\n'
        f'[state]\ndir = "{state_dir}"\n'
        # Each run starts with no alert state (below), including what the aggregator would
        # otherwise adopt from an earlier run's `alerts` points in a shared InfluxDB.
        "[alerts]\nadopt_lookback_h = 0\n"
        # The simulated fleet runs event time ahead of the clock (--accel): window it all.
        "[alerts.windows]\nmax_future_s = 0\n",
        encoding="utf-8",
    )


def _spawn(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as handle:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            argv, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(process: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_STORED = re.compile(rb"^envnet_readings_stored_total ([0-9.e+]+)$", re.MULTILINE)


def stored_total(metrics_url: str) -> float | None:
    try:
        with urllib.request.urlopen(metrics_url, timeout=1) as response:  # noqa: S310 - loopback
            match = _STORED.search(response.read())
    except (urllib.error.URLError, OSError):
        return None
    return float(match.group(1)) if match else None


def _subscribe(state: DemoState, mqtt_url: str) -> mqtt.Client:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    endpoint = parse_mqtt_url(mqtt_url)
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="")
    if endpoint.username:
        client.username_pw_set(endpoint.username, endpoint.password)
    if endpoint.tls:
        client.tls_set()

    def on_connect(c: mqtt.Client, u: object, f: object, rc: object, p: object) -> None:
        c.subscribe([("envnet/v1/nodes/+/readings", 0), ("envnet/v1/nodes/+/status", 0),
                     ("envnet/v1/alerts/#", 0), ("envnet/v1/alert-events", 0)])  # fmt: skip

    def on_message(c: mqtt.Client, u: object, message: mqtt.MQTTMessage) -> None:
        state.on_message(message.topic, bytes(message.payload))

    client.on_connect = on_connect
    client.on_message = on_message
    client.connect_async(endpoint.host, endpoint.port)
    client.loop_start()
    return client


def fleet_arguments(args: argparse.Namespace, journals: Path, inventory: Path) -> list[str]:
    """`envnet sim fleet`'s arguments for the demo's fleet: a fleet file's, or the city's."""
    which = ["--fleet", str(args.fleet)] if args.fleet else ["--nodes", str(args.nodes or 10)]
    return ["sim", "fleet", *which, "--accel", str(args.accel), "--seed", str(args.seed),
            "--state-dir", str(journals), "--inventory", str(inventory)]  # fmt: skip


def fleet_size(args: argparse.Namespace) -> int:
    """The demo's node count; a bad fleet file is a ConfigError (exit 2) before anything
    starts, not a failed child process."""
    if args.fleet is None:
        return int(args.nodes or 10)
    from simulators.fleet_file import FleetFileError, load_fleet_file

    try:
        return len(load_fleet_file(args.fleet).entries)
    except FleetFileError as exc:
        raise ConfigError(f"--fleet: {exc}") from None


def run_demo(args: argparse.Namespace) -> int:
    args.size = fleet_size(args)
    directory: Path = args.dir.resolve()
    demo_dir = directory / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda s, f: stop.set())
    signal.signal(signal.SIGTERM, lambda s, f: stop.set())
    try:
        with stack(directory) as services:
            return _run(args, services, demo_dir, stop)
    except ServiceError as exc:
        sys.stderr.write(f"envnet demo: {exc}\n")
        return 1


def _run(args: argparse.Namespace, services: Stack, demo_dir: Path, stop: threading.Event) -> int:
    influx_query(services.influx_url, f'CREATE DATABASE "{services.database}"')
    fleet_file = demo_dir / "fleet.toml"
    agg_file = demo_dir / "agg.toml"
    metrics_port = free_port()
    # Each run starts with no alert state: alerts saved as firing by an earlier run would not
    # fire again, and a second `make demo` would show no alert event and exit 1.
    alert_state = demo_dir / "aggregator-state"
    if alert_state.exists():
        shutil.rmtree(alert_state)
    _aggregator_config(agg_file, metrics_port, alert_state, fleet_file)
    env = {
        **os.environ,
        "ENVNET_MQTT_URL": services.mqtt_url,
        "ENVNET_INFLUX_URL": services.influx_url,
        "ENVNET_INFLUX_DB": services.database,
        "ENVNET_ALERTMANAGER_URL": services.alertmanager_urls,
    }
    cli = [sys.executable, "-m", "envnet.cli"]
    fleet_args = fleet_arguments(args, demo_dir / "journals", fleet_file)
    subprocess.run([*cli, *fleet_args, "--inventory-only"], env=env, check=True)  # noqa: S603
    aggregator = _spawn([*cli, "aggregator", "--config", str(agg_file)], env,
                        demo_dir / "aggregator.log")  # fmt: skip
    fleet = _spawn([*cli, *fleet_args], env, demo_dir / "fleet.log")
    state = DemoState()
    client = _subscribe(state, services.mqtt_url)
    print(influx_hints(services), flush=True)
    print(alertmanager_hint(services), flush=True)
    try:
        _watch(args, services, state, f"http://127.0.0.1:{metrics_port}/metrics", stop)
    finally:
        _stop(fleet)
        _stop(aggregator)
        client.loop_stop()
    return _summary(services, state, demo_dir, args.until_alert)


def _watch(args: argparse.Namespace, services: Stack, state: DemoState, metrics_url: str,
           stop: threading.Event) -> None:  # fmt: skip
    deadline = None if args.duration is None else time.monotonic() + args.duration
    redraw = sys.stdout.isatty() and not args.plain
    every_s = 1.0 if redraw else 5.0
    last_total, last_at = 0.0, time.monotonic()
    header = (f"envnet demo: {args.size} simulated nodes at {args.accel:g}x event time; "
              f"broker {parse_mqtt_url(services.mqtt_url).display}, influx {services.influx_url}; "
              "Ctrl-C stops")  # fmt: skip
    next_frame = last_at + every_s
    while not stop.wait(_TICK_S):
        now = time.monotonic()
        done = (deadline is not None and now >= deadline) or (
            args.until_alert is not None and args.until_alert in state.fired_rules()
        )
        if now < next_frame and not done:
            continue
        next_frame = now + every_s
        total = stored_total(metrics_url) or last_total
        rate = (total - last_total) / max(now - last_at, 1e-6)
        last_total, last_at = total, now
        text = render(state, stored_per_s=rate, stored_total=total, header=header)
        if redraw:
            text += "\n\n" + influx_hints(services) + "\n" + alertmanager_hint(services)
        sys.stdout.write((CLEAR + text + "\n") if redraw else (text + "\n\n"))
        sys.stdout.flush()
        if done:
            break


def alertmanager_hint(services: Stack) -> str:
    return (
        f"alerts reach Alertmanager: its UI at {services.alertmanager_ui} "
        f"(or `amtool --alertmanager.url={services.alertmanager_urls.split(',')[0]} alert`)"
    )


def influx_hints(services: Stack) -> str:
    host, _, port = services.influx_url.split("//", 1)[1].partition(":")
    cli = f"influx -host {host} -port {port or 8086} -database {services.database} -execute"
    return (
        "query the stored data with the influx CLI while the demo runs, e.g.:\n"
        f"  {cli} 'SELECT count(value) FROM readings GROUP BY quantity'\n"
        f"  {cli} 'SELECT node, rule, event, message FROM alerts ORDER BY time DESC LIMIT 10'"
    )


def _summary(services: Stack, state: DemoState, demo_dir: Path, wanted: str | None) -> int:
    result = influx_query(
        services.influx_url, "SELECT count(value) FROM readings", services.database
    )
    stored = _first_count(result)
    rules = state.fired_rules()
    fired = sum(rules.values())
    print(f"\nstored readings: {stored}; alert events seen: {fired}; logs in {demo_dir}")
    if rules:
        print("alerts fired: " + ", ".join(f"{r} x{n}" for r, n in sorted(rules.items())))
    if services.own:
        # Its own broker, influxd and Alertmanager stop as it exits: pointing at their ports
        # now would send the reader to nothing (the hints were printed at the start).
        print(
            f"(the demo's own services stop now; influxd's data stays in "
            f"{demo_dir.parent}/influxdb)"
        )
    else:
        print(influx_hints(services))
        print(alertmanager_hint(services))
    if wanted is not None and wanted not in rules:
        print(f"no {wanted} alert fired")
        return 1
    return 0 if stored and fired else 1


def _first_count(result: dict[str, object]) -> int:
    """The first value of an InfluxQL `SELECT count(...)` result, 0 if there is none."""
    results = result.get("results")
    if not isinstance(results, list) or not results or not isinstance(results[0], dict):
        return 0
    series = results[0].get("series")
    if not isinstance(series, list) or not series:
        return 0
    values = series[0].get("values")
    return int(values[0][1]) if isinstance(values, list) and values else 0

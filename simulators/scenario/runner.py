"""Plays a scenario through real edge agents and the real aggregator: the I/O shell.

1. The stack: the services ENVNET_MQTT_URL and ENVNET_INFLUX_URL name (into a database of
   the run's own), or our own mosquitto and influxd on free ports under the work directory.
2. The aggregator, `envnet aggregator` as a child process, on the scenario's clock: event
   time = origin + accel × (wall − anchor). The anchor lies `lead_s` ahead of the moment
   its config is written, so that the aggregator is up before the scenario's time begins;
   one that is not (a slow machine) is started again with twice the lead.
3. At the anchor, every node starts on the same scaled clock: simulated nodes as full edge
   agents (journal, MQTT, acks) on simulated drivers with their perturbations, replays as
   edge agents whose producer is the CSV. Offline events stop and restart a node's agent;
   link outages cut its connection at a TCP proxy (simulators.link_proxy), so the broker
   sees a lost connection and publishes the node's will.
4. After `duration_s` of event time (and every replay's last row), each node drains its
   journal and stops cleanly; once the aggregator is quiet, its alert events are read from
   InfluxDB and judged (simulators.scenario.verdict).

Values are a pure function of (seed, event time), so a run is deterministic up to when
the machine delivers them; the aggregator's delay limits are widened to absorb that
(simulators.scenario.plan.timing_settings).
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from edge.clock import ScaledClock
from edge.config import EdgeConfig, JournalSection, MqttSection, NodeSection, SensorSection
from schemas.runtime.logs import get_logger
from schemas.runtime.toml_text import dumps
from simulators.fleet import FleetSettings, edge_config, inventory_toml
from simulators.link_proxy import LinkProxy
from simulators.local_stack import (
    EnvnetAggregator,
    Influxd,
    Mosquitto,
    ServiceError,
    free_port,
    influx_query,
)
from simulators.replay_csv import CsvReplay, ReplayFileError
from simulators.scenario.nodes import NodeStopError, ScenarioNode
from simulators.scenario.observed import ALERTS_QUERY, Timeline, observed_events
from simulators.scenario.plan import Action, Plan, aggregator_settings, inventory_nodes, plan
from simulators.scenario.results import RunFacts
from simulators.scenario.spec import ReplayEntry, ScenarioSpec
from simulators.scenario.verdict import Observed, Verdict, judge

log = get_logger("simulators.scenario")

# How often the run loop looks at the scenario clock (wall seconds).
_TICK_S: Final = 0.05
_LEAD_TRIES: Final = 3
_START_TRIES: Final = 3

# Event seconds played so far.
ProgressCallback = Callable[[float], None]


class RunError(RuntimeError):
    """A scenario that could not be played: a service did not start, a node did not drain."""


@dataclass(frozen=True, slots=True)
class RunSettings:
    workdir: Path
    strict: bool = False
    # Wall seconds between writing the aggregator's config and the scenario's origin.
    lead_s: float = 6.0
    # Wall seconds the nodes get to drain and the aggregator to fall quiet at the end.
    settle_timeout_s: float = 240.0
    # The aggregator is quiet once its counts stay unchanged this long (wall seconds).
    quiet_s: float = 2.0


@dataclass(frozen=True, slots=True)
class RunOutcome:
    facts: RunFacts
    observed: tuple[Observed, ...]
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class _Services:
    mqtt_url: str
    influx_url: str
    database: str


@contextlib.contextmanager
def _services(workdir: Path, environ: Mapping[str, str]) -> Iterator[_Services]:
    mqtt_url, influx_url = environ.get("ENVNET_MQTT_URL"), environ.get("ENVNET_INFLUX_URL")
    if mqtt_url and influx_url:
        # A database of the run's own: another run's alerts are not this one's.
        yield _Services(mqtt_url, influx_url, f"scenario_{secrets.token_hex(4)}")
        return
    with contextlib.ExitStack() as stack:
        mqtt, influx = _own_services(workdir, stack)
        yield _Services(mqtt.url, influx.url, "envnet")


def _own_services(workdir: Path, stack: contextlib.ExitStack) -> tuple[Mosquitto, Influxd]:
    """Our mosquitto and influxd. A free port can be taken by another process between being
    found and being bound (runs started side by side): a start that fails is tried again."""
    for attempt in range(_START_TRIES):
        try:
            mqtt = stack.enter_context(Mosquitto(workdir / f"mosquitto-{attempt}"))
            influx = stack.enter_context(Influxd(workdir / f"influxdb-{attempt}"))
        except ServiceError as exc:
            log.warning("scenario_service_retry", attempt=attempt, error=str(exc)[:200])
            stack.close()
            continue
        return mqtt, influx
    raise RunError(f"mosquitto or influxd did not start, {_START_TRIES} times (see {workdir})")


class ScenarioRunner:
    def __init__(
        self,
        spec: ScenarioSpec,
        settings: RunSettings,
        environ: Mapping[str, str],
        stop: threading.Event,
        progress: ProgressCallback | None = None,
    ) -> None:
        self._spec = spec
        self._s = settings
        self._environ = environ
        self._stop = stop
        self._progress = progress or (lambda done_s: None)

    def run(self) -> RunOutcome:
        started = time.monotonic()
        workdir = self._s.workdir
        if workdir.exists():
            shutil.rmtree(workdir)
        workdir.mkdir(parents=True)
        origin_ms = self._origin_ms()
        the_plan = plan(self._spec, origin_ms)
        with _services(workdir, self._environ) as services, contextlib.ExitStack() as stack:
            influx_query(services.influx_url, f'CREATE DATABASE "{services.database}"')
            aggregator, clock = self._start_aggregator(the_plan, services, stack)
            proxies = self._proxies(the_plan, services, stack)
            nodes = self._nodes(the_plan, services, proxies)
            stored = self._play(the_plan, nodes, proxies, clock, aggregator)
            result = influx_query(services.influx_url, ALERTS_QUERY, services.database)
        observed = tuple(observed_events(result, self._timelines(the_plan, nodes)))
        verdict = judge(self._spec.expects, observed, self._s.strict)
        facts = RunFacts(
            name=self._spec.header.name,
            source=str(self._spec.source),
            wall_s=time.monotonic() - started,
            origin_ms=origin_ms,
            readings_stored=stored,
        )
        return RunOutcome(facts, observed, verdict)

    # -- set-up ------------------------------------------------------------------------------

    def _origin_ms(self) -> int:
        start = self._spec.header.start
        if start is not None:
            return int(start.timestamp() * 1000)
        # Now, to the whole minute: readings then fall on clock minutes, as a Pi's do.
        now = time.time_ns() // 1_000_000
        return now - now % 60_000

    def _start_aggregator(
        self, the_plan: Plan, services: _Services, stack: contextlib.ExitStack
    ) -> tuple[EnvnetAggregator, ScaledClock]:
        lead_s = self._s.lead_s
        failures: list[str] = []
        for _ in range(_LEAD_TRIES):
            anchor_ms = time.time_ns() // 1_000_000 + int(lead_s * 1000)
            aggregator = self._aggregator(the_plan, services, anchor_ms)
            try:
                aggregator.start()
            except ServiceError as exc:
                # Its metrics port may have been taken meanwhile (see _own_services).
                aggregator.stop()
                failures.append(str(exc)[-2000:])
                continue
            wait_s = (anchor_ms - time.time_ns() // 1_000_000) / 1000.0
            if wait_s > 0:
                stack.callback(aggregator.stop)
                # A wait for an instant fixed in advance (the anchor), not for an event.
                time.sleep(wait_s)
                return aggregator, ScaledClock(the_plan.origin_ms, self._spec.header.accel)
            log.warning("scenario_lead_too_short", lead_s=lead_s, late_s=-wait_s)
            aggregator.stop()
            lead_s *= 2
        if failures:
            raise RunError(f"the aggregator did not start: {failures[-1]}")
        raise RunError(f"the aggregator took longer than {lead_s / 2:g} s to start, 3 times")

    def _aggregator(self, the_plan: Plan, services: _Services, anchor_ms: int) -> EnvnetAggregator:
        workdir = self._s.workdir
        fleet_path = workdir / "fleet.toml"
        nodes = inventory_nodes(self._spec, the_plan.nodes)
        fleet_path.write_text(inventory_toml(nodes), encoding="utf-8")
        state = workdir / "aggregator-state"
        if state.exists():
            shutil.rmtree(state)
        port = free_port()
        settings = aggregator_settings(
            self._spec, fleet_path=str(fleet_path), state_dir=str(state), metrics_port=port,
            origin_ms=the_plan.origin_ms, anchor_wall_ms=anchor_ms,
        )  # fmt: skip
        config = workdir / "agg.toml"
        config.write_text(dumps(settings), encoding="utf-8")
        env = {
            **self._environ,
            "ENVNET_MQTT_URL": services.mqtt_url,
            "ENVNET_INFLUX_URL": services.influx_url,
            "ENVNET_INFLUX_DB": services.database,
        }
        env.pop("ENVNET_ALERTMANAGER_URL", None)  # a scenario pages nobody
        return EnvnetAggregator(workdir / "aggregator", config, port, env)

    def _proxies(
        self, the_plan: Plan, services: _Services, stack: contextlib.ExitStack
    ) -> dict[str, LinkProxy]:
        return {
            n: stack.enter_context(LinkProxy.for_url(services.mqtt_url))
            for n in sorted(the_plan.cut_nodes)
        }

    def _nodes(
        self, the_plan: Plan, services: _Services, proxies: Mapping[str, LinkProxy]
    ) -> dict[str, ScenarioNode]:
        journals = self._s.workdir / "journals"
        nodes: dict[str, ScenarioNode] = {}
        for spec in the_plan.nodes:
            proxy = proxies.get(spec.node)
            url = proxy.url_for(services.mqtt_url) if proxy is not None else services.mqtt_url
            settings = FleetSettings(
                mqtt_url=url,
                state_dir=journals,
                sample_interval_s=self._spec.sample_interval_s,
                report_interval_s=self._spec.header.report_interval_s,
                ack_timeout_s=10.0,
                status_interval_s=5.0,
            )
            config = self._reconnecting(edge_config(spec, settings))
            nodes[spec.node] = ScenarioNode(spec.node, config, None, self._end_ms(the_plan))
        for replay in self._spec.replays:
            nodes[replay.node] = self._replay_node(replay, services.mqtt_url, the_plan, journals)
        return nodes

    def _reconnecting(self, config: EdgeConfig) -> EdgeConfig:
        """A node's reconnect backoff, scaled to the scenario's clock: a Pi retries within a
        minute of event time (edge/config.py's cap), and so does a node here."""
        accel = self._spec.header.accel
        mqtt = msgspec.structs.replace(
            config.mqtt,
            reconnect_initial_s=min(config.mqtt.reconnect_initial_s, 0.1),
            reconnect_cap_s=max(0.5, config.mqtt.reconnect_cap_s / accel),
        )
        return msgspec.structs.replace(config, mqtt=mqtt)

    def _replay_node(
        self, replay: ReplayEntry, mqtt_url: str, the_plan: Plan, journals: Path
    ) -> ScenarioNode:
        try:
            # The agent's clock is the scenario's: one data second per clock second, so a
            # row is due when its hour has passed in scenario time (CsvReplay).
            producer = CsvReplay(
                self._spec.csv_path(replay),
                sensor=replay.sensor,
                start_ms=the_plan.origin_ms,
                speed=1.0,
                date_from=replay.first_day,
                date_to=replay.last_day,
            )
        except (ReplayFileError, OSError, ValueError) as exc:
            raise RunError(f"replay {replay.csv}: {exc}") from None
        config = EdgeConfig(
            node=NodeSection(id=replay.node),
            sensors=[SensorSection(id=replay.sensor, driver="replay-csv")],
            mqtt=MqttSection(url=mqtt_url, ack_timeout_s=10.0, status_interval_s=5.0),
            journal=JournalSection(path=str(journals / f"{replay.node}.sqlite")),
        )
        return ScenarioNode(
            replay.node, self._reconnecting(config), producer, self._end_ms(the_plan)
        )

    # -- the run -----------------------------------------------------------------------------

    def _play(
        self,
        the_plan: Plan,
        nodes: Mapping[str, ScenarioNode],
        proxies: Mapping[str, LinkProxy],
        clock: ScaledClock,
        aggregator: EnvnetAggregator,
    ) -> int:
        for node in nodes.values():
            node.start(clock)
        actions = list(the_plan.actions)
        end_ms = self._end_ms(the_plan)
        total_s = self._spec.header.duration_s
        try:
            while not self._stop.wait(_TICK_S):
                now = clock.now_ms()
                while actions and actions[0].at_ms <= now:
                    self._act(actions.pop(0), nodes, proxies, clock)
                self._progress(min((now - the_plan.origin_ms) / 1000.0, total_s))
                if not aggregator.alive():
                    raise RunError(f"the aggregator exited (log: {aggregator.log_path})")
                if now >= end_ms and actions == [] and self._replays_done(nodes):
                    break
            for proxy in proxies.values():
                proxy.restore()
            self._drain(nodes)
        finally:
            self._stop_nodes(nodes)
        return self._quiet(aggregator)

    def _stop_nodes(self, nodes: Mapping[str, ScenarioNode]) -> None:
        try:
            for node in nodes.values():
                node.stop()
        except NodeStopError as exc:
            raise RunError(str(exc)) from None

    def _act(
        self,
        action: Action,
        nodes: Mapping[str, ScenarioNode],
        proxies: Mapping[str, LinkProxy],
        clock: ScaledClock,
    ) -> None:
        log.info("scenario_action", node=action.node, action=action.kind, at_ms=action.at_ms)
        node = nodes[action.node]
        if action.kind == "offline":
            self._stop_nodes({action.node: node})
        elif action.kind == "online":
            node.start(clock)
        elif action.kind == "cut":
            proxies[action.node].cut()
        else:
            proxies[action.node].restore()

    def _replays_done(self, nodes: Mapping[str, ScenarioNode]) -> bool:
        return all(n.replay is None or n.replay.exhausted for n in nodes.values())

    def _drain(self, nodes: Mapping[str, ScenarioNode]) -> None:
        deadline = time.monotonic() + self._s.settle_timeout_s
        while any(n.running and n.depth() > 0 for n in nodes.values()):
            if time.monotonic() > deadline or self._stop.is_set():
                left = {n.node: n.depth() for n in nodes.values() if n.depth() > 0}
                raise RunError(f"journals not drained after {self._s.settle_timeout_s:g} s: {left}")
            time.sleep(_TICK_S)

    def _quiet(self, aggregator: EnvnetAggregator) -> int:
        """Wait until the aggregator has stored what it will: nothing queued, and its stored
        readings and fired or resolved transitions unchanged for `quiet_s` (re-notifications
        go on, on the scenario's fast clock, and are not judged). Returns readings stored."""
        deadline = time.monotonic() + self._s.settle_timeout_s
        last: tuple[float | None, ...] = ()
        since = time.monotonic()
        while time.monotonic() < deadline and not self._stop.is_set():
            counts = (
                aggregator.metric("envnet_readings_stored_total"),
                aggregator.metric("envnet_alert_transitions_total", event="fired"),
                aggregator.metric("envnet_alert_transitions_total", event="resolved"),
                aggregator.metric("envnet_queue_depth"),
                aggregator.metric("envnet_mqtt_backlog"),
            )
            if counts != last:
                last, since = counts, time.monotonic()
            elif counts[3] == counts[4] == 0 and time.monotonic() - since >= self._s.quiet_s:
                return int(counts[0] or 0)
            time.sleep(_TICK_S * 4)
        raise RunError(f"the aggregator did not fall quiet within {self._s.settle_timeout_s:g} s")

    def _end_ms(self, the_plan: Plan) -> int:
        return the_plan.origin_ms + int(self._spec.header.duration_s * 1000)

    def _timelines(self, the_plan: Plan, nodes: Mapping[str, ScenarioNode]) -> dict[str, Timeline]:
        end_ms = self._end_ms(the_plan)
        timelines = {n.node: Timeline(the_plan.origin_ms, end_ms) for n in the_plan.nodes}
        for node in nodes.values():
            if node.replay is not None:
                first = node.replay.first_row_ms
                timelines[node.node] = Timeline(first if first is not None else 0, None)
        return timelines

"""Replicas sharing one state file: each loads and saves its own nodes' alert tracks, so a
moved node's open alert is found by its new owner; commands for other nodes are ignored."""

from __future__ import annotations

import threading
from pathlib import Path

from aggregator.cluster.partition import Replica
from aggregator.config import AlertsSection
from aggregator.engine.lifecycle import Transition
from aggregator.engine.observations import Observation, Rule
from aggregator.fleet import Fleet, NodeInfo
from aggregator.metrics import Metrics
from aggregator.worker.alerting import Alerting
from aggregator.worker.state_store import StateStore
from schemas import codec
from schemas.messages import ALERT_COMMAND_SCHEMA, AlertCommand

RULE = Rule("odour.h2s", "exceedance", "warning", "h2s", "GB 14554-93", "Table 1", 60)
NOW = 1_800_000_000_000
NODES = [f"plant-{i}" for i in range(8)]
FLEET = Fleet({n: NodeInfo(site=f"Plant {n}", odour_grade="II-new") for n in NODES})


def owned(replica: Replica) -> Fleet:
    return Fleet({i.node: i for i in FLEET if replica.owns(i.node)})


def alerting(replica: Replica, events: list[Transition], metrics: Metrics) -> Alerting:
    return Alerting(
        AlertsSection(), owned(replica), metrics, lambda lines: None, events.append,
        replica=replica,
    )  # fmt: skip


def fire(a: Alerting, node: str) -> None:
    info = FLEET.get(node)
    assert info is not None
    a.book.apply(Observation(RULE, node, True, 90, 60, NOW, False, "m"), info, NOW)


def firing(a: Alerting) -> set[str]:
    return {alert.node for alert in a.book.firing()}


def test_a_moved_nodes_open_alert_is_found_by_its_new_owner(tmp_path: Path) -> None:
    one = alerting(Replica(0, 1), [], Metrics())
    one.open(tmp_path)
    for node in NODES:
        fire(one, node)
    one.close()
    # Two replicas on the same file: each finds the open alerts of its own nodes only.
    pair = [alerting(Replica(i, 2), [], Metrics()) for i in range(2)]
    for a in pair:
        a.open(tmp_path)
    found = [firing(a) for a in pair]
    assert found[0] | found[1] == set(NODES) and not found[0] & found[1]
    assert all(Replica(i, 2).owns(n) for i in (0, 1) for n in found[i])
    # Replica 1 retires one of its nodes (resolves it); replica 0's rows are untouched.
    gone = sorted(found[1])[0]
    pair[1].reload(Fleet({i.node: i for i in owned(Replica(1, 2)) if i.node != gone}), NOW)
    for a in pair:
        a.close()
    again = alerting(Replica(0, 1), [], Metrics())
    again.open(tmp_path)
    assert firing(again) == set(NODES) - {gone}
    again.close()


def test_only_the_owner_acts_on_an_alert_command(tmp_path: Path) -> None:
    node = next(n for n in NODES if Replica(1, 2).owns(n))
    command = codec.ALERT_COMMAND.encode(
        AlertCommand(ALERT_COMMAND_SCHEMA, "ack", node, RULE.id, "ops")
    )
    results = []
    for index in (0, 1):
        events: list[Transition] = []
        metrics = Metrics()
        a = alerting(Replica(index, 2), events, metrics)
        a.open(tmp_path / str(index))
        if index == 1:
            fire(a, node)
        a.command(command)
        a.command(b"{}")
        count = metrics.registry.get_sample_value
        results.append(
            (
                [t.event for t in events],
                count("envnet_alert_commands_total", {"result": "accepted"}),
                count("envnet_alert_commands_total", {"result": "refused"}),
                count("envnet_alert_commands_total", {"result": "invalid"}),
            )
        )
        a.close()
    # Replica 0 neither acts nor refuses (not its node) but counts the invalid one.
    assert results == [([], None, None, 1.0), (["acknowledged"], 1.0, None, None)]


def open_together(path: Path, count: int) -> list[BaseException]:
    """`count` threads open a new state file at the same moment; what they raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def open_store() -> None:
        start.wait()
        try:
            StateStore(path).close()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return errors


def test_replicas_creating_the_state_file_at_once_all_open_it(tmp_path: Path) -> None:
    # Without the retry, two runs of four failed here with "database is locked" (tried).
    for attempt in range(10):
        assert open_together(tmp_path / f"state-{attempt}.sqlite", 4) == []

"""Two partitioned aggregator replicas on a three-server NATS cluster (each server an MQTT
broker, nats_cluster in tests/integration/conftest.py): replica 0 at home on server 0,
replica 1 on server 1, the nodes publishing to server 2. NATS' MQTT is 3.1.1 only, with
persistent sessions and retained messages in JetStream. Both ways a replica reads readings
(docs/cluster/replicas.md) are run: per-node subscriptions, the broker sending each reading
to its owner only, and the wildcard, every replica receiving every reading and skipping the
foreign ones. Either way every reading is stored once, by its owner, and the alerts are the
episodes' (the same as one replica's on mosquitto, tests/integration/cluster/test_replicas.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.local_stack import Influxd, NatsCluster
from tests.support.harness import wait_for
from tests.support.replicas import (
    HOURS,
    NODES,
    READINGS_PER_MESSAGE,
    Site,
    alert_rows,
    expected_alerts,
    feeds,
    log_clean,
    metric,
    origin,
    other_alert_events,
    owners,
    start_replica,
    stored_per_node,
)


@pytest.mark.parametrize("readings", ["per-node", "wildcard"])
def test_two_replicas_on_a_nats_cluster_split_the_fleet(
    nats_cluster: NatsCluster, influxd: Influxd, tmp_path: Path, readings: str
) -> None:
    t0 = origin()
    split = owners(2)
    urls = nats_cluster.urls
    # One database per case: influxd is shared by the session's tests.
    db, client = f"nats_{readings.replace('-', '_')}", f"agg-nats-{readings}"
    influxd.query(f'CREATE DATABASE "{db}"')
    site = Site(tmp_path / "nats-site", urls[0], influxd.url, db, client, readings)
    full = {node: HOURS * READINGS_PER_MESSAGE for node in NODES}
    node_port = int(urls[2].rsplit(":", 1)[1])
    r0 = start_replica(site, "0/2", mqtt_urls=",".join(urls))
    try:
        r1 = start_replica(site, "1/2", mqtt_urls=",".join([urls[1], urls[2], urls[0]]))
    except BaseException:
        r0.stop()
        raise
    try:
        with feeds(node_port, t0) as fleet:
            fleet.publish_hours(NODES, range(1, HOURS + 1))
            fleet.settle(NODES, ack_timeout_s=20, timeout_s=90)
            wait_for(lambda: stored_per_node(influxd.url, db) == full, 60, "stored")
            try:
                wait_for(
                    lambda: alert_rows(influxd.url, db) == expected_alerts(t0),
                    60,
                    "the episodes' alerts",
                )
            except AssertionError as exc:
                got, want = set(alert_rows(influxd.url, db)), set(expected_alerts(t0))
                detail = f"missing {sorted(want - got)}, unexpected {sorted(got - want)}"
                raise AssertionError(f"{exc}: {detail}") from None
            for agg, mine in ((r0, split[0]), (r1, split[1])):
                stored = metric(agg, "envnet_readings_stored_total")
                assert stored == len(mine) * HOURS * READINGS_PER_MESSAGE
                # The wildcard brings each replica the other's messages (one per node-hour and
                # per copy sent again), and it skips them. Not an exact count: on a loaded
                # machine nats-server may deliver a copy late or, seen, not at all (settle).
                others = [n for n in NODES if n not in mine]
                sent = sum(HOURS + fleet.resent.get(n, 0) for n in others)
                skipped = metric(agg, "envnet_replica_foreign_messages_total", kind="readings")
                assert (0 < skipped <= sent) if readings == "wildcard" else skipped == 0
    finally:
        r0.stop()
        r1.stop()
    assert log_clean(r0)() and log_clean(r1)()
    assert other_alert_events(influxd.url, db) == []

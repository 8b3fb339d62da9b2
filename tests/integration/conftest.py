"""Integration tests: everything under tests/integration/ starts real processes (mosquitto,
influxd, victoria-metrics, a three-server nats-server cluster, the aggregator, edge agents,
`envnet` subprocesses, pty device simulators, the installer). The fixtures here start the
services on free ports, with data in the test's temporary directory. Nothing here is a fake.

Every test in this folder gets the `integration` marker here, so `pytest -m "not integration"`
is the fast suite and no file has to remember its own marker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.local_stack import (
    Influxd,
    Mosquitto,
    NatsCluster,
    ServiceError,
    VictoriaMetrics,
    find_binary,
)

HERE = Path(__file__).resolve().parent
CLUSTER = HERE / "cluster"
# Seconds; the slowest cluster test took 40 s here with both cores busy (load 6 to 12).
CLUSTER_TEST_TIMEOUT_S = 180
DATABASE = "envnet"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.integration)
        if item.path.is_relative_to(CLUSTER):
            # The longest tests: three nats-server processes, replicated JetStream, SIGKILLs.
            # Each is bounded well below the suite's default timeout, so a hung cluster fails
            # the one test in minutes instead of eating CI's 20.
            item.add_marker(pytest.mark.cluster)
            item.add_marker(pytest.mark.timeout(CLUSTER_TEST_TIMEOUT_S))


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "mosquitto") as broker:
        yield broker


@pytest.fixture
def influxd(tmp_path: Path) -> Iterator[Influxd]:
    with Influxd(tmp_path / "influxd") as server:
        server.query(f'CREATE DATABASE "{DATABASE}"')
        yield server


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    with VictoriaMetrics(tmp_path / "victoria") as server:
        yield server


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """Three nats-server processes, one JetStream cluster, each an MQTT broker. Per test:
    the cluster tests kill and restart its servers, and it starts in about 3 s."""
    try:
        find_binary("nats-server")
    except ServiceError:
        pytest.skip("nats-server is not installed (make os-packages installs Debian's nats-server)")
    with NatsCluster(tmp_path / "nats") as cluster:
        yield cluster

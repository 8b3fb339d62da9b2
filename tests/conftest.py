"""Fixtures that start real mosquitto, influxd and victoria-metrics processes on free ports,
with data in the test's temporary directory. Nothing here is a fake."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from simulators.local_stack import Influxd, Mosquitto, VictoriaMetrics

# No per-example deadline: these machines are shared and noisy, and a slow example is not a
# wrong one. Property tests still fail on any counterexample.
settings.register_profile(
    "envnet", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("envnet")

DATABASE = "envnet"


def pytest_configure(config: pytest.Config) -> None:
    # The services are Debian packages; `make test` installs them. Fail loudly, don't skip:
    # an integration test that silently does not run is a test that cannot fail.
    os.environ.setdefault("PYTHONHASHSEED", "0")


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

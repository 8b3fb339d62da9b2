"""The test suite's root: the hypothesis profile, and the rule that keeps the fast suite fast.

Tests mirror the code: tests/unit/<package>/ runs in this process with no services;
tests/integration/ starts real processes, and its conftest marks every test there
`integration` and provides the service fixtures (mosquitto, influxd, victoria). A test outside
tests/integration/ that asks for one of those fixtures is in the wrong place: it is marked
`integration` too, so that `-m "not integration"` never starts a service, and it fails, saying
where it belongs. Helpers shared by tests are in tests/support/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# No per-example deadline: these machines are shared and noisy, and a slow example is not a
# wrong one. Property tests still fail on any counterexample.
settings.register_profile(
    "envnet", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("envnet")

INTEGRATION = Path(__file__).resolve().parent / "integration"
SERVICE_FIXTURES = frozenset({"mosquitto", "influxd", "victoria"})
MISPLACED = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    # The services are Debian packages; `make test` installs them. Fail loudly, don't skip:
    # an integration test that silently does not run is a test that cannot fail.
    os.environ.setdefault("PYTHONHASHSEED", "0")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        wanted = SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if wanted and not item.path.is_relative_to(INTEGRATION):
            item.add_marker(pytest.mark.integration)
            item.stash[MISPLACED] = (
                f"{item.nodeid} starts {', '.join(sorted(wanted))}: "
                "a test that starts a service belongs under tests/integration/"
            )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if MISPLACED in item.stash:
        pytest.fail(item.stash[MISPLACED], pytrace=False)

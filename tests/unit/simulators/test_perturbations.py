"""Scripted perturbations of the simulated drivers: kinds, overlaps, validation, purity, and
what a stuck sensor looks like after the edge sampler and to the aggregator's health check."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.engine.sensor_health import HealthMonitor
from edge.drivers.base import SensorTimeoutError
from edge.sampler import Sampler
from schemas.messages import Reading
from schemas.quantities import SPECS
from simulators.drivers import SimNoiseDriver, SimOdourDriver, SimWaterDriver

T0 = 1_780_243_200_000  # 2026-06-01T00:00Z
MIN = 60_000


def odour(*perturbations: Mapping[str, Any], seed: int = 7) -> SimOdourDriver:
    return SimOdourDriver(
        "fence", {"seed": seed, "origin_ms": T0, "perturbations": list(perturbations)}
    )


def values(
    driver: SimOdourDriver | SimWaterDriver | SimNoiseDriver, at_ms: int
) -> dict[str, float]:
    return {s.quantity: s.value for s in driver.read(at_ms)}


PLAIN = odour()
STEP = {"kind": "step", "quantity": "h2s", "start_s": 600, "duration_s": 600, "value": 250.0}


# -- the kinds ----------------------------------------------------------------------------------


def shifted(at_ms: int, start_ms: int = T0 + 10 * MIN, level: float = 250.0) -> float:
    """A step's reading: its level, plus the model's own change since the step began."""
    return level + values(PLAIN, at_ms)["h2s"] - values(PLAIN, start_ms)["h2s"]


def test_a_step_shifts_the_level_inside_its_interval_only() -> None:
    driver = odour(STEP)
    assert values(driver, T0 + 10 * MIN)["h2s"] == 250.0
    assert values(driver, T0 + 20 * MIN - 1)["h2s"] == pytest.approx(shifted(T0 + 20 * MIN - 1))
    # The model's own variation stays on top: a step is not a stuck sensor.
    levels = {values(driver, T0 + 10 * MIN + k * 60_000)["h2s"] for k in range(10)}
    assert len(levels) > 1
    for t in (T0 + 10 * MIN - 1, T0 + 20 * MIN, T0):
        assert values(driver, t) == values(PLAIN, t)
    # The other quantities of the sensor are untouched inside the interval.
    inside = values(driver, T0 + 15 * MIN)
    plain = values(PLAIN, T0 + 15 * MIN)
    assert (inside["nh3"], inside["odour"]) == (plain["nh3"], plain["odour"])


def test_a_ramp_runs_from_the_model_at_its_start_to_its_value_then_returns() -> None:
    ramp = {**STEP, "kind": "ramp", "value": 1000.0}
    driver = odour(ramp)
    begin = values(PLAIN, T0 + 10 * MIN)["h2s"]
    assert values(driver, T0 + 10 * MIN)["h2s"] == pytest.approx(begin)
    assert values(driver, T0 + 15 * MIN)["h2s"] == pytest.approx((begin + 1000.0) / 2)
    assert values(driver, T0 + 20 * MIN - 1)["h2s"] == pytest.approx(1000.0, rel=1e-5)
    assert values(driver, T0 + 20 * MIN) == values(PLAIN, T0 + 20 * MIN)


def test_a_spike_reads_its_value() -> None:
    spike = {"kind": "spike", "quantity": "odour", "start_s": 60, "duration_s": 60, "value": 99.5}
    driver = odour(spike)
    assert values(driver, T0 + 90_000)["odour"] == 99.5
    assert values(driver, T0 + 120_000) == values(PLAIN, T0 + 120_000)


def test_a_stuck_sensor_repeats_the_model_value_of_its_start_instant() -> None:
    stuck = {"kind": "stuck", "quantity": "h2s", "start_s": 600, "duration_s": 3600}
    driver = odour(stuck)
    frozen = values(PLAIN, T0 + 10 * MIN)["h2s"]
    seen = {values(driver, T0 + 10 * MIN + k * 7_919)["h2s"] for k in range(400)}
    assert seen == {frozen}
    # The model itself moves over that hour, so the test would see a broken freeze.
    assert len({values(PLAIN, T0 + 10 * MIN + k * 7_919)["h2s"] for k in range(400)}) > 1


def test_a_stuck_sensor_with_a_value_repeats_that_value() -> None:
    driver = odour({"kind": "stuck", "quantity": "nh3", "start_s": 0, "duration_s": 60, "value": 3})
    assert values(driver, T0 + 30_000)["nh3"] == 3.0


def test_stuck_freezes_the_model_with_its_episodes() -> None:
    episode = {"quantity": "h2s", "start_s": 0, "duration_s": 7200, "peak": 500.0}
    stuck = {"kind": "stuck", "quantity": "h2s", "start_s": 600, "duration_s": 600}
    plain = SimOdourDriver("fence", {"seed": 7, "origin_ms": T0, "episodes": [episode]})
    both = SimOdourDriver(
        "fence", {"seed": 7, "origin_ms": T0, "episodes": [episode], "perturbations": [stuck]}
    )
    assert values(both, T0 + 15 * MIN)["h2s"] == values(plain, T0 + 10 * MIN)["h2s"]
    assert values(both, T0 + 15 * MIN)["h2s"] > 500.0


def test_a_quantity_dropout_removes_that_quantity_only() -> None:
    driver = odour({"kind": "dropout", "quantity": "nh3", "start_s": 0, "duration_s": 60})
    inside = values(driver, T0 + 1000)
    assert set(inside) == {"h2s", "odour"}
    assert inside["h2s"] == values(PLAIN, T0 + 1000)["h2s"]
    assert set(values(driver, T0 + MIN)) == {"h2s", "nh3", "odour"}


def test_a_sensor_dropout_times_out_every_read_of_its_interval() -> None:
    driver = odour({"kind": "dropout", "start_s": 60, "duration_s": 60})
    with pytest.raises(SensorTimeoutError, match="fence: scripted dropout"):
        driver.read(T0 + MIN)
    with pytest.raises(SensorTimeoutError):
        driver.read(T0 + 2 * MIN - 1)
    assert values(driver, T0 + 2 * MIN) == values(PLAIN, T0 + 2 * MIN)
    assert values(driver, T0 + MIN - 1) == values(PLAIN, T0 + MIN - 1)


def test_times_are_whole_milliseconds_from_the_origin() -> None:
    driver = odour({**STEP, "start_s": 0.1, "duration_s": 0.001})
    assert values(driver, T0 + 100)["h2s"] == 250.0
    assert values(driver, T0 + 101) == values(PLAIN, T0 + 101)
    assert values(driver, T0 + 99) == values(PLAIN, T0 + 99)


# -- overlaps and bounds ---------------------------------------------------------------------


def test_the_last_active_value_kind_listed_wins() -> None:
    later = {**STEP, "start_s": 900, "duration_s": 60, "value": 5.0}
    driver = odour(STEP, later)
    assert values(driver, T0 + 15 * MIN)["h2s"] == pytest.approx(5.0)
    assert values(driver, T0 + 16 * MIN)["h2s"] == pytest.approx(shifted(T0 + 16 * MIN))
    # Listed first, the long step hides nothing: the short one is active and last.
    assert values(odour(later, STEP), T0 + 15 * MIN)["h2s"] == pytest.approx(shifted(T0 + 15 * MIN))


def test_a_dropout_wins_over_any_value_kind_whatever_the_order() -> None:
    drop = {"kind": "dropout", "quantity": "h2s", "start_s": 900, "duration_s": 60}
    for driver in (odour(STEP, drop), odour(drop, STEP)):
        assert "h2s" not in values(driver, T0 + 15 * MIN)
    sensor = {"kind": "dropout", "start_s": 900, "duration_s": 60}
    with pytest.raises(SensorTimeoutError):
        odour(sensor, STEP).read(T0 + 15 * MIN)


def test_values_are_clipped_to_the_physical_bounds() -> None:
    water = SimWaterDriver(
        "sonde",
        {"origin_ms": T0, "perturbations": [
            {"kind": "step", "quantity": "ph", "start_s": 0, "duration_s": 60, "value": 20.0},
            {"kind": "ramp", "quantity": "do", "start_s": 0, "duration_s": 60, "value": -50.0},
        ]},
    )  # fmt: skip
    late = values(water, T0 + 59_000)
    assert late["ph"] == SPECS["ph"].upper
    assert late["do"] == SPECS["do"].lower


# -- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({**STEP, "quantity": "laeq"}, "perturbation quantity 'laeq' is not measured by sim-odour"),
        ({**STEP, "quantity": "pm1"}, r"`\$.perturbations\[0\].quantity`"),
        ({**STEP, "kind": "wobble"}, r"`\$.perturbations\[0\].kind`"),
        ({k: v for k, v in STEP.items() if k != "value"}, "step perturbation of h2s: value is"),
        ({**STEP, "kind": "ramp", "value": None}, "ramp perturbation of h2s: value is required"),
        ({**STEP, "kind": "spike", "value": None}, "spike perturbation of h2s: value is required"),
        ({**STEP, "kind": "dropout"}, "a dropout has no value"),
        ({"kind": "stuck", "start_s": 0, "duration_s": 1}, "quantity is required"),
        ({**STEP, "duration_s": 0}, "duration_s must be at least 0.001"),
        ({**STEP, "duration_s": -5}, "duration_s must be at least 0.001"),
        ({**STEP, "start_s": float("nan")}, "must be finite"),
        ({**STEP, "value": float("inf")}, "must be finite"),
        ({**STEP, "duration_s": float("inf")}, "must be finite"),
        ({**STEP, "extra": 1}, "extra"),
        ({"kind": "step", "quantity": "h2s", "duration_s": 1, "value": 1}, "start_s"),
    ],
)
def test_a_bad_perturbation_is_a_clear_error(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        SimOdourDriver("fence", {"perturbations": [entry]})
    assert str(caught.value).startswith("sim-odour options:")


# -- purity ------------------------------------------------------------------------------------

KINDS = st.sampled_from(["step", "ramp", "spike", "stuck", "dropout"])
ENTRY = st.builds(
    lambda kind, quantity, start_s, duration_s, value: {
        "kind": kind,
        "start_s": start_s,
        "duration_s": duration_s,
        **({} if kind == "dropout" and quantity is None else {"quantity": quantity or "h2s"}),
        **({} if kind == "dropout" or (kind == "stuck" and value is None)
           else {"value": 0.0 if value is None else value}),
    },
    KINDS,
    st.sampled_from([None, "h2s", "nh3", "odour"]),
    st.integers(0, 3600),
    st.integers(1, 3600),
    st.none() | st.floats(-100, 2000),
)  # fmt: skip
TIMES = st.lists(st.integers(T0 - 600_000, T0 + 8_000_000), min_size=1, max_size=12)


def outcome(driver: SimOdourDriver, at_ms: int) -> dict[str, float] | None:
    try:
        return values(driver, at_ms)
    except SensorTimeoutError:
        return None


@settings(max_examples=60, deadline=None)
@given(st.lists(ENTRY, max_size=4), TIMES)
def test_reads_do_not_depend_on_which_reads_came_before(
    entries: list[dict[str, Any]], times: list[int]
) -> None:
    forward = odour(*entries)
    backward = odour(*entries)
    seen = [outcome(forward, t) for t in times]
    assert [outcome(backward, t) for t in reversed(times)] == seen[::-1]
    assert [outcome(odour(*entries), t) for t in times] == seen


@settings(max_examples=60, deadline=None)
@given(st.lists(ENTRY, max_size=4), TIMES)
def test_outside_every_interval_the_model_is_returned_exactly(
    entries: list[dict[str, Any]], times: list[int]
) -> None:
    driver = odour(*entries)
    for t in times:
        offset_ms = t - T0
        quiet = all(
            not e["start_s"] * 1000 <= offset_ms < (e["start_s"] + e["duration_s"]) * 1000
            for e in entries
        )
        if quiet:
            assert values(driver, t) == values(PLAIN, t)


# -- a stuck sensor after the sampler -------------------------------------------------------


def sample(driver: SimNoiseDriver, minutes: int) -> list[Reading]:
    """A 1-s sampler with 60-s reports, as an edge agent runs it, for `minutes` minutes."""
    sampler = Sampler([driver], 1.0, 60, T0)
    readings: list[Reading] = []
    for second in range(minutes * 60 + 1):
        readings.extend(sampler.step(T0 + second * 1000))
    return readings


def test_a_stuck_sensor_reports_identical_values_and_the_aggregator_sees_a_flatline() -> None:
    stuck = [
        {"kind": "stuck", "quantity": q, "start_s": 0, "duration_s": 1800}
        for q in ("laeq", "lamax")
    ]
    driver = SimNoiseDriver("mic", {"seed": 3, "origin_ms": T0, "perturbations": stuck})
    readings = sample(driver, 20)
    assert len(readings) == 40
    for quantity in ("laeq", "lamax"):
        assert len({r.value for r in readings if r.quantity == quantity}) == 1
    # The aggregator's flatline check (15 readings over 15 min for noise) catches it...
    monitor = HealthMonitor()
    problems = {p for r in readings for p in monitor.judge("n1", r).problems}
    assert "flatline" in problems
    # ...and does not on the same sensor unperturbed.
    plain = SimNoiseDriver("mic", {"seed": 3, "origin_ms": T0})
    monitor = HealthMonitor()
    assert not any("flatline" in monitor.judge("n1", r).problems for r in sample(plain, 20))

"""Simulated drivers: the Driver protocol, option validation, faults, episodes and bounds."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.drivers.base import Driver, SensorTimeoutError
from edge.drivers.registry import create_driver, known_drivers
from edge.sampler import Sampler
from schemas.quantities import SPECS, Family
from simulators.drivers import (
    SimAirDriver,
    SimMetDriver,
    SimNoiseDriver,
    SimOdourDriver,
    SimWaterDriver,
)

T0 = 1_717_200_000_000  # 2024-06-01T00:00Z
EPOCH_MS = st.integers(min_value=946_684_800_000, max_value=4_102_444_799_999)

FAMILIES: dict[str, Family] = {
    "sim-air": "air",
    "sim-met": "met",
    "sim-noise": "noise",
    "sim-odour": "odour",
    "sim-water": "water",
}
# The demo's guaranteed early alert (simulators/fleet.py uses this shape).
H2S_RELEASE: dict[str, Any] = {
    "quantity": "h2s",
    "start_s": 30,
    "duration_s": 3600,
    "ramp_s": 120,
    "peak": 150.0,
}


def make(name: str, options: Mapping[str, Any] | None = None, sensor: str = "s1") -> Driver:
    return create_driver(name, sensor, options or {})


def family_quantities(family: Family) -> set[str]:
    return {q for q, spec in SPECS.items() if spec.family == family}


# -- the protocol ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_registry_builds_every_simulator(name: str) -> None:
    driver = make(name, {"seed": 3}, sensor="abc")
    assert driver.name == name
    assert driver.sensor_id == "abc"
    assert driver.flags == ("simulated",)
    samples = driver.read(T0)
    assert {s.quantity for s in samples} == family_quantities(FAMILIES[name])
    for sample in samples:
        spec = SPECS[sample.quantity]
        assert spec.lower <= sample.value <= spec.upper
    driver.close()
    driver.close()


def test_every_registered_sim_driver_is_covered() -> None:
    assert {n for n in known_drivers() if n.startswith("sim-")} == set(FAMILIES)


def test_reads_are_pure_functions_of_seed_and_time() -> None:
    a = SimAirDriver("a", {"seed": 1, "traffic": 0.9})
    b = SimAirDriver("b", {"seed": 1, "traffic": 0.9})
    first = a.read(T0)
    for k in range(50):
        a.read(T0 + k * 1000)
    assert a.read(T0) == first
    assert b.read(T0) == first
    assert SimAirDriver("c", {"seed": 2, "traffic": 0.9}).read(T0) != first


def test_family_options_change_the_signal() -> None:
    rush = T0  # 08:00 local
    assert (
        SimAirDriver("a", {"traffic": 1.0}).read(rush)[0].value
        > SimAirDriver("a", {"traffic": 0.0}).read(rush)[0].value
    )
    road = SimNoiseDriver("n", {"zone": "4a"}).read(rush)[0].value
    quiet = SimNoiseDriver("n", {"zone": "0"}).read(rush)[0].value
    assert road > quiet
    river = SimWaterDriver("w", {"body": "river"}).read(rush)
    lake = SimWaterDriver("w", {"body": "lake", "trophic": "hypereutrophic"}).read(rush)
    assert river != lake


# -- options ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("sim-air", {"trafic": 0.5}, "unknown field `trafic`.*valid options: .*traffic"),
        ("sim-air", {"traffic": 1.5}, r"<= 1.0 - at `\$.traffic`"),
        ("sim-air", {"haze": "yes"}, r"Expected `bool`, got `str` - at `\$.haze`"),
        ("sim-air", {"seed": "1"}, r"`\$.seed`"),
        ("sim-air", {"fault_rate": -0.1}, r"`\$.fault_rate`"),
        ("sim-noise", {"zone": "5"}, r"`\$.zone`"),
        ("sim-noise", {"zone": 2}, r"`\$.zone`"),
        ("sim-odour", {"plume_width_deg": 0}, r"`\$.plume_width_deg`"),
        ("sim-water", {"body": "sea"}, r"`\$.body`"),
        ("sim-water", {"trophic": "murky"}, r"`\$.trophic`"),
        ("sim-met", {"traffic": 1.0}, "unknown field `traffic`"),
        (
            "sim-air",
            {"episodes": [{"quantity": "laeq", "start_s": 0, "duration_s": 1, "peak": 1}]},
            "episode quantity 'laeq' is not measured by sim-air",
        ),
        (
            "sim-air",
            {"episodes": [{"quantity": "pm1", "start_s": 0, "duration_s": 1, "peak": 1}]},
            r"`\$.episodes\[0\].quantity`",
        ),
        (
            "sim-air",
            {
                "episodes": [
                    {"quantity": "pm2_5", "start_s": 0, "duration_s": 10, "peak": 1, "ramp_s": 6}
                ]
            },
            "ramp_s must be in",
        ),
        (
            "sim-air",
            {"episodes": [{"quantity": "pm2_5", "start_s": 0, "peak": 1}]},
            "missing required field `duration_s`",
        ),
    ],
)
def test_bad_options_are_clear_errors(name: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        make(name, options)
    assert name in str(info.value)


def test_options_must_be_a_table() -> None:
    with pytest.raises(ValueError, match="must be a table"):
        SimAirDriver("a", 42)  # type: ignore[arg-type]


def test_named_and_numeric_trophic_states_are_accepted() -> None:
    for trophic in ("oligotrophic", "mesotrophic", "eutrophic", "hypereutrophic", 0, 0.35, 1):
        SimWaterDriver("w", {"trophic": trophic})


# -- faults -------------------------------------------------------------------------------------


def _faulty_instants(driver: Driver, times: range) -> set[int]:
    faulty = set()
    for t in times:
        try:
            driver.read(t)
        except SensorTimeoutError:
            faulty.add(t)
    return faulty


def test_fault_rate_is_respected_and_deterministic() -> None:
    times = range(T0, T0 + 4000 * 1000, 1000)
    driver = SimMetDriver("m", {"seed": 4, "fault_rate": 0.2})
    faulty = _faulty_instants(driver, times)
    assert 0.17 < len(faulty) / len(times) < 0.23
    # The same instants fail whatever the order of reads, and for a twin driver.
    backwards = _faulty_instants(driver, times[::-1])
    twin = _faulty_instants(SimMetDriver("m2", {"seed": 4, "fault_rate": 0.2}), times)
    assert faulty == backwards == twin
    other = _faulty_instants(SimMetDriver("m", {"seed": 5, "fault_rate": 0.2}), times)
    assert other != faulty


def test_fault_rate_extremes() -> None:
    times = range(T0, T0 + 200_000, 1000)
    assert _faulty_instants(SimNoiseDriver("n", {"fault_rate": 0.0}), times) == set()
    assert len(_faulty_instants(SimNoiseDriver("n", {"fault_rate": 1.0}), times)) == len(times)


def test_a_timeout_names_the_sensor() -> None:
    driver = SimOdourDriver("fence", {"fault_rate": 1.0})
    with pytest.raises(SensorTimeoutError, match="fence"):
        driver.read(T0)


# -- episodes -----------------------------------------------------------------------------------


def test_episode_adds_its_peak_inside_and_nothing_outside() -> None:
    origin = T0 + 123_000
    plain = SimOdourDriver("g", {"seed": 7, "origin_ms": origin})
    scripted = SimOdourDriver("g", {"seed": 7, "origin_ms": origin, "episodes": [H2S_RELEASE]})
    for offset_s, expected in [
        (0, 0.0),
        (29, 0.0),
        (90, 75.0),
        (150, 150.0),
        (3000, 150.0),
        (3600, 37.5),
        (3630, 0.0),
        (7200, 0.0),
    ]:
        t = origin + offset_s * 1000
        base = {s.quantity: s.value for s in plain.read(t)}
        with_episode = {s.quantity: s.value for s in scripted.read(t)}
        assert with_episode["h2s"] - base["h2s"] == pytest.approx(expected, abs=1e-9)
        assert with_episode["nh3"] == base["nh3"]
        assert with_episode["odour"] == base["odour"]
    # Over the Grade II (new) fence-line limit of 60 µg/m³ (docs/standards.md §4.1) at once.
    h2s = [s.value for s in scripted.read(origin + 150_000) if s.quantity == "h2s"]
    assert h2s[0] > 60.0


def test_origin_defaults_to_the_epoch() -> None:
    episode = {"quantity": "pm2_5", "start_s": T0 / 1000, "duration_s": 60, "peak": 500.0}
    plain = SimAirDriver("a", {})
    scripted = SimAirDriver("a", {"episodes": [episode]})
    assert scripted.read(T0 + 1000)[0].value - plain.read(T0 + 1000)[0].value == pytest.approx(
        500.0
    )
    assert scripted.read(T0 - 1000) == plain.read(T0 - 1000)


def test_a_negative_episode_is_clipped_at_the_physical_bound() -> None:
    crash = {"quantity": "do", "start_s": 0, "duration_s": 600, "peak": -100.0}
    driver = SimWaterDriver("w", {"origin_ms": T0, "episodes": [crash]})
    do = [s.value for s in driver.read(T0 + 60_000) if s.quantity == "do"]
    assert do == [0.0]


# -- bounds, any seed and time ----------------------------------------------------------------

OPTIONS: st.SearchStrategy[tuple[str, dict[str, Any]]] = st.one_of(
    st.builds(
        lambda traffic, haze: ("sim-air", {"traffic": traffic, "haze": haze}),
        st.floats(0, 1),
        st.booleans(),
    ),
    st.just(("sim-met", {})),
    st.builds(
        lambda z: ("sim-noise", {"zone": z}), st.sampled_from(["0", "1", "2", "3", "4a", "4b"])
    ),
    st.builds(
        lambda b, s: ("sim-odour", {"source_bearing_deg": b, "source_strength": s}),
        st.floats(-720, 720),
        st.floats(0, 50),
    ),
    st.builds(
        lambda body, t: ("sim-water", {"body": body, "trophic": t}),
        st.sampled_from(["lake", "river"]),
        st.floats(0, 1),
    ),
)


@settings(max_examples=150, deadline=None)
@given(choice=OPTIONS, seed=st.integers(0, 2**63), at_ms=EPOCH_MS)
def test_samples_are_always_within_bounds(
    choice: tuple[str, dict[str, Any]], seed: int, at_ms: int
) -> None:
    name, options = choice
    driver = make(name, {**options, "seed": seed})
    for sample in driver.read(at_ms):
        spec = SPECS[sample.quantity]
        assert math.isfinite(sample.value)
        assert spec.lower <= sample.value <= spec.upper


# -- through the real sampler -----------------------------------------------------------------


def test_the_sampler_turns_simulated_reads_into_flagged_readings() -> None:
    drivers = [
        SimAirDriver("pm", {"seed": 1, "fault_rate": 0.05}),
        SimNoiseDriver("snd", {"seed": 1, "zone": "4a"}),
        SimWaterDriver("sonde", {"seed": 1}),
    ]
    sampler = Sampler(drivers, 1.0, 60, start_ms=T0)
    readings = []
    for now in range(T0, T0 + 5 * 60_000 + 1, 1000):
        readings.extend(sampler.step(now))
    assert len({r.ts for r in readings}) == 5
    assert all(r.flags[0] == "simulated" for r in readings)
    by_key = {(r.ts, r.quantity): r for r in readings}
    for ts in {r.ts for r in readings}:
        # The minute's L_Amax (a max) is above its L_Aeq (an energy mean).
        assert by_key[ts, "lamax"].value > by_key[ts, "laeq"].value
        assert by_key[ts, "lamax"].stat == "max"
        assert by_key[ts, "laeq"].stat == "leq"
    health = {h.sensor: h for h in sampler.health()}
    assert health["pm"].errors > 0
    assert health["snd"].errors == 0

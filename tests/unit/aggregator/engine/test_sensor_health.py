"""Sensor health checks: each check fires and clears at its boundaries, spikes leave the
baseline alone, humidity goes stale, and the state survives a snapshot."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.engine.observations import Observation
from aggregator.engine.sensor_health import (
    CHECKS,
    DEFAULT_FLATLINE,
    DEFAULT_MAX_RATE_PER_S,
    DEFAULT_PLAUSIBLE,
    HEALTHY,
    FlatlineLimit,
    HealthMonitor,
    HealthSettings,
    HealthSnapshotError,
    PlausibleRange,
    Verdict,
)
from edge.drivers.registry import create_driver
from edge.stats import IntervalStats
from schemas.messages import ALERT_SCHEMA, Alert, Flag, Reading
from schemas.quantities import QUANTITIES, SPECS, STATISTICS, Quantity
from simulators.fleet import city_nodes

T0 = 1_780_000_020_000 - 1_780_000_020_000 % 3_600_000  # on the hour
MIN = 60_000


def r(
    q: Quantity,
    value: float,
    ts: int,
    *,
    sensor: str = "pm",
    period_s: int = 60,
    flags: tuple[Flag, ...] = (),
) -> Reading:
    spec = SPECS[q]
    return Reading(
        ts=ts,
        quantity=q,
        value=value,
        unit=spec.unit,
        period_s=period_s,
        stat=spec.default_stat,
        sensor=sensor,
        flags=flags,
    )


def stream(
    m: HealthMonitor, q: Quantity, values: list[float], *, start: int = T0, **kw: object
) -> list[Verdict]:
    """Judge `values` as consecutive 1-min readings of node "n"."""
    return [
        m.judge("n", r(q, v, start + i * MIN, **kw))  # type: ignore[arg-type]
        for i, v in enumerate(values)
    ]


def problems(verdicts: list[Verdict]) -> list[tuple[str, ...]]:
    return [v.problems for v in verdicts]


def changes(obs: list[Observation]) -> list[tuple[str, bool]]:
    return [(o.rule.id, o.exceeded) for o in obs]


def flat(n: int, t_s: float, **kw: float) -> HealthSettings:
    return HealthSettings(flatline={"pm2_5": FlatlineLimit(0.0005, n, t_s, **kw)})


# -- range ----------------------------------------------------------------------------------


def test_range_fires_beyond_the_plausible_range_and_clears_inside() -> None:
    m = HealthMonitor()
    verdicts = stream(m, "pm2_5", [1000.0, 1000.5, 40.0, -10.0, -10.5, 41.0])
    assert problems(verdicts) == [(), ("out_of_range",), (), (), ("out_of_range",), ()]
    assert changes(m.take_observations(late=False)) == [
        ("health.out_of_range.pm", True),
        ("health.out_of_range.pm", False),
        ("health.out_of_range.pm", True),
        ("health.out_of_range.pm", False),
    ]


def test_range_honours_the_nodes_own_out_of_range_flag() -> None:
    m = HealthMonitor()
    verdict = m.judge("n", r("pm2_5", 40.0, T0, flags=("simulated", "out_of_range")))
    assert verdict.problems == ("out_of_range",)
    (obs,) = m.take_observations(late=True)
    assert obs.exceeded and obs.late and "flagged out_of_range by the node" in obs.message


def test_unlisted_quantities_fall_back_to_the_contract_bounds() -> None:
    assert "tvoc" not in DEFAULT_PLAUSIBLE
    m = HealthMonitor()
    assert m.judge("n", r("tvoc", SPECS["tvoc"].upper, T0, sensor="voc")).ok


def test_range_overrides_replace_one_quantity_only() -> None:
    m = HealthMonitor(HealthSettings(plausible={"pm2_5": PlausibleRange(0, 500)}))
    assert m.judge("n", r("pm2_5", 600.0, T0)).problems == ("out_of_range",)
    assert m.judge("n", r("pm10", 600.0, T0)).ok


# -- flatline -------------------------------------------------------------------------------


def test_flatline_needs_n_readings() -> None:
    m = HealthMonitor(flat(5, 0))
    verdicts = stream(m, "pm2_5", [35.0] * 6)
    assert [v.ok for v in verdicts] == [True, True, True, True, False, False]
    assert verdicts[4].problems == ("flatline",)


def test_flatline_needs_t_seconds_from_first_start_to_last_end() -> None:
    m = HealthMonitor(flat(2, 300))
    m.judge("n", r("pm2_5", 35.0, T0))
    # The second reading ends 239 s + 60 s after the first began: 299 s, one short.
    assert m.judge("n", r("pm2_5", 35.0, T0 + 239_000)).ok
    assert m.judge("n", r("pm2_5", 35.0, T0 + 240_000)).problems == ("flatline",)


def test_pm_default_is_thirty_one_minute_readings() -> None:
    m = HealthMonitor()
    verdicts = stream(m, "pm2_5", [35.0] * 31)
    assert [i for i, v in enumerate(verdicts) if not v.ok] == [29, 30]


def test_flatline_clears_when_the_value_moves() -> None:
    m = HealthMonitor(flat(3, 0))
    verdicts = stream(m, "pm2_5", [35.0, 35.0, 35.0, 35.0, 35.2, 35.2])
    assert [v.ok for v in verdicts] == [True, True, False, False, True, True]
    fired, cleared = m.take_observations(late=False)
    assert (fired.rule.id, fired.exceeded, fired.value, fired.limit) == (
        "health.flatline.pm",
        True,
        180.0,
        0.0,
    )
    assert "stuck at 35" in fired.message
    assert not cleared.exceeded and cleared.is_cleared and cleared.at_ms == T0 + 4 * MIN


def test_flatline_epsilon_is_steady_to_three_decimals() -> None:
    m = HealthMonitor(flat(3, 0))
    assert not stream(m, "pm2_5", [7.0, 7.0004, 6.9996])[-1].ok
    m = HealthMonitor(flat(3, 0))
    assert all(v.ok for v in stream(m, "pm2_5", [7.0, 7.0004, 7.001]))


def test_flatline_exempts_levels_where_sensors_sit_still() -> None:
    m = HealthMonitor()
    # Clamped zero SO2 for a day, and RH saturated in fog for a day: not faults.
    assert all(v.ok for v in stream(m, "so2", [0.0] * 1440, sensor="gas"))
    assert all(v.ok for v in stream(m, "rh", [100.0] * 1440, sensor="met"))
    # SO2 stuck above zero for an hour is.
    assert not stream(m, "so2", [12.0] * 60, sensor="gas", start=T0 + 86_400_000)[-1].ok


def test_duplicates_and_older_readings_do_not_extend_a_run() -> None:
    m = HealthMonitor(flat(3, 0))
    for _ in range(5):
        assert m.judge("n", r("pm2_5", 35.0, T0)).ok  # the same reading, resent
    assert m.judge("n", r("pm2_5", 35.0, T0 + MIN)).ok
    assert m.judge("n", r("pm2_5", 35.0, T0 - MIN)).ok  # backlog, behind live data
    assert m.judge("n", r("pm2_5", 35.0, T0 + 2 * MIN)).problems == ("flatline",)


def test_older_readings_get_a_range_verdict_but_change_no_state() -> None:
    m = HealthMonitor()
    m.judge("n", r("pm2_5", 40.0, T0))
    assert m.judge("n", r("pm2_5", 5000.0, T0 - MIN)).problems == ("out_of_range",)
    assert not m.is_suspect("n", "pm")
    assert m.take_observations(late=True) == []


@given(
    n=st.integers(2, 40),
    t_s=st.integers(0, 7200),
    period_s=st.sampled_from([1, 10, 60, 300, 3600]),
    count=st.integers(1, 60),
    value=st.floats(0, 999, allow_nan=False),
)
def test_constant_stream_is_flagged_only_after_both_thresholds(
    n: int, t_s: int, period_s: int, count: int, value: float
) -> None:
    m = HealthMonitor(flat(n, t_s))
    step = period_s * 1000
    for i in range(count):
        verdict = m.judge("n", r("pm2_5", value, T0 + i * step, period_s=period_s))
        both = i + 1 >= n and (i + 1) * period_s >= t_s
        assert verdict.problems == (("flatline",) if both else ())


# -- spike ----------------------------------------------------------------------------------


def test_spike_flags_one_reading_and_does_not_poison_the_baseline() -> None:
    m = HealthMonitor()
    # 20 -> 900 in 60 s is 14.7 ug/m3/s, over the PM2.5 maximum of 10/s.
    verdicts = stream(m, "pm2_5", [20.0, 20.5, 900.0, 21.0, 21.5])
    assert problems(verdicts) == [(), (), ("spike",), (), ()]
    fired, cleared = m.take_observations(late=False)
    assert fired.rule.id == "health.spike.pm" and fired.exceeded
    assert fired.value == pytest.approx(879.5 / 60) and fired.limit == 10.0
    assert cleared.is_cleared and cleared.at_ms == T0 + 3 * MIN


def test_spike_boundary_is_the_maximum_rate() -> None:
    m = HealthMonitor()
    assert stream(m, "pm2_5", [20.0, 620.0])[-1].ok  # exactly 10/s
    m = HealthMonitor()
    assert stream(m, "pm2_5", [20.0, 620.01])[-1].problems == ("spike",)


def test_a_real_step_costs_one_flagged_reading() -> None:
    m = HealthMonitor(HealthSettings(max_rate_per_s={"pm2_5": 1.0}))  # 60 per minute
    # 205 is 185 from the baseline in 2 min (over 120), but within 60 of the spike before
    # it: the step is confirmed, and the baseline moves to it.
    verdicts = stream(m, "pm2_5", [20.0, 200.0, 205.0, 199.0, 202.0])
    assert problems(verdicts) == [(), ("spike",), (), (), ()]
    # Two glitches in a row that disagree stay spikes.
    verdicts = stream(m, "pm2_5", [500.0, 900.0, 203.0], start=T0 + 5 * MIN)
    assert problems(verdicts) == [("spike",), ("spike",), ()]


def test_the_allowed_change_grows_with_the_gap() -> None:
    m = HealthMonitor()
    m.judge("n", r("pm2_5", 20.0, T0))
    assert m.judge("n", r("pm2_5", 600.0, T0 + 3 * 3_600_000)).ok


def test_an_out_of_range_reading_never_becomes_the_baseline() -> None:
    m = HealthMonitor()
    verdicts = stream(m, "pm2_5", [20.0, 4000.0, 4000.0, 21.0])
    assert problems(verdicts) == [(), ("out_of_range",), ("out_of_range",), ()]


def test_max_rate_inf_disables_the_spike_check() -> None:
    assert DEFAULT_MAX_RATE_PER_S["lamax"] == float("inf")
    m = HealthMonitor()
    assert all(v.ok for v in stream(m, "lamax", [40.0, 140.0, 40.0], sensor="snd"))


# -- high RH --------------------------------------------------------------------------------


def test_high_rh_fires_above_the_level_and_clears_below_the_hysteresis() -> None:
    m = HealthMonitor()
    seen = []
    for i, rh in enumerate([89.0, 90.0, 90.5, 88.0, 85.0, 84.9, 86.0]):
        m.judge("n", r("rh", rh, T0 + i * MIN, sensor="met"))
        seen.append(m.judge("n", r("pm2_5", 30.0 + i, T0 + i * MIN)).problems)
    assert seen == [(), (), ("high_rh",), ("high_rh",), ("high_rh",), (), ()]
    fired, cleared = m.take_observations(late=False)
    assert (fired.rule.id, fired.exceeded, fired.value, fired.limit) == (
        "health.high_rh.pm",
        True,
        90.5,
        90.0,
    )
    assert (cleared.exceeded, cleared.is_cleared, cleared.value, cleared.limit) == (
        False,
        True,
        84.9,
        85.0,
    )


def test_high_rh_uses_rh_of_any_sensor_of_the_same_node_only() -> None:
    m = HealthMonitor()
    m.judge("n", r("rh", 97.0, T0, sensor="pmsrh"))
    m.judge("other", r("rh", 40.0, T0, sensor="met"))
    assert m.judge("n", r("pm10", 50.0, T0)).problems == ("high_rh",)
    assert m.judge("other", r("pm10", 50.0, T0)).ok
    assert m.judge("n", r("no2", 50.0, T0, sensor="gas")).ok  # not an optical PM reading


def test_stale_rh_judges_nothing() -> None:
    m = HealthMonitor()  # rh_max_age_s = 900
    m.judge("n", r("rh", 97.0, T0, sensor="met"))
    assert m.judge("n", r("pm2_5", 50.0, T0 + 900_000)).problems == ("high_rh",)
    assert m.judge("n", r("pm2_5", 50.0, T0 + 901_000)).ok
    fired, cleared = m.take_observations(late=False)
    assert fired.exceeded and cleared.is_cleared and "no RH within 900 s" in cleared.message
    # RH far newer than a backlog PM reading does not judge it either.
    m.judge("n", r("rh", 97.0, T0 + 86_400_000, sensor="met"))
    assert m.judge("n", r("pm2_5", 50.0, T0 + 2_000_000)).ok


def test_observations_on_demand_hold_inside_the_hysteresis_band() -> None:
    m = HealthMonitor()
    m.judge("n", r("rh", 95.0, T0, sensor="met"))
    m.judge("n", r("pm2_5", 50.0, T0))
    m.judge("n", r("rh", 87.0, T0 + MIN, sensor="met"))
    m.judge("n", r("pm2_5", 50.0, T0 + MIN))
    (obs,) = [o for o in m.observations("n", "pm", T0 + 2 * MIN, False) if "high_rh" in o.rule.id]
    assert not obs.exceeded and not obs.is_cleared and obs.at_ms == T0 + 2 * MIN


# -- suspect, observations, alerts ----------------------------------------------------------


def test_suspect_while_any_problem_is_active_on_the_sensor() -> None:
    m = HealthMonitor()
    assert not m.is_suspect("n", "pm")
    stream(m, "pm2_5", [20.0, 900.0])
    stream(m, "no2", [30.0, 31.0], sensor="gas")
    assert m.is_suspect("n", "pm") and not m.is_suspect("n", "gas")
    assert not m.is_suspect("m", "pm")
    m.judge("n", r("pm2_5", 21.0, T0 + 2 * MIN))
    assert not m.is_suspect("n", "pm")


def test_one_alert_per_sensor_check_across_its_quantities() -> None:
    m = HealthMonitor()
    m.judge("n", r("pm2_5", 2000.0, T0))
    m.judge("n", r("pm10", 2000.0, T0))
    m.judge("n", r("pm2_5", 20.0, T0 + MIN))
    assert m.is_suspect("n", "pm")
    m.judge("n", r("pm10", 20.0, T0 + MIN))
    assert changes(m.take_observations(late=False)) == [
        ("health.out_of_range.pm", True),
        ("health.out_of_range.pm", False),
    ]


def test_a_healthy_stream_costs_no_observations() -> None:
    m = HealthMonitor()
    verdicts = stream(m, "pm2_5", [20.0 + (i % 7) for i in range(500)])
    assert all(v is HEALTHY for v in verdicts)
    assert m.take_observations(late=False) == []


def test_calibrating_and_maintenance_readings_are_not_judged() -> None:
    m = HealthMonitor()
    flags: tuple[Flag, ...] = ("calibrating", "maintenance")
    for i, flag in enumerate(flags):
        assert m.judge("n", r("pm2_5", 4000.0, T0 + i * MIN, flags=(flag,))).ok
    assert m.sensors() == []


def as_alert(o: Observation) -> Alert:
    """The alert an observation would become, validated against the contract."""
    rule = o.rule
    alert = Alert(
        schema=ALERT_SCHEMA,
        node=o.node,
        rule=rule.id,
        kind=rule.kind,
        state="firing" if o.exceeded else "resolved",
        severity=rule.severity,
        standard=rule.standard,
        clause=rule.clause,
        window_s=rule.window_s,
        value=o.value,
        limit=o.limit,
        since_ms=o.at_ms,
        updated_ms=o.at_ms,
        message=o.message,
        quantity=rule.quantity,
        unit=rule.unit,
    )
    return msgspec.json.decode(msgspec.json.encode(alert), type=Alert)


def test_observations_make_valid_alerts() -> None:
    m = HealthMonitor()
    sensor = "s" * 63  # the longest sensor id
    m.judge("n", r("rh", 99.0, T0, sensor="met"))
    stream(m, "pm2_5", [20.0, 900.0], sensor=sensor)
    stream(m, "pm10", [2000.0], sensor=sensor)
    stream(m, "pm2_5", [35.0] * 31, sensor="pm", start=T0 + 10 * MIN)
    obs = m.take_observations(late=False) + m.observations("n", sensor, T0 + 99 * MIN, False)
    assert {o.rule.id.split(".")[1] for o in obs} == set(CHECKS)
    for o in obs:
        alert = as_alert(o)
        assert alert.kind == "health" and alert.standard == "envnet sensor health"
        assert alert.severity == "warning" and alert.quantity is None


def test_observations_on_demand_cover_every_check_of_a_pm_sensor() -> None:
    m = HealthMonitor()
    assert m.observations("n", "pm", T0, False) == []
    m.judge("n", r("pm2_5", 30.0, T0))
    m.judge("n", r("no2", 30.0, T0, sensor="gas"))
    assert [o.rule.id for o in m.observations("n", "pm", T0, False)] == [
        f"health.{c}.pm" for c in CHECKS
    ]
    gas = m.observations("n", "gas", T0, False)
    assert [o.rule.id for o in gas] == [f"health.{c}.gas" for c in CHECKS if c != "high_rh"]
    assert all(o.is_cleared and not o.exceeded for o in gas)


def test_the_simulated_city_is_healthy_for_a_day() -> None:
    """The defaults must not page on the simulated fleet (only humid hours may flag PM)."""
    m = HealthMonitor()
    found: set[tuple[str, str]] = set()
    for spec in city_nodes():
        drivers = [create_driver(s.driver, s.id, {**s.options, "seed": 7}) for s in spec.sensors]
        for minute in range(1440):
            stats = IntervalStats(T0 + minute * MIN, 60, 1)
            for driver in drivers:
                for sample in driver.read(T0 + minute * MIN):
                    stats.add(driver.sensor_id, sample.quantity, sample.value, ())
            for reading in stats.close():
                found.update((reading.quantity, p) for p in m.judge(spec.node, reading).problems)
    assert {p for _, p in found} <= {"high_rh"}, found


# -- settings and snapshots -----------------------------------------------------------------


def test_every_quantity_has_flatline_and_rate_defaults() -> None:
    assert set(DEFAULT_FLATLINE) == set(QUANTITIES) == set(DEFAULT_MAX_RATE_PER_S)
    for q, rng in DEFAULT_PLAUSIBLE.items():
        assert SPECS[q].lower <= rng.lower < rng.upper <= SPECS[q].upper, q


@pytest.mark.parametrize(
    "make",
    [
        lambda: PlausibleRange(5, 5),
        lambda: FlatlineLimit(0.0, 1, 10),
        lambda: FlatlineLimit(-1.0, 5, 10),
        lambda: HealthSettings(max_rate_per_s={"pm2_5": 0.0}),
        lambda: HealthSettings(high_rh_pct=101),
        lambda: HealthSettings(rh_max_age_s=0),
    ],
)
def test_bad_settings_are_refused(make: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        make()  # type: ignore[operator]


def test_settings_convert_from_a_config_table() -> None:
    table = {
        "flatline": {"pm10": {"epsilon": 0.01, "min_readings": 10, "min_duration_s": 600}},
        "max_rate_per_s": {"co": 0.5},
        "high_rh_pct": 85,
    }
    settings = msgspec.convert(table, HealthSettings, strict=True)
    assert settings.flatline_for("pm10") == FlatlineLimit(0.01, 10, 600)
    assert settings.flatline_for("pm2_5") == DEFAULT_FLATLINE["pm2_5"]
    assert settings.max_rate_for("co") == 0.5 and settings.high_rh_pct == 85


@st.composite
def readings(draw: st.DrawFn) -> Reading:
    q: Quantity = draw(st.sampled_from(["pm2_5", "pm10", "rh", "no2", "laeq", "ph"]))
    spec = SPECS[q]
    return Reading(
        ts=draw(st.integers(T0, T0 + 6 * 3_600_000)),
        quantity=q,
        # Repeated values too, so that runs, flatlines and their snapshots are exercised.
        value=draw(
            st.one_of(
                st.sampled_from([spec.lower, spec.upper, min(max(35.0, spec.lower), spec.upper)]),
                st.floats(spec.lower, spec.upper, allow_nan=False),
            )
        ),
        unit=spec.unit,
        period_s=draw(st.sampled_from([1, 60, 3600])),
        stat=draw(st.sampled_from(STATISTICS)),
        sensor=draw(st.sampled_from(["a", "b"])),
        flags=tuple(
            draw(
                st.lists(st.sampled_from(["out_of_range", "calibrating", "simulated"]), max_size=2)
            )
        ),
    )


node_readings = st.lists(st.tuples(st.sampled_from(["n1", "n2"]), readings()), max_size=60)


@given(node_readings)
def test_judge_never_raises_and_verdicts_follow_the_state(
    items: list[tuple[str, Reading]],
) -> None:
    m = HealthMonitor()
    for node, reading in items:
        verdict = m.judge(node, reading)
        assert set(verdict.problems) <= set(CHECKS)
        if not verdict.ok and "calibrating" not in reading.flags:
            assert m.is_suspect(node, reading.sensor) or verdict.problems == ("out_of_range",)
    for o in m.take_observations(late=False):
        assert o.rule.kind == "health" and len(o.message) <= 300


@given(node_readings, node_readings)
def test_restore_round_trip(
    before: list[tuple[str, Reading]], after: list[tuple[str, Reading]]
) -> None:
    m = HealthMonitor()
    for node, reading in before:
        m.judge(node, reading)
    m.take_observations(late=False)
    data = m.snapshot()
    restored = HealthMonitor.restore(data)
    assert restored.snapshot() == data
    for node, reading in after:
        assert restored.judge(node, reading) == m.judge(node, reading)
        assert restored.is_suspect(node, reading.sensor) == m.is_suspect(node, reading.sensor)
    assert changes(restored.take_observations(False)) == changes(m.take_observations(False))
    for node, sensor in m.sensors():
        assert restored.observations(node, sensor, T0, False) == m.observations(
            node, sensor, T0, False
        )


@given(st.binary(max_size=200))
def test_corrupt_snapshot_raises_its_own_error(data: bytes) -> None:
    with pytest.raises(HealthSnapshotError):
        HealthMonitor.restore(data)


def test_truncated_or_foreign_snapshot_raises_its_own_error() -> None:
    m = HealthMonitor()
    stream(m, "pm2_5", [20.0, 900.0])
    data = m.snapshot()
    with pytest.raises(HealthSnapshotError):
        HealthMonitor.restore(data[: len(data) // 2])
    foreign = msgspec.msgpack.encode({"schema": "envnet.liveness-state/1", "nodes": {}})
    with pytest.raises(HealthSnapshotError):
        HealthMonitor.restore(foreign)


def test_unhealthy_spans_are_kept_in_event_time() -> None:
    # 10 moving minutes, 40 stuck (flatline from the 30th identical reading), then moving.
    m = HealthMonitor()
    moving = [35.0 + (i % 3) for i in range(10)]
    stream(m, "pm2_5", [*moving, *[40.0] * 40, *moving], start=T0)
    stuck_from, healthy_from = T0 + 10 * MIN, T0 + 50 * MIN
    assert not m.is_suspect("n", "pm")  # healthy now...
    # ...but the span it was stuck, from the start of its run, is remembered.
    assert m.was_unhealthy("n", "pm", stuck_from, stuck_from + MIN)
    assert m.was_unhealthy("n", "pm", T0, T0 + 60 * MIN)  # an hour that overlaps it
    assert not m.was_unhealthy("n", "pm", T0, stuck_from)  # before the run began
    assert not m.was_unhealthy("n", "pm", healthy_from, healthy_from + 10 * MIN)
    assert not m.was_unhealthy("n", "other", T0, T0 + 60 * MIN)
    again = HealthMonitor.restore(m.snapshot())
    assert again.was_unhealthy("n", "pm", stuck_from, stuck_from + MIN)
    assert not again.was_unhealthy("n", "pm", healthy_from, healthy_from + MIN)

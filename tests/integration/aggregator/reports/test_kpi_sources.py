"""The water, noise and bloom KPIs against a real influxd: points written with the
aggregator's own line builders and writer, read back by `load_<kind>_report`, and the figures
checked against values worked out by hand here (GB 3838-2002 Table 1, GB 3096-2008 Table 1,
the WHO chlorophyll-a levels; docs/standards.md §5.1, §3.1, §6.1).

Derived data (windows) go to a retention policy of their own, as a deployment may configure,
so the noise source's query of the derived policy is exercised too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone

import pytest

from aggregator.engine.windows import WindowResult
from aggregator.fleet import NodeInfo
from aggregator.reports.bloom import load_bloom_report
from aggregator.reports.noise import load_noise_report
from aggregator.reports.request import Period
from aggregator.reports.water import load_water_report
from aggregator.storage.influx import InfluxTarget, InfluxWriter
from aggregator.storage.records import ReadingLines, WindowLines
from aggregator.storage.setup import prepare_storage
from schemas.messages import Flag, ReadingValues
from schemas.quantities import SPECS, Quantity
from simulators.local_stack import Influxd

D1, D2, D3 = date(2026, 6, 1), date(2026, 6, 2), date(2026, 6, 3)
CST = timezone(timedelta(hours=8))
HOUR = 3_600_000


def at(day: date, hour: int, minute: int = 0) -> int:
    return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=CST).timestamp() * 1000)


def target(influxd: Influxd) -> InfluxTarget:
    return InfluxTarget(url=influxd.url, database="reports", derived_retention_policy="derived")


def write(t: InfluxTarget, lines: Sequence[str], derived: bool = False) -> None:
    async def run() -> None:
        await prepare_storage(t)
        async with InfluxWriter(t) as writer:
            await writer.write("\n".join(lines).encode(), derived)

    asyncio.run(run())


def hourly(
    info: NodeInfo,
    quantity: Quantity,
    day: date,
    values: Sequence[float],
    flags: tuple[Flag, ...] = (),
) -> list[str]:
    """One 5-minute reading at :10 of each local hour from 00:10."""
    readings = [
        ReadingValues(
            at(day, h, 10), quantity, v, SPECS[quantity].unit, 300, "mean", "sonde", flags
        )
        for h, v in enumerate(values)
    ]
    return ReadingLines(info).lines(readings)


def test_water_report_from_stored_readings(influxd: Influxd) -> None:
    w1 = NodeInfo(site="Canal", water_body="river", water_target=3, group="G", node="w1")
    w2 = NodeInfo(site="Lake", water_body="lake", water_target=3, group="G", node="w2")
    lines = [
        *hourly(w1, "nh3_n", D1, [0.8] * 24),  # III
        *hourly(w1, "nh3_n", D2, [1.6] * 24),  # V
        *hourly(w1, "do", D1, [6.5] * 24),  # II
        *hourly(w1, "do", D2, [6.5] * 24),
        *hourly(w2, "tp", D1, [0.03] * 24),  # lake TP: III
        *hourly(w2, "tn", D1, [2.5] * 24),  # lake TN: worse than V
        *hourly(w2, "tn", D2, [0.1] * 5),  # 5 hours: not a valid day
    ]
    # Would make w1's first day 劣V if it counted: calibrating readings are not ambient.
    lines += ReadingLines(w1).lines(
        [
            ReadingValues(
                at(D1, 12, 30), "nh3_n", 50.0, "mg/L", 300, "mean", "sonde", ("calibrating",)
            )
        ]
    )
    # Local 2026-05-31 23:50 is before the period (it is 2026-05-31 15:50 UTC).
    lines += hourly(w1, "nh3_n", D1 - timedelta(days=1), [9.0] * 23 + [9.0])
    t = target(influxd)
    write(t, lines)

    nodes = {"w1": w1, "w2": w2}
    r = asyncio.run(
        load_water_report(t, Period(D1, D2), ["w1", "w2"], {"w1": "G", "w2": "G"}, nodes)
    )

    site = r.sites["w1"]
    assert [(d.date, d.class_name, d.deciding) for d in site.days] == [
        ("2026-06-01", "III", ("nh3_n",)),
        ("2026-06-02", "V", ("nh3_n",)),
    ]
    assert site.days[1].exceeding == {"nh3_n": pytest.approx(0.6)}  # (1.6 - 1.0) / 1.0
    assert (site.valid_days, site.days_iii_or_better, site.days_worse_than_v) == (2, 1, 0)
    assert site.water_class == 4 and site.mean["nh3_n"] == pytest.approx(1.2)  # 1.2: IV
    lake = r.sites["w2"]
    assert (lake.valid_days, lake.days_worse_than_v, lake.water_class) == (1, 1, 6)
    assert lake.days[0].deciding == ("tn",)
    g = r.groups["G"]
    assert (g.sites, g.share_iii_or_better, g.share_worse_than_v) == (2, 0.0, 0.5)
    assert g.rating is None  # two sections of a river and a lake: not rated (§5.2)
    assert r.to_json()["water"]["sites"]["w1"]["class"] == 4


def window(
    info: NodeInfo, period: str, day: date, value: float, valid: bool, revision: bool = False
) -> str:
    start = at(day, 6) if period == "day" else at(day, 22)
    length = (16 if period == "day" else 8) * HOUR
    w = WindowResult(
        (info.node, "mic", "laeq"), period, start, start + length, value, valid,  # type: ignore[arg-type]
        12 if valid else 3, 3600 * 12, revision=revision,
    )  # fmt: skip
    line = WindowLines().line(w, info)
    assert line is not None
    return line


def test_noise_report_from_stored_day_and_night_periods(influxd: Influxd) -> None:
    n1 = NodeInfo(site="School", noise_zone="1", group="G", node="n1")  # 55 / 45
    n2 = NodeInfo(site="Road", noise_zone="4a", group="G", node="n2")  # 70 / 55
    t = target(influxd)
    write(t, [
        window(n1, "day", D1, 54.0, True),
        window(n1, "day", D2, 56.0, True),
        window(n1, "night", D1, 44.0, True),
        window(n1, "night", D2, 47.0, False),
        window(n1, "day", D3, 80.0, True),  # after the period
        window(n2, "day", D1, 71.0, True),
        window(n2, "night", D1, 58.0, True),
    ], derived=True)  # fmt: skip
    # Late data revised n2's first night: the stored point is replaced.
    write(t, [window(n2, "night", D1, 55.0, True, revision=True)], derived=True)

    nodes = {"n1": n1, "n2": n2}
    r = asyncio.run(
        load_noise_report(t, Period(D1, D2), ["n1", "n2"], {"n1": "G", "n2": "G"}, nodes)
    )

    a, b = r.nodes["n1"], r.nodes["n2"]
    assert (a.day.valid, a.day.compliant, a.day.rate) == (2, 1, 0.5)
    assert (a.night.valid, a.night.compliant, a.night.invalid) == (1, 1, 1)
    assert (b.day.valid, b.day.compliant, b.night.valid, b.night.compliant) == (1, 0, 1, 1)
    assert (r.zones["1"].day.rate, r.zones["4a"].day.rate, r.zones["4a"].night.rate) == (
        0.5, 0.0, 1.0,
    )  # fmt: skip
    g = r.groups["G"]
    assert (g.day.valid, g.day.compliant, g.night.valid, g.night.compliant) == (3, 1, 2, 2)


def test_bloom_report_from_stored_chlorophyll_a(influxd: Influxd) -> None:
    t1 = NodeInfo(site="Taihu", water_body="lake", group="Taihu", node="t1")
    lines = [
        *hourly(t1, "chl_a", D1, [8.0] * 23 + [12.0]),  # highest hour 12: >= 10
        *hourly(t1, "chl_a", D2, [55.0] * 10),  # >= 10 and >= 50
        *hourly(t1, "chl_a", D3, [100.0] * 3),  # 3 hours: not a valid day
        *hourly(t1, "chl_a", D1, [500.0], flags=("out_of_range",)),  # left out
    ]
    t = target(influxd)
    write(t, lines)

    r = asyncio.run(load_bloom_report(t, Period(D1, D3), ["t1"], {"t1": "Taihu"}, {"t1": t1}))

    site = r.sites["t1"]
    assert site.valid_days == 2
    assert site.days_above == {"who_low": 2, "who_moderate": 1}
    assert site.max_ug_l == 55.0
    assert [d.date for d in site.days] == ["2026-06-01", "2026-06-02"]

"""Bloom KPIs of `envnet report bloom`: per site, the days at or above each WHO chlorophyll-a
guidance level. Pure: readings in, a BloomReport out (numpy for the arithmetic).

Levels and counting (docs/standards.md §6.1, §6.4):
- The levels are the WHO 1999/2003 recreational guidance levels for chlorophyll-a with
  cyanobacteria dominant, 10 µg/L ("relatively low probability") and 50 µg/L ("moderate"),
  from `schemas.standards.who_bloom.LEVELS` (§6.1, HIGH). A day counts at a level when its
  daily value is at or above it (§6.4 "≥"; the alert rules compare the same way).
- The daily value (`daily_statistic`) is **envnet's choice, UNVERIFIED**: the WHO levels are
  for a sample and §6.1 names no averaging time. The default, "max_hour", is the day's highest
  hourly mean: a bather meets the water at its worst hour, and an hourly mean keeps one fouled
  optical reading from making a bloom day. "max" (the highest single reading) and "mean" (the
  mean of the hourly means) are the alternatives.
- A (site, local day) is valid with at least `min_hours` local hours holding readings
  (stat=mean, not flagged calibrating, maintenance or out_of_range): envnet's choice,
  UNVERIFIED (as for the water KPIs, aggregator.reports.water).
- A site with no valid day has zero valid days and a note; nothing is divided by zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt

from aggregator.fleet import NodeInfo
from aggregator.reports.bloom_source import fetch_chl_a
from aggregator.reports.html_page import cell, escape, header_row, row
from aggregator.reports.request import Period
from aggregator.reports.settings import BloomSettings, BloomStatistic
from aggregator.reports.water import (
    DailyValues,
    csv_text,
    daily_values,
    opt,
)
from aggregator.reports.water_source import ReadingRows
from aggregator.storage.influx import InfluxTarget
from schemas.standards import who_bloom


class BloomDay(msgspec.Struct, frozen=True):
    """A valid day at or above at least one level."""

    date: str
    chl_a_ug_l: float
    levels: tuple[str, ...]


class BloomSite(msgspec.Struct, frozen=True):
    site: str
    group: str | None
    valid_days: int
    days_above: dict[str, int]
    # The highest and the mean daily value over the valid days (None without one).
    max_ug_l: float | None
    mean_ug_l: float | None
    days: tuple[BloomDay, ...]
    note: str = ""


class BloomGroup(msgspec.Struct, frozen=True):
    """Site-days of the group's sites, summed."""

    sites: tuple[str, ...]
    valid_days: int
    days_above: dict[str, int]


class BloomReport(msgspec.Struct, frozen=True):
    date_from: date
    date_to: date
    # Level name -> chlorophyll-a µg/L (who_bloom.LEVELS).
    levels: dict[str, float]
    statistic: BloomStatistic
    sites: dict[str, BloomSite]
    groups: dict[str, BloomGroup]
    validity: str

    def to_json(self) -> dict[str, Any]:
        """{"bloom": {"from", "to", "levels", "statistic", "sites", "groups", "validity"}}."""
        body: dict[str, Any] = {
            "from": self.date_from.isoformat(),
            "to": self.date_to.isoformat(),
            "levels": dict(self.levels),
            "statistic": self.statistic,
            "sites": msgspec.to_builtins(self.sites),
            "groups": msgspec.to_builtins(self.groups),
            "validity": self.validity,
        }
        return {"bloom": body}

    def csv_rows(self) -> list[list[str]]:
        return bloom_csv_rows(self)

    def to_csv(self) -> str:
        """`csv_rows` as CSV text."""
        return csv_text(self.csv_rows())

    def text(self) -> str:
        return bloom_text(self)

    def html_section(self) -> str:
        return bloom_html(self)


LEVEL_NAMES: Final = tuple(lv.name for lv in who_bloom.LEVELS)
THRESHOLDS: Final = np.array([lv.chl_a_ug_l for lv in who_bloom.LEVELS], dtype=np.float64)


def daily_statistic(d: DailyValues, statistic: BloomStatistic) -> npt.NDArray[np.float64]:
    if statistic == "max_hour":
        return d.max_hour
    if statistic == "max":
        return d.max_reading
    return d.mean


def evaluate_site(
    node: str,
    info: NodeInfo | None,
    group: str | None,
    rows: ReadingRows,
    date_from: date,
    date_to: date,
    s: BloomSettings,
) -> BloomSite:
    site = info.site if info else ""
    samples = rows.series.get((node, "chl_a"))
    zero = dict.fromkeys(LEVEL_NAMES, 0)
    if samples is None or not samples.ts_ms:
        note = "no chl_a reading in the period: zero valid days"
        return BloomSite(site, group, 0, zero, None, None, (), note)
    ts, values = samples.arrays()
    d = daily_values(ts, values, s.utc_offset_h)
    dates = np.array(d.dates(), dtype=object)
    inside = np.array([date_from <= x <= date_to for x in dates], dtype=bool)
    valid = inside & (d.hours >= s.min_hours)
    daily = daily_statistic(d, s.daily_statistic)[valid]
    if len(daily) == 0:
        note = f"no day with >= {s.min_hours} hours of chl_a readings: zero valid days"
        return BloomSite(site, group, 0, zero, None, None, (), note)
    above = daily[:, None] >= THRESHOLDS[None, :]
    counts = above.sum(axis=0)
    days = tuple(
        BloomDay(
            day.isoformat(),
            round(float(v), 3),
            tuple(n for n, hit in zip(LEVEL_NAMES, row, strict=True) if hit),
        )
        for day, v, row in zip(dates[valid], daily, above, strict=True)
        if row.any()
    )
    return BloomSite(
        site=site,
        group=group,
        valid_days=len(daily),
        days_above={n: int(c) for n, c in zip(LEVEL_NAMES, counts, strict=True)},
        max_ug_l=round(float(daily.max()), 3),
        mean_ug_l=round(float(daily.mean()), 3),
        days=days,
    )


def validity_statement(s: BloomSettings) -> str:
    stat = {
        "max_hour": "the highest hourly mean of the day",
        "max": "the highest single reading of the day",
        "mean": "the mean of the day's hourly means",
    }[s.daily_statistic]
    levels = ", ".join(f"{lv.name} {lv.chl_a_ug_l:g} µg/L" for lv in who_bloom.LEVELS)
    return (
        f"A site-day is valid with >= {s.min_hours} local hours (UTC{s.utc_offset_h:+d}) "
        "holding chl_a readings (stat=mean, not flagged calibrating, maintenance or "
        "out_of_range); envnet's choice, UNVERIFIED. Its value is "
        f"{stat} (envnet's choice, UNVERIFIED: the WHO levels name no averaging time). A day "
        f"counts at a level when its value is at or above it: {levels} (WHO 1999/2003, "
        "docs/standards.md §6.1, §6.4)."
    )


def bloom_report(
    date_from: date,
    date_to: date,
    nodes: Sequence[str],
    groups: Mapping[str, str | None],
    node_info: Mapping[str, NodeInfo],
    rows: ReadingRows,
    settings: BloomSettings | None = None,
) -> BloomReport:
    s = settings or BloomSettings()
    sites = {
        node: evaluate_site(
            node, node_info.get(node), groups.get(node), rows, date_from, date_to, s
        )
        for node in nodes
    }
    members: dict[str, list[str]] = {}
    for node, site in sites.items():
        if site.group is not None:
            members.setdefault(site.group, []).append(node)
    return BloomReport(
        date_from=date_from,
        date_to=date_to,
        levels={lv.name: lv.chl_a_ug_l for lv in who_bloom.LEVELS},
        statistic=s.daily_statistic,
        sites=sites,
        groups={
            g: BloomGroup(
                tuple(ns),
                sum(sites[n].valid_days for n in ns),
                {lv: sum(sites[n].days_above[lv] for n in ns) for lv in LEVEL_NAMES},
            )
            for g, ns in sorted(members.items())
        },
        validity=validity_statement(s),
    )


async def load_bloom_report(
    target: InfluxTarget,
    period: Period,
    nodes: Sequence[str],
    groups: Mapping[str, str | None],
    node_info: Mapping[str, NodeInfo],
    *,
    settings: BloomSettings | None = None,
) -> BloomReport:
    """Fetch the chlorophyll-a readings of `nodes` and count their days above each level.
    Local days are the period's (`[alerts] utc_offset_h`)."""
    s = msgspec.structs.replace(settings or BloomSettings(), utc_offset_h=period.utc_offset_h)
    rows = await fetch_chl_a(target, nodes, period)
    return bloom_report(period.first, period.last, nodes, groups, node_info, rows, s)


# -- presentation -------------------------------------------------------------------------

CSV_HEADER: Final = [
    "row", "key", "site", "group", "valid_days",
    *(f"days_at_or_above_{n}" for n in LEVEL_NAMES), "max_ug_l", "mean_ug_l", "note",
]  # fmt: skip


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


def bloom_csv_rows(r: BloomReport) -> list[list[str]]:
    """A `site` row per site and a `group` row per group; the header first."""
    out = [list(CSV_HEADER)]
    for node, s in r.sites.items():
        out.append(["site", node, s.site, opt(s.group), str(s.valid_days),
                    *(str(s.days_above[n]) for n in LEVEL_NAMES), _num(s.max_ug_l),
                    _num(s.mean_ug_l), s.note])  # fmt: skip
    for name, g in r.groups.items():
        out.append(["group", name, "", name, str(g.valid_days),
                    *(str(g.days_above[n]) for n in LEVEL_NAMES), "", "", ""])  # fmt: skip
    return out


def bloom_text(r: BloomReport) -> str:
    levels = "  ".join(f">={v:g}" for v in r.levels.values())
    lines = [f"Bloom, WHO chlorophyll-a levels, {r.date_from} .. {r.date_to}", ""]
    lines.append(f"{'site':<16} {'group':<10} {'days':>5}  {levels}  max µg/L")
    for node, s in r.sites.items():
        counts = "  ".join(f"{s.days_above[n]:>{len(f'>={v:g}')}}" for n, v in r.levels.items())
        note = f"  ({s.note})" if s.note else ""
        lines.append(f"{node:<16} {opt(s.group):<10} {s.valid_days:>5}  {counts}  "
                     f"{_num(s.max_ug_l) or '-'}{note}")  # fmt: skip
    for name, g in r.groups.items():
        counts = "  ".join(f"{g.days_above[n]:>{len(f'>={v:g}')}}" for n, v in r.levels.items())
        lines.append(f"{'group ' + name:<27} {g.valid_days:>5}  {counts}")
    lines += ["", "Validity: " + r.validity]
    return "\n".join(line.rstrip() for line in lines) + "\n"


# Cell colours for a site with days at a level. envnet's choice, no standard fixes them.
LEVEL_COLOURS: Final = {"who_low": "#ffe08a", "who_moderate": "#ff9b6a"}


# The heading of the HTML section (aggregator.reports.html_page); the fragment has none.
HTML_TITLE: Final = "Bloom: days at or above the WHO chlorophyll-a levels"


def bloom_html(r: BloomReport) -> str:
    rows = [header_row("site", "group", "valid days",
                        *(f"days ≥ {v:g} µg/L ({n})" for n, v in r.levels.items()),
                        "max µg/L", "note")]  # fmt: skip
    for node, s in r.sites.items():
        counts = [
            cell(str(s.days_above[n]), LEVEL_COLOURS.get(n, "") if s.days_above[n] else "")
            for n in r.levels
        ]
        rows.append(row(cell(node), cell(opt(s.group)),
                             cell(str(s.valid_days)), *counts,
                             cell(_num(s.max_ug_l)), cell(s.note)))  # fmt: skip
    if not r.sites:
        rows.append('<tr><td colspan="7">no site selected</td></tr>')
    return (
        '<table class="figures envnet-bloom">' + "".join(rows) + "</table>"
        f'<p class="note">{escape(r.validity)}</p>'
    )

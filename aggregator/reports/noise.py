"""Noise KPIs of `envnet report noise`: GB 3096-2008 day and night compliance rates per
functional zone class, per node and per group. Pure: stored periods in, a NoiseReport out.

Validity and compliance (docs/standards.md §3.1, §3.3):
- The evaluation quantities are the stored L_d and L_n (`windows`, window day or night): the
  energy means of the period's valid hourly L_Aeq. A period counts only when stored with
  valid=true, i.e. with >= `min_day_hours` of 16 (default 12) or `min_night_hours` of 8
  (default 6) valid hours: envnet's choice, UNVERIFIED (§3.3).
- A valid period complies when its level is at or below the zone's Table 1 limit (§3.1,
  `schemas.standards.gb3096.LIMITS`; a limit is a maximum, so equal complies).
- A night belongs to the local date it starts on (aggregator.engine.windows), so the report
  for date_from..date_to holds the nights starting on those dates.
- A node with several L_Aeq sensors counts each period once, judged by the highest valid level
  among its sensors (envnet's choice: the conservative reading).
- Compliance rate = compliant periods / valid periods; with no valid period it is None, and
  the report says so: never a division by zero.
- A node without `noise_zone` in the inventory (or not in it at all) has no limit: its
  periods are counted but not judged, and it is in no zone class and no group rate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Annotated, Any, Final

import msgspec
import numpy as np

from aggregator.fleet import NodeInfo
from aggregator.reports import request
from aggregator.reports.html_page import cell, escape, header_row, row
from aggregator.reports.noise_source import NoisePeriod, Period, fetch_noise_periods
from aggregator.reports.water import (
    EPOCH,
    csv_text,
    opt,
    pct,
)
from aggregator.storage.influx import InfluxTarget
from schemas.standards import gb3096

HOUR_MS: Final = 3_600_000
DAY_MS: Final = 24 * HOUR_MS


class NoiseSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # The city's civil clock (docs/standards.md §9, `[alerts] utc_offset_h`).
    utc_offset_h: Annotated[int, msgspec.Meta(ge=-12, le=14)] = 8


class PeriodRate(msgspec.Struct, frozen=True):
    """Valid periods, those at or below the limit, and the rate (None without a valid one).
    `compliant` is None for a node without a zone: its periods are counted, not judged."""

    valid: int
    compliant: int | None
    rate: float | None
    # Stored but invalid (too few valid hours, or no level).
    invalid: int = 0


class NoiseNode(msgspec.Struct, frozen=True):
    site: str
    group: str | None
    zone: str | None
    limit_day: float | None
    limit_night: float | None
    day: PeriodRate
    night: PeriodRate
    # Local dates of the periods above the limit.
    day_exceeded: tuple[str, ...] = ()
    night_exceeded: tuple[str, ...] = ()
    note: str = ""


class NoiseZone(msgspec.Struct, frozen=True):
    nodes: tuple[str, ...]
    limit_day: float
    limit_night: float
    day: PeriodRate
    night: PeriodRate


class NoiseGroup(msgspec.Struct, frozen=True):
    """Nodes of a group with a zone, each period judged against its own zone's limit."""

    nodes: tuple[str, ...]
    day: PeriodRate
    night: PeriodRate


class NoiseReport(msgspec.Struct, frozen=True):
    date_from: date
    date_to: date
    zones: dict[str, NoiseZone]
    nodes: dict[str, NoiseNode]
    groups: dict[str, NoiseGroup]
    validity: str

    def to_json(self) -> dict[str, Any]:
        """{"noise": {"from", "to", "zones", "nodes", "groups", "validity"}}, JSON-ready."""
        body: dict[str, Any] = {
            "from": self.date_from.isoformat(),
            "to": self.date_to.isoformat(),
            "zones": msgspec.to_builtins(self.zones),
            "nodes": msgspec.to_builtins(self.nodes),
            "groups": msgspec.to_builtins(self.groups),
            "validity": self.validity,
        }
        return {"noise": body}

    def csv_rows(self) -> list[list[str]]:
        return noise_csv_rows(self)

    def to_csv(self) -> str:
        """`csv_rows` as CSV text."""
        return csv_text(self.csv_rows())

    def text(self) -> str:
        return noise_text(self)

    def html_section(self) -> str:
        return noise_html(self)


# -- evaluation ---------------------------------------------------------------------------


def rate(valid: int, compliant: int, invalid: int = 0) -> PeriodRate:
    return PeriodRate(valid, compliant, compliant / valid if valid else None, invalid)


def pooled(rates: Iterable[PeriodRate]) -> PeriodRate:
    """Judged rates summed (numpy over the counts)."""
    counts = np.array([(r.valid, r.compliant or 0, r.invalid) for r in rates], dtype=np.int64)
    valid, compliant, invalid = counts.sum(axis=0) if len(counts) else (0, 0, 0)
    return rate(int(valid), int(compliant), int(invalid))


def local_date(start_ms: int, utc_offset_h: int) -> date:
    """The local date a period starts on."""
    return EPOCH + timedelta(days=(start_ms + utc_offset_h * HOUR_MS) // DAY_MS)


def node_periods(
    periods: Iterable[NoisePeriod], date_from: date, date_to: date, utc_offset_h: int
) -> dict[tuple[date, Period], float | None]:
    """One node's periods by (local date, day/night) inside the report's dates: the highest
    valid level among its sensors, or None when no sensor's period is valid."""
    out: dict[tuple[date, Period], float | None] = {}
    for p in periods:
        day = local_date(p.start_ms, utc_offset_h)
        if not date_from <= day <= date_to:
            continue
        key = (day, p.period)
        level = p.value if p.valid else None
        held = out.get(key)
        out[key] = level if held is None else (held if level is None else max(held, level))
    return out


def _unjudged(levels: Mapping[tuple[date, Period], float | None], period: Period) -> PeriodRate:
    valid = sum(1 for (_, p), v in levels.items() if p == period and v is not None)
    invalid = sum(1 for (_, p), v in levels.items() if p == period and v is None)
    return PeriodRate(valid, None, None, invalid)


def _judge(
    levels: Mapping[tuple[date, Period], float | None], zone: gb3096.NoiseZone, period: Period
) -> tuple[PeriodRate, tuple[str, ...]]:
    values = [(d, v) for (d, p), v in sorted(levels.items()) if p == period and v is not None]
    invalid = sum(1 for (_, p), v in levels.items() if p == period and v is None)
    exceeded = tuple(d.isoformat() for d, v in values if gb3096.assess(zone, period, v).exceeds)
    return rate(len(values), len(values) - len(exceeded), invalid), exceeded


def evaluate_node(
    node: str,
    info: NodeInfo | None,
    group: str | None,
    levels: Mapping[tuple[date, Period], float | None],
) -> NoiseNode:
    zone, note = _zone(node, info)
    site = info.site if info else ""
    if zone is None:
        day, night = (_unjudged(levels, p) for p in ("day", "night"))
        return NoiseNode(site, group, None, None, None, day, night, note=note)
    day, day_exceeded = _judge(levels, zone, "day")
    night, night_exceeded = _judge(levels, zone, "night")
    if not levels:
        note = "no stored day or night period in the dates: zero valid periods"
    limits = gb3096.LIMITS[zone]
    return NoiseNode(
        site, group, zone, limits.day, limits.night, day, night, day_exceeded, night_exceeded,
        note,
    )  # fmt: skip


def _zone(node: str, info: NodeInfo | None) -> tuple[gb3096.NoiseZone | None, str]:
    if info is None:
        return None, f"{node} is not in the fleet inventory: no noise zone, not judged"
    if info.noise_zone is None:
        return None, "no noise_zone in the fleet inventory: not judged (GB 3096-2008 §4)"
    try:
        return gb3096.parse_zone(info.noise_zone), ""
    except gb3096.UnknownZoneError as exc:
        return None, f"{exc}: not judged"


def validity_statement(s: NoiseSettings) -> str:
    return (
        "A period counts when its stored L_d or L_n (energy mean of the valid hourly L_Aeq, "
        "docs/standards.md §3.3) is valid: >= 12 of 16 day hours, >= 6 of 8 night hours by "
        "default (`[alerts.windows] min_day_hours`, `min_night_hours`; envnet's choice, "
        "UNVERIFIED, §3.3). It complies when at or below the zone's GB 3096-2008 Table 1 limit "
        "(docs/standards.md §3.1). Day 06-22 h, night 22-06 h local unless configured (§3.2); "
        f"a night belongs to the local date (UTC{s.utc_offset_h:+d}) it starts on. A node with "
        "several sensors: the highest valid level of each period (envnet's choice). Rate = "
        "compliant / valid periods, none without a valid period. Zone classes of nodes are "
        "from the fleet inventory (UNVERIFIED against official maps, §3.1)."
    )


def noise_report(
    date_from: date,
    date_to: date,
    nodes: Sequence[str],
    groups: Mapping[str, str | None],
    node_info: Mapping[str, NodeInfo],
    periods: Sequence[NoisePeriod],
    settings: NoiseSettings | None = None,
) -> NoiseReport:
    s = settings or NoiseSettings()
    by_node: dict[str, list[NoisePeriod]] = {}
    for p in periods:
        by_node.setdefault(p.node, []).append(p)
    results = {
        node: evaluate_node(
            node,
            node_info.get(node),
            groups.get(node),
            node_periods(by_node.get(node, ()), date_from, date_to, s.utc_offset_h),
        )
        for node in nodes
    }
    zones: dict[str, NoiseZone] = {}
    for zone in gb3096.ZONES:
        members = {n: r for n, r in results.items() if r.zone == zone}
        if members:
            limits = gb3096.LIMITS[zone]
            zones[zone] = NoiseZone(
                tuple(members),
                limits.day,
                limits.night,
                pooled(r.day for r in members.values()),
                pooled(r.night for r in members.values()),
            )
    by_group: dict[str, dict[str, NoiseNode]] = {}
    for node, r in results.items():
        if r.group is not None and r.zone is not None:
            by_group.setdefault(r.group, {})[node] = r
    return NoiseReport(
        date_from=date_from,
        date_to=date_to,
        zones=zones,
        nodes=results,
        groups={
            g: NoiseGroup(
                tuple(m), pooled(r.day for r in m.values()), pooled(r.night for r in m.values())
            )
            for g, m in sorted(by_group.items())
        },
        validity=validity_statement(s),
    )


async def load_noise_report(
    target: InfluxTarget,
    period: request.Period,
    nodes: Sequence[str],
    groups: Mapping[str, str | None],
    node_info: Mapping[str, NodeInfo],
    *,
    settings: NoiseSettings | None = None,
) -> NoiseReport:
    """Fetch the stored day and night periods of `nodes` and compute their compliance.
    Local days are the period's (`[alerts] utc_offset_h`)."""
    s = msgspec.structs.replace(settings or NoiseSettings(), utc_offset_h=period.utc_offset_h)
    periods = await fetch_noise_periods(target, nodes, period)
    return noise_report(period.first, period.last, nodes, groups, node_info, periods, s)


# -- presentation -------------------------------------------------------------------------

CSV_HEADER: Final = [
    "row", "key", "zone", "site", "limit_day", "limit_night", "day_valid", "day_compliant",
    "day_rate", "day_invalid", "night_valid", "night_compliant", "night_rate", "night_invalid",
    "note",
]  # fmt: skip


def _rate_cells(r: PeriodRate) -> list[str]:
    return [str(r.valid), opt(r.compliant), "" if r.rate is None else f"{r.rate:.3f}",
            str(r.invalid)]  # fmt: skip


def _limit(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


def noise_csv_rows(r: NoiseReport) -> list[list[str]]:
    """A `zone` row per zone class, a `node` row per node, a `group` row per group."""
    out = [list(CSV_HEADER)]
    for zone, z in r.zones.items():
        out.append(["zone", zone, zone, "", _limit(z.limit_day), _limit(z.limit_night),
                    *_rate_cells(z.day), *_rate_cells(z.night), ""])  # fmt: skip
    for node, n in r.nodes.items():
        out.append(["node", node, opt(n.zone), n.site, _limit(n.limit_day),
                    _limit(n.limit_night), *_rate_cells(n.day), *_rate_cells(n.night),
                    n.note])  # fmt: skip
    for name, g in r.groups.items():
        out.append(["group", name, "", "", "", "", *_rate_cells(g.day), *_rate_cells(g.night),
                    ""])  # fmt: skip
    return out


def _text_rate(r: PeriodRate) -> str:
    if r.compliant is None:
        return f"{r.valid} not judged"
    return f"{r.compliant}/{r.valid} {pct(r.rate)}"


def noise_text(r: NoiseReport) -> str:
    lines = [f"Noise, GB 3096-2008, {r.date_from} .. {r.date_to}", ""]
    lines.append(f"{'zone':<6} {'limits':<8} {'day compliant':<20} {'night compliant':<20} nodes")
    for zone, z in r.zones.items():
        limits = f"{z.limit_day:g}/{z.limit_night:g}"
        lines.append(f"{zone:<6} {limits:<8} {_text_rate(z.day):<20} "
                     f"{_text_rate(z.night):<20} {', '.join(z.nodes)}")  # fmt: skip
    if not r.zones:
        lines.append("(no node with a noise zone)")
    lines += ["", f"{'node':<16} {'zone':<5} {'day compliant':<20} {'night compliant':<20}"]
    for node, n in r.nodes.items():
        note = f"  ({n.note})" if n.note else ""
        lines.append(f"{node:<16} {opt(n.zone) or '-':<5} {_text_rate(n.day):<20} "
                     f"{_text_rate(n.night):<20}{note}")  # fmt: skip
    if r.groups:
        lines += ["", f"{'group':<16} {'day compliant':<20} {'night compliant':<20}"]
        for name, g in r.groups.items():
            lines.append(f"{name:<16} {_text_rate(g.day):<20} {_text_rate(g.night):<20}")
    lines += ["", "Validity: " + r.validity]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _html_rate(x: PeriodRate) -> list[str]:
    judged = "-" if x.compliant is None else f"{x.compliant}/{x.valid}"
    return [cell(judged), cell(pct(x.rate))]


# The heading of the HTML section (aggregator.reports.html_page); the fragment has none.
HTML_TITLE: Final = "Noise: GB 3096-2008 day and night compliance"


def noise_html(r: NoiseReport) -> str:
    zones = [header_row("zone", "day limit", "night limit", "day", "day rate", "night",
                         "night rate", "nodes")]  # fmt: skip
    for zone, z in r.zones.items():
        zones.append(row(cell(zone), cell(f"{z.limit_day:g}"),
                              cell(f"{z.limit_night:g}"), *_html_rate(z.day),
                              *_html_rate(z.night), cell(", ".join(z.nodes))))  # fmt: skip
    if not r.zones:
        zones.append('<tr><td colspan="8">no node with a noise zone</td></tr>')
    nodes = [header_row("node", "zone", "day", "day rate", "night", "night rate", "note")]
    for node, n in r.nodes.items():
        nodes.append(row(cell(node), cell(opt(n.zone)), *_html_rate(n.day),
                              *_html_rate(n.night), cell(n.note)))  # fmt: skip
    return (
        '<table class="figures envnet-noise">' + "".join(zones) + "</table>"
        '<table class="figures">' + "".join(nodes) + "</table>"
        f'<p class="note">{escape(r.validity)}</p>'
    )

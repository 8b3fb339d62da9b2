"""Water KPIs of `envnet report water`: GB 3838-2002 site classes per sample day, per site over
the period, and per group. Pure: readings in, a WaterReport out (numpy for the arithmetic).

How a day's class is formed (docs/standards.md §5.1, §5.2):
- Each item's readings (aggregator.reports.water_source: stat=mean, not flagged calibrating,
  maintenance or out_of_range) are averaged per local clock hour; an hour with at least one
  reading is an hour with data.
- A (site, item, local day) is valid with at least `min_hours` hours with data. **envnet's
  choice, UNVERIFIED**: no clause read for docs/standards.md fixes how many automatic-station
  values make a water day; 6 is what a sonde sampling every 4 hours gives.
- The item's representative daily value is the mean of its hourly means (`daily_statistic =
  "mean"`, the default) or its worst hourly mean ("worst": the highest for pollutants, the
  lowest for DO, the one farthest outside 6-9 for pH). **envnet's choice, UNVERIFIED**: GB
  3838-2002 evaluates a sample; for a continuous sonde the daily mean is taken as the sample.
- The day's class is the GB 3838-2002 single-factor class (§5.1; schemas.standards.gb3838
  .evaluate_site) of the items valid that day: the worst item decides, one item worse than V
  makes the day 劣V (6). A day counts (a sample day) when at least one evaluated item is valid
  and, if `required_items` is set, every one of those is.
- The site's period class is the single-factor class of each item's period mean (the mean
  of its valid daily values): the way §5.2 evaluates a body with few sections, applied to one
  site over time (**envnet's choice**).
- A group (and all selected sites) is rated per §5.2: with fewer than 5 evaluated sites, the
  sites' period means are averaged item by item and classified, the class named by its
  wording (优, 良好, ...); with 5 or more, by the shares of sites in Classes I-III and 劣V
  (the rating table, `SHARE_RATINGS`). A group mixing rivers and lakes with fewer than 5
  sites is not rated: their TP rows differ (§5.1).
- A site without `water_body` in the inventory cannot be classified and is listed with a
  note; a site without `water_target` is held to `default_target` (Class III, the
  programme's target; **envnet's choice**).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any, Final, cast, get_args

import msgspec
import numpy as np
import numpy.typing as npt

from aggregator.fleet import NodeInfo
from aggregator.reports.html_page import cell, escape, header_row, row
from aggregator.reports.request import Period
from aggregator.reports.settings import CLASS_III, WaterSettings
from aggregator.reports.water_source import WATER_QUANTITIES, ReadingRows, fetch_readings
from aggregator.storage.influx import InfluxTarget
from schemas.standards import gb3838
from schemas.standards.gb3838 import WaterBody, WaterItem

HOUR_MS: Final = 3_600_000
EPOCH: Final = date(1970, 1, 1)
MIN_SECTIONS_FOR_SHARES: Final = 5
# -- day bucketing (shared with the bloom KPIs) ---------------------------------------------


class DailyValues(msgspec.Struct, frozen=True):
    """Per local day with data: hours with data, the mean, lowest and highest hourly mean,
    and the highest single reading. `days` are local day numbers since 1970-01-01."""

    days: npt.NDArray[np.int64]
    hours: npt.NDArray[np.int64]
    mean: npt.NDArray[np.float64]
    min_hour: npt.NDArray[np.float64]
    max_hour: npt.NDArray[np.float64]
    max_reading: npt.NDArray[np.float64]

    def dates(self) -> list[date]:
        return [EPOCH + timedelta(days=int(d)) for d in self.days]


def daily_values(
    ts_ms: npt.NDArray[np.int64], values: npt.NDArray[np.float64], utc_offset_h: int
) -> DailyValues:
    """Readings bucketed by local hour, then by local day (the day of the hour's start)."""
    local_hour = (ts_ms + utc_offset_h * HOUR_MS) // HOUR_MS
    hours, inverse = np.unique(local_hour, return_inverse=True)
    n = np.bincount(inverse)
    hourly = np.bincount(inverse, weights=values) / n
    max_in_hour = np.full(len(hours), -np.inf)
    np.maximum.at(max_in_hour, inverse, values)
    days, day_of_hour = np.unique(hours // 24, return_inverse=True)
    count = np.bincount(day_of_hour)
    lowest = np.full(len(days), np.inf)
    highest = np.full(len(days), -np.inf)
    top = np.full(len(days), -np.inf)
    np.minimum.at(lowest, day_of_hour, hourly)
    np.maximum.at(highest, day_of_hour, hourly)
    np.maximum.at(top, day_of_hour, max_in_hour)
    mean = np.bincount(day_of_hour, weights=hourly) / count
    return DailyValues(days.astype(np.int64), count.astype(np.int64), mean, lowest, highest, top)


def _worst(item: WaterItem, d: DailyValues) -> npt.NDArray[np.float64]:
    if item in gb3838.MINIMA:
        return d.min_hour
    if item != "ph":
        return d.max_hour
    low, high = gb3838.PH_RANGE
    below, above = low - d.min_hour, d.max_hour - high
    return np.where(
        (below <= 0) & (above <= 0), d.mean, np.where(below > above, d.min_hour, d.max_hour)
    )


def item_days(
    item: WaterItem, ts_ms: npt.NDArray[np.int64], values: npt.NDArray[np.float64], s: WaterSettings
) -> dict[date, float]:
    """The item's representative value on each valid local day."""
    if len(ts_ms) == 0:
        return {}
    d = daily_values(ts_ms, values, s.utc_offset_h)
    chosen = d.mean if s.daily_statistic == "mean" else _worst(item, d)
    valid = d.hours >= s.min_hours
    return {day: float(v) for day, v, ok in zip(d.dates(), chosen, valid, strict=True) if ok}


# -- results --------------------------------------------------------------------------------


class WaterDay(msgspec.Struct, frozen=True):
    """One sample day of one site."""

    date: str
    water_class: int = msgspec.field(name="class")
    class_name: str
    # The items whose class is the day's class (the worst items), and each item worse than
    # the target class with its exceedance multiple (GB 3838-2002 §5.1 超标倍数).
    deciding: tuple[str, ...]
    exceeding: dict[str, float]
    values: dict[str, float]
    # Items the site had valid days of in the period but not on this day.
    missing: tuple[str, ...]


class WaterSite(msgspec.Struct, frozen=True):
    site: str
    group: str | None
    body: str | None
    target: int
    valid_days: int
    days_iii_or_better: int
    days_worse_than_v: int
    # The period class from the period mean of each item (None without a sample day).
    water_class: int | None = msgspec.field(name="class")
    class_name: str | None
    quality: str | None
    meets_target: bool | None
    deciding: tuple[str, ...]
    exceeding: dict[str, float]
    mean: dict[str, float]
    days: tuple[WaterDay, ...]
    note: str = ""


class WaterGroup(msgspec.Struct, frozen=True):
    """Sites of a group (or all selected sites) with a period class, rated per §5.2."""

    sites: int
    sites_iii_or_better: int
    sites_worse_than_v: int
    share_iii_or_better: float | None
    share_worse_than_v: float | None
    rating: str | None
    rating_en: str | None
    rating_method: str


class WaterReport(msgspec.Struct, frozen=True):
    date_from: date
    date_to: date
    sites: dict[str, WaterSite]
    groups: dict[str, WaterGroup]
    all: WaterGroup
    validity: str

    def to_json(self) -> dict[str, Any]:
        """{"water": {"from", "to", "sites", "groups", "all", "validity"}}, JSON-ready."""
        body: dict[str, Any] = {
            "from": self.date_from.isoformat(),
            "to": self.date_to.isoformat(),
            "sites": msgspec.to_builtins(self.sites),
            "groups": msgspec.to_builtins(self.groups),
            "all": msgspec.to_builtins(self.all),
            "validity": self.validity,
        }
        return {"water": body}

    def csv_rows(self) -> list[list[str]]:
        return water_csv_rows(self)

    def to_csv(self) -> str:
        """`csv_rows` as CSV text."""
        return csv_text(self.csv_rows())

    def text(self) -> str:
        return water_text(self)

    def html_section(self) -> str:
        return water_html(self)


# -- evaluation ---------------------------------------------------------------------------


class _SiteData(msgspec.Struct, frozen=True):
    body: WaterBody
    target: int
    items: dict[WaterItem, dict[date, float]]


def evaluate_day(
    day: date, values: Mapping[WaterItem, float], seen: Sequence[WaterItem], body: WaterBody,
    target: int,
) -> WaterDay | None:  # fmt: skip
    """The day's single-factor class, or None when no item GB 3838 evaluates for `body`."""
    try:
        e = gb3838.evaluate_site(values, body, target)
    except gb3838.NoWaterItemsError:
        return None
    return WaterDay(
        date=day.isoformat(),
        water_class=e.water_class,
        class_name=gb3838.class_name(e.water_class),
        deciding=_deciding(e),
        exceeding={c.item: round(c.multiple, 3) for c in e.exceeding},
        values={item: round(v, 4) for item, v in values.items()},
        missing=tuple(i for i in seen if i not in values),
    )


def _deciding(e: gb3838.SiteEvaluation) -> tuple[str, ...]:
    return tuple(sorted(c.item for c in e.items.values() if c.water_class == e.water_class))


def evaluate_site(
    node: str, info: NodeInfo | None, group: str | None, data: _SiteData | None,
    s: WaterSettings,
) -> WaterSite:  # fmt: skip
    """Sample days and the period class of one site."""
    if data is None:
        note = _no_body_note(node, info)
        target = (
            s.default_target if info is None or info.water_target is None else info.water_target
        )
        body = None if info is None else info.water_body
        return _empty_site(info, group, body, target, note)
    seen = tuple(i for i in get_args(WaterItem) if data.items.get(i))
    all_days = sorted({d for per_day in data.items.values() for d in per_day})
    days: list[WaterDay] = []
    for day in all_days:
        values = {i: data.items[i][day] for i in seen if day in data.items[i]}
        if any(r not in values for r in s.required_items):
            continue
        result = evaluate_day(day, values, seen, data.body, data.target)
        if result is not None:
            days.append(result)
    if not days:
        note = "no sample day: no item GB 3838-2002 evaluates had a valid day (§5.1)"
        return _empty_site(info, group, data.body, data.target, note)
    # The period mean of each item over the sample days (its valid daily values on them).
    counted = {date.fromisoformat(d.date) for d in days}
    per_item = {i: [v for day, v in data.items[i].items() if day in counted] for i in seen}
    means = {i: float(np.mean(vs)) for i, vs in per_item.items() if vs}
    e = gb3838.evaluate_site(means, data.body, data.target)
    classes = np.array([d.water_class for d in days])
    return WaterSite(
        site=info.site if info else node,
        group=group,
        body=data.body,
        target=data.target,
        valid_days=len(days),
        days_iii_or_better=int(np.count_nonzero(classes <= CLASS_III)),
        days_worse_than_v=int(np.count_nonzero(classes >= gb3838.WORSE_THAN_V)),
        water_class=e.water_class,
        class_name=gb3838.class_name(e.water_class),
        quality=e.quality.name_zh,
        meets_target=e.meets_target,
        deciding=_deciding(e),
        exceeding={c.item: round(c.multiple, 3) for c in e.exceeding},
        mean={i: round(v, 4) for i, v in means.items()},
        days=tuple(days),
    )


def _no_body_note(node: str, info: NodeInfo | None) -> str:
    if info is None:
        return f"{node} is not in the fleet inventory: no water body to classify it by"
    if info.water_body is None:
        return "no water_body in the fleet inventory: GB 3838-2002 needs river or lake (§5.1)"
    return "no item had a valid day in the period: zero valid days"


def _empty_site(
    info: NodeInfo | None, group: str | None, body: str | None, target: int, note: str
) -> WaterSite:
    return WaterSite(
        site=info.site if info else "", group=group, body=body, target=target, valid_days=0,
        days_iii_or_better=0, days_worse_than_v=0, water_class=None, class_name=None,
        quality=None, meets_target=None, deciding=(), exceeding={}, mean={}, days=(), note=note,
    )  # fmt: skip


class ShareRating(msgspec.Struct, frozen=True):
    """One row of the §5.2 rating table, in whole percent: I-III share >= min_i_iii, and
    min_worse_v <= 劣V share < max_worse_v."""

    min_i_iii: int
    min_worse_v: int
    max_worse_v: int
    quality: gb3838.Quality


# docs/standards.md §5.2, river or basin level with 5 or more sections (Shenzhen MEEB Q&A;
# HIGH). The wording is the class wording of gb3838.QUALITY (环办[2011]22号).
SHARE_RATINGS: Final = (
    ShareRating(90, 0, 101, gb3838.QUALITY[1]),
    ShareRating(75, 0, 101, gb3838.QUALITY[3]),
    ShareRating(0, 0, 20, gb3838.QUALITY[4]),
    ShareRating(0, 20, 40, gb3838.QUALITY[5]),
    ShareRating(0, 40, 101, gb3838.QUALITY[gb3838.WORSE_THAN_V]),
)


def rating_from_shares(n: int, i_iii: int, worse_v: int) -> gb3838.Quality:
    """The §5.2 table: compared in integers (100·k >= p·n), so 9 of 10 is exactly 90 %."""
    for rating in SHARE_RATINGS:
        if (
            100 * i_iii >= rating.min_i_iii * n
            and 100 * worse_v >= rating.min_worse_v * n
            and 100 * worse_v < rating.max_worse_v * n
        ):
            return rating.quality
    raise AssertionError("the §5.2 table covers every share")  # pragma: no cover


def evaluate_group(sites: Sequence[WaterSite]) -> WaterGroup:
    """§5.2 over the sites that have a period class."""
    rated = [s for s in sites if s.water_class is not None]
    n = len(rated)
    good = sum(1 for s in rated if cast(int, s.water_class) <= CLASS_III)
    bad = sum(1 for s in rated if cast(int, s.water_class) >= gb3838.WORSE_THAN_V)
    if n == 0:
        return WaterGroup(0, 0, 0, None, None, None, None, "no site with a sample day: not rated")
    quality, method = _group_quality(rated, n, good, bad)
    return WaterGroup(
        sites=n, sites_iii_or_better=good, sites_worse_than_v=bad,
        share_iii_or_better=good / n, share_worse_than_v=bad / n,
        rating=None if quality is None else quality.name_zh,
        rating_en=None if quality is None else quality.name_en, rating_method=method,
    )  # fmt: skip


def _group_quality(
    rated: Sequence[WaterSite], n: int, good: int, bad: int
) -> tuple[gb3838.Quality | None, str]:
    if n >= MIN_SECTIONS_FOR_SHARES:
        method = f"{n} sections (>= 5): shares of I-III and 劣V sections (docs/standards.md §5.2)"
        return rating_from_shares(n, good, bad), method
    bodies = {s.body for s in rated}
    if len(bodies) != 1:
        return None, "fewer than 5 sections of rivers and lakes together: not rated (§5.2)"
    items = sorted({i for s in rated for i in s.mean})
    means = {
        cast(WaterItem, i): float(np.mean([s.mean[i] for s in rated if i in s.mean])) for i in items
    }
    target = min(s.target for s in rated)
    e = gb3838.evaluate_site(means, cast(WaterBody, bodies.pop()), target)
    method = (
        f"{n} section(s) (< 5): mean concentrations item by item, class "
        f"{gb3838.class_name(e.water_class)} (docs/standards.md §5.2)"
    )
    return e.quality, method


def validity_statement(s: WaterSettings) -> str:
    stat = (
        "the mean of its hourly means"
        if s.daily_statistic == "mean"
        else "its worst hourly mean (highest; DO lowest; pH farthest outside 6-9)"
    )
    required = (
        f"; a day counts only when {', '.join(s.required_items)} are all valid"
        if s.required_items
        else ""
    )
    return (
        f"A site-item-day is valid with >= {s.min_hours} local hours (UTC{s.utc_offset_h:+d}) "
        f"holding readings (stat=mean, not flagged calibrating, maintenance or out_of_range); "
        f"envnet's choice, UNVERIFIED. The item's daily value is {stat} (UNVERIFIED). A sample "
        f"day's class is the GB 3838-2002 single-factor class of that day's valid items, the "
        f"worst item deciding, 劣V coded 6 (docs/standards.md §5.1, §5.2){required}. The "
        f"site's class is that of the period mean of each item's valid daily values (envnet's "
        f"choice); groups "
        f"are rated per docs/standards.md §5.2 (< 5 sections: mean concentrations; >= 5: "
        f"shares of I-III and 劣V). Sites without a target are held to Class "
        f"{gb3838.class_name(s.default_target)} (envnet's choice)."
    )


def water_report(
    date_from: date,
    date_to: date,
    nodes: Sequence[str],
    groups: Mapping[str, str | None],
    node_info: Mapping[str, NodeInfo],
    rows: ReadingRows,
    settings: WaterSettings | None = None,
) -> WaterReport:
    """The water KPIs of `nodes` from their readings over date_from..date_to."""
    s = settings or WaterSettings()
    sites: dict[str, WaterSite] = {}
    for node in nodes:
        info = node_info.get(node)
        sites[node] = evaluate_site(
            node, info, groups.get(node), _site_data(node, info, rows, (date_from, date_to), s), s
        )
    by_group: dict[str, list[WaterSite]] = {}
    for node, site in sites.items():
        group = groups.get(node)
        if group is not None:
            by_group.setdefault(group, []).append(site)
    return WaterReport(
        date_from=date_from,
        date_to=date_to,
        sites=sites,
        groups={g: evaluate_group(members) for g, members in sorted(by_group.items())},
        all=evaluate_group(list(sites.values())),
        validity=validity_statement(s),
    )


def _site_data(
    node: str, info: NodeInfo | None, rows: ReadingRows, period: tuple[date, date],
    s: WaterSettings,
) -> _SiteData | None:  # fmt: skip
    date_from, date_to = period
    if info is None or info.water_body is None:
        return None
    target = info.water_target if info.water_target is not None else s.default_target
    items: dict[WaterItem, dict[date, float]] = {}
    for item in get_args(WaterItem):
        samples = rows.series.get((node, item))
        if samples is not None:
            ts, values = samples.arrays()
            days = item_days(item, ts, values, s)
            items[item] = {d: v for d, v in days.items() if date_from <= d <= date_to}
    if not any(items.values()):
        return None
    return _SiteData(info.water_body, target, items)


async def load_water_report(
    target: InfluxTarget,
    period: Period,
    nodes: Sequence[str],
    groups: Mapping[str, str | None],
    node_info: Mapping[str, NodeInfo],
    *,
    settings: WaterSettings | None = None,
) -> WaterReport:
    """Fetch the water readings of `nodes` and compute their water KPIs.
    Local days are the period's (`[alerts] utc_offset_h`)."""
    s = msgspec.structs.replace(settings or WaterSettings(), utc_offset_h=period.utc_offset_h)
    rows = await fetch_readings(target, WATER_QUANTITIES, nodes, period)
    return water_report(period.first, period.last, nodes, groups, node_info, rows, s)


# -- presentation -------------------------------------------------------------------------

# The colours Chinese water-quality maps customarily give the classes (I light blue, II blue,
# III green, IV yellow, V orange, 劣V red). envnet's choice: no standard in
# docs/standards.md fixes them.
CLASS_COLOURS: Final[dict[int, str]] = {
    1: "#ccffff", 2: "#00ccff", 3: "#00ff00", 4: "#ffff00", 5: "#ff9b00", 6: "#ff0000",
}  # fmt: skip


def csv_text(rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _share(x: float | None) -> str:
    return "" if x is None else f"{x:.3f}"


def opt(x: object) -> str:
    return "" if x is None else str(x)


def _items(d: Mapping[str, float]) -> str:
    return ";".join(f"{k}:{v:g}" for k, v in d.items())


CSV_HEADER: Final = [
    "row", "node", "site", "group", "date", "class", "class_name", "deciding", "exceeding",
    "valid_days", "days_iii_or_better", "days_worse_than_v", "sites", "share_iii_or_better",
    "share_worse_than_v", "rating", "note",
]  # fmt: skip


def water_csv_rows(r: WaterReport) -> list[list[str]]:
    """One `day` row per site and sample day, one `site` row per site (the period), one
    `group` row per group and an `all` row; the header first."""
    out = [list(CSV_HEADER)]
    for node, s in r.sites.items():
        for d in s.days:
            out.append([
                "day", node, s.site, opt(s.group), d.date, str(d.water_class), d.class_name,
                ";".join(d.deciding), _items(d.exceeding), "", "", "", "", "", "", "", "",
            ])  # fmt: skip
        out.append([
            "site", node, s.site, opt(s.group), f"{r.date_from}..{r.date_to}",
            opt(s.water_class), opt(s.class_name), ";".join(s.deciding), _items(s.exceeding),
            str(s.valid_days), str(s.days_iii_or_better), str(s.days_worse_than_v),
            "", "", "", opt(s.quality), s.note,
        ])  # fmt: skip
    for name, g in [*r.groups.items(), ("", r.all)]:
        out.append([
            "group" if name else "all", "", "", name, f"{r.date_from}..{r.date_to}", "", "",
            "", "", "", "", "", str(g.sites), _share(g.share_iii_or_better),
            _share(g.share_worse_than_v), opt(g.rating), g.rating_method,
        ])  # fmt: skip
    return out


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def water_text(r: WaterReport) -> str:
    lines = [f"Water, GB 3838-2002, {r.date_from} .. {r.date_to}", ""]
    lines.append(f"{'site':<16} {'group':<10} {'body':<5} {'tgt':<4} {'days':>4} {'<=III':>5} "
                 f"{'劣V':>4} {'class':<5} deciding")  # fmt: skip
    for node, s in r.sites.items():
        tgt = gb3838.class_name(s.target)
        lines.append(
            f"{node:<16} {opt(s.group):<10} {opt(s.body):<5} {tgt:<4} {s.valid_days:>4} "
            f"{s.days_iii_or_better:>5} {s.days_worse_than_v:>4} {opt(s.class_name) or '-':<5} "
            f"{','.join(s.deciding)}{'  (' + s.note + ')' if s.note else ''}"
        )
    lines += ["", "Class per sample day:"]
    for node, s in r.sites.items():
        days = " ".join(f"{d.date[5:]}:{d.class_name}" for d in s.days) or "(no sample day)"
        lines.append(f"  {node}: {days}")
    lines += ["", f"{'group':<16} {'sites':>5} {'I-III':>8} {'劣V':>8} rating"]
    for name, g in [*r.groups.items(), ("(all)", r.all)]:
        lines.append(
            f"{name:<16} {g.sites:>5} {pct(g.share_iii_or_better):>8} "
            f"{pct(g.share_worse_than_v):>8} {g.rating or '-'} ({g.rating_method})"
        )
    lines += ["", "Validity: " + r.validity]
    return "\n".join(line.rstrip() for line in lines) + "\n"


# The heading of the HTML section (aggregator.reports.html_page); the fragment has none.
HTML_TITLE: Final = "Water: GB 3838-2002 classes per site and sample day"


def water_html(r: WaterReport) -> str:
    """The water class table (a row per sample day, a column per site, cells coloured by
    class), the site and group summaries, and the validity statement."""
    nodes = list(r.sites)
    by_day = {(n, d.date): d for n, s in r.sites.items() for d in s.days}
    dates = sorted({d for _, d in by_day})
    head = cell("date", tag="th") + "".join(cell(n, tag="th", title=r.sites[n].site) for n in nodes)
    rows = []
    for day in dates:
        cells = [cell(day)]
        for n in nodes:
            d = by_day.get((n, day))
            if d is None:
                cells.append(cell(""))
            else:
                tip = "deciding: " + ", ".join(d.deciding)
                cells.append(cell(d.class_name, CLASS_COLOURS[d.water_class], title=tip))
        rows.append(row(*cells))
    if not dates:
        rows.append(f'<tr><td colspan="{len(nodes) + 1}">no sample day</td></tr>')
    summary = [
        header_row(
            "site",
            "group",
            "target",
            "sample days",
            "≤ III",
            "劣V",
            "class",
            "deciding items",
            "note",
        )
    ]
    for n, s in r.sites.items():
        colour = CLASS_COLOURS.get(s.water_class or 0, "")
        summary.append(row(
            cell(n), cell(opt(s.group)), cell(gb3838.class_name(s.target)),
            cell(str(s.valid_days)), cell(str(s.days_iii_or_better)),
            cell(str(s.days_worse_than_v)), cell(s.class_name or "-", colour),
            cell(", ".join(s.deciding)), cell(s.note),
        ))  # fmt: skip
    groups = [header_row("group", "sites", "I-III", "劣V", "rating", "method")]
    for name, g in [*r.groups.items(), ("(all)", r.all)]:
        groups.append(row(
            cell(name), cell(str(g.sites)), cell(pct(g.share_iii_or_better)),
            cell(pct(g.share_worse_than_v)), cell(g.rating or "-"),
            cell(g.rating_method),
        ))  # fmt: skip
    return (
        f'<div style="overflow-x:auto"><table class="figures envnet-water"><tr>{head}</tr>'
        + "".join(rows)
        + '</table></div><table class="figures">'
        + "".join(summary)
        + '</table><table class="figures">'
        + "".join(groups)
        + f'</table><p class="note">{escape(r.validity)}</p>'
    )

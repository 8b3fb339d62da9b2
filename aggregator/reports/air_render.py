"""The air report as JSON, CSV, a text table and HTML sections. Pure.

JSON (`--json`): {"air": {"from", "to", "nodes": {id: figures}, "groups": {name: figures},
"validity": {figure: how its days were chosen}, ...}}; each node's figures carry at least
valid_days, good_days, good_day_ratio, exceedance_days, mean and edition (issue 12's contract).

CSV (`--csv`): one row per figure, a long table that any spreadsheet pivots:
kind,scope,id,figure,key,value — e.g. `air,node,bj-x,exceedance_days,pm2_5,19`; `key` is the
pollutant, category or month a figure is broken down by, empty for a single number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any, Final

import msgspec

from aggregator.reports.air import POLLUTANTS, AirFigures, AirReport, JudgedDay
from aggregator.reports.html_page import Section, escape
from schemas.standards import hj633

# How each figure's days were chosen (docs/standards.md §1.4, §2.3, §2.4, §2.7).
VALIDITY: Final = {
    "daily_values": "a pollutant's daily value is its stored 24-h mean (valid with >= 20 valid "
    "1-h means) or, for O3, its MDA8 (8-h means valid with >= 6 hours; [alerts.windows] MDA8 "
    "rule, UNVERIFIED), as the aggregator judged them: GB 3095-2026 Table 4, docs/standards.md "
    "§1.4",
    "valid_days": "days with a publishable HJ 633 daily AQI: every indicator of the day's "
    "edition present, or an AQI above 100 from those present (HJ 633-2026 §5.3; "
    "docs/standards.md §2.4, §2.7)",
    "good_days": "valid days with daily AQI <= 100, levels I and II (docs/standards.md §2.3)",
    "good_day_ratio": "good_days / valid_days",
    "categories": "valid days per HJ 633 level I-VI (docs/standards.md §2.3)",
    "heavy_days": "valid days with daily AQI > 200, levels V and VI (docs/standards.md §2.3)",
    "exceedance_days": "days whose valid daily value of the pollutant (O3: MDA8) is above the "
    "GB 3095 Table 1 24-h (O3: 8-h) limit of the edition and phase in force that day, for the "
    "node's zone class (docs/standards.md §0.1, §1.1, §1.3); counted whether or not the day's "
    "AQI is publishable",
    "mean": "arithmetic mean of the pollutant's valid daily means in the period (O3 has none: "
    "see o3_evaluation); µg/m³, CO mg/m³ (docs/standards.md §2.7)",
    "o3_evaluation": "the configured percentile (default 90th) of the valid MDA8 values in the "
    "period; method and percentile UNVERIFIED ([report] o3_percentile_method, "
    "docs/standards.md §2.7)",
    "groups": "mean-of-nodes: each day's pollutant values averaged over the group's nodes that "
    "have one, then judged as one site; pooled: every node-day counted (docs/standards.md §2.7, "
    "UNVERIFIED)",
}


def to_json(report: AirReport) -> dict[str, Any]:
    return {
        "air": {
            "from": report.period.first.isoformat(),
            "to": report.period.last.isoformat(),
            "utc_offset_h": report.period.utc_offset_h,
            "settings": msgspec.to_builtins(report.settings),
            "nodes": {n: figures_json(f) for n, f in report.nodes.items()},
            "groups": {g: figures_json(f) for g, f in report.groups.items()},
            "validity": VALIDITY,
        }
    }


def figures_json(f: AirFigures) -> dict[str, Any]:
    out: dict[str, Any] = {
        "valid_days": f.valid_days,
        "good_days": f.good_days,
        "good_day_ratio": f.good_day_ratio,
        "exceedance_days": f.exceedance_days,
        "mean": f.mean,
        "edition": f.edition,
        "days_in_period": f.days_in_period,
        "heavy_days": f.heavy_days,
        "categories": f.categories,
        "o3_evaluation": f.o3_percentile,
        "assessed_days": f.assessed_days,
        "editions": f.editions,
        "zone": f.zone,
        "zone_source": f.zone_source,
        "clauses": list(f.clauses),
        "months": {m: {"valid_days": v.valid_days, "good_days": v.good_days}
                   for m, v in f.months.items()},
        "daily": [day_json(d) for d in f.days],
    }  # fmt: skip
    if f.members:
        out["members"] = list(f.members)
    return out


def day_json(d: JudgedDay) -> dict[str, Any]:
    return {
        "date": d.day.isoformat(),
        "aqi": d.aqi,
        "level": None if d.category is None else d.category.level,
        "publishable": d.publishable,
        "edition": d.edition,
        "primary": list(d.primary),
        "missing": list(d.missing),
        "exceeded": list(d.exceeded),
        "values": {p: round(v, 3) for p, v in d.values.items()},
    }


CSV_HEADER: Final = ("kind", "scope", "id", "figure", "key", "value")


def csv_rows(report: AirReport) -> Iterator[tuple[str, ...]]:
    for scope, table in (("node", report.nodes), ("group", report.groups)):
        for name, f in table.items():
            for figure, key, value in _flat(f):
                yield ("air", scope, name, figure, key, "" if value is None else str(value))


def _flat(f: AirFigures) -> Iterator[tuple[str, str, object]]:
    yield "days_in_period", "", f.days_in_period
    yield "valid_days", "", f.valid_days
    yield "good_days", "", f.good_days
    yield "good_day_ratio", "", f.good_day_ratio
    yield "heavy_days", "", f.heavy_days
    yield "o3_evaluation", "", f.o3_percentile
    yield "edition", "", f.edition
    yield "zone", "", f.zone
    for roman, days in f.categories.items():
        yield "category_days", roman, days
    for p in POLLUTANTS:
        yield "exceedance_days", p, f.exceedance_days.get(p, 0)
        yield "assessed_days", p, f.assessed_days.get(p, 0)
    for pollutant, value in f.mean.items():
        yield "mean", pollutant, value
    for month, m in f.months.items():
        yield "month_valid_days", month, m.valid_days
        yield "month_good_days", month, m.good_days


def to_csv(report: AirReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(csv_rows(report))
    return buffer.getvalue()


# -- text ----------------------------------------------------------------------------------------

_TEXT_HEADER: Final = ("", "VALID", "GOOD", "RATIO", "HEAVY", "O3 EVAL", "EXCEEDANCE DAYS",
                       "MEAN PM2.5", "EDITION")  # fmt: skip


def to_text(report: AirReport) -> str:
    rows = [_TEXT_HEADER]
    for scope, table in (("node", report.nodes), ("group", report.groups)):
        for name, f in table.items():
            exceed = " ".join(f"{p}:{n}" for p, n in f.exceedance_days.items() if n) or "-"
            rows.append(
                (
                    f"{scope} {name}",
                    f"{f.valid_days}/{f.days_in_period}",
                    str(f.good_days),
                    "-" if f.good_day_ratio is None else f"{f.good_day_ratio:.1%}",
                    str(f.heavy_days),
                    "-" if f.o3_percentile is None else f"{f.o3_percentile:g}",
                    exceed,
                    str(f.mean.get("pm2_5", "-")),
                    f.edition,
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(_TEXT_HEADER))]
    lines = [
        f"air quality {report.period.first} to {report.period.last} "
        f"(local days, UTC{report.period.utc_offset_h:+d})"
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.append("valid days: publishable HJ 633 daily AQI (docs/standards.md §2.4, §2.7); "
                 "--json lists how every figure was decided")  # fmt: skip
    return "\n".join(lines) + "\n"


# -- HTML ----------------------------------------------------------------------------------------

NO_DATA_COLOUR: Final = "#EEEEEE"
_WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def html_sections(report: AirReport) -> list[Section]:
    sections = [Section("Air quality: period figures", _summary(report) + _legend())]
    target = report.settings.good_day_target_pct
    for scope, table in (("group", report.groups), ("node", report.nodes)):
        for name, f in table.items():
            body = _month_chart(f, report, target)
            if f.days or scope == "node":
                body += calendar(f.days, report.period.first, report.period.last)
            sections.append(Section(f"Daily AQI, {scope} {name}", f'<div class="row">{body}</div>'))
    return sections


_NAMES: Final = {"so2": "SO2", "no2": "NO2", "co": "CO", "o3": "O3", "pm10": "PM10",
                 "pm2_5": "PM2.5"}  # fmt: skip


def _summary(report: AirReport) -> str:
    first = ("valid days", "good days", "good-day ratio", "heavy days", "O3 evaluation")
    head = (
        '<tr><th rowspan="2"></th>'
        + "".join(f'<th rowspan="2">{escape(h)}</th>' for h in first)
        + f'<th colspan="{len(POLLUTANTS)}">exceedance days</th><th rowspan="2">edition</th></tr>'
        + "<tr>"
        + "".join(f"<th>{_NAMES[p]}</th>" for p in POLLUTANTS)
        + "</tr>"
    )
    rows = []
    for scope, table in (("group", report.groups), ("node", report.nodes)):
        for name, f in table.items():
            ratio = "-" if f.good_day_ratio is None else f"{f.good_day_ratio:.1%}"
            o3 = "-" if f.o3_percentile is None else f"{f.o3_percentile:g}"
            exceed = (str(f.exceedance_days.get(p, 0)) for p in POLLUTANTS)
            cells = (f"{scope} {name}", f"{f.valid_days}/{f.days_in_period}", str(f.good_days),
                     ratio, str(f.heavy_days), o3, *exceed, f.edition)  # fmt: skip
            rows.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    settings = report.settings
    note = (
        f"{report.period.first} to {report.period.last}, local days at "
        f"UTC{report.period.utc_offset_h:+d}. Valid days have a publishable HJ 633 daily AQI; "
        f"O3 evaluation: {settings.o3_percentile:g}th percentile of MDA8, µg/m³ "
        f"({settings.o3_percentile_method}, UNVERIFIED); groups: {settings.group_days}. "
        "See docs/standards.md §2.7."
    )
    return f'<table class="figures">{head}{"".join(rows)}</table><p class="note">{escape(note)}</p>'


def _legend() -> str:
    # The Chinese names go in the tooltip: a machine without CJK fonts would draw boxes.
    spans = "".join(
        f'<span style="background:{c.hex};color:{_ink(c)}" title="{escape(c.name_zh)}">'
        f"{c.roman} {escape(c.name_en)}</span>"
        for c in hj633.CATEGORIES
    )
    return (
        f'<div class="legend">{spans}<span style="background:{NO_DATA_COLOUR}">no valid AQI'
        "</span></div>"
    )


def _ink(category: hj633.Category) -> str:
    return "#fff" if category.level >= 4 else "#000"


def calendar(days: tuple[JudgedDay, ...], first: date, last: date) -> str:
    """One table per month, a cell per day coloured with its HJ 633 category colour
    (docs/standards.md §2.3); a day without a publishable AQI is grey."""
    by_day = {d.day: d for d in days}
    out = []
    month = first.replace(day=1)
    while month <= last:
        out.append(_month_table(month, first, last, by_day))
        month = (month + timedelta(days=32)).replace(day=1)
    return "<div>" + "".join(out) + "</div>"


def _month_table(month: date, first: date, last: date, by_day: dict[date, JudgedDay]) -> str:
    cells: list[str] = ['<td class="out"></td>'] * month.weekday()
    day = month
    while day.month == month.month:
        cells.append(_day_cell(day, first, last, by_day.get(day)))
        day += timedelta(days=1)
    rows = [cells[i : i + 7] for i in range(0, len(cells), 7)]
    body = "".join("<tr>" + "".join(r) + "</tr>" for r in rows)
    head = "<tr>" + "".join(f"<th>{w}</th>" for w in _WEEKDAYS) + "</tr>"
    return f'<table class="calendar"><caption>{month:%Y-%m}</caption>{head}{body}</table>'


def _day_cell(day: date, first: date, last: date, judged: JudgedDay | None) -> str:
    if not first <= day <= last:
        return '<td class="out"></td>'
    if judged is None or not judged.publishable or judged.category is None:
        return f'<td class="none" data-date="{day}"><b>{day.day}</b>NA</td>'
    c = judged.category
    title = f"{day} AQI {judged.aqi} {c.name_en}; primary {', '.join(judged.primary) or '-'}"
    return (
        f'<td style="background:{c.hex};color:{_ink(c)}" data-date="{day}" '
        f'data-aqi="{judged.aqi}" title="{escape(title)}"><b>{day.day}</b>{judged.aqi}</td>'
    )


def _month_chart(f: AirFigures, report: AirReport, target_pct: float) -> str:
    """Monthly good-day ratio bars against the target line (inline SVG)."""
    months = _period_months(report.period.first, report.period.last)
    bar_w, gap, height, left, top = 46, 14, 160, 40, 12
    width = left + len(months) * (bar_w + gap) + gap
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 50}" '
        f'role="img" aria-label="good-day ratio per month">'
    ]
    for pct in (0, 50, 100):
        y = top + height * (1 - pct / 100)
        parts.append(f'<line x1="{left}" y1="{y}" x2="{width}" y2="{y}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{y + 4}" font-size="10" text-anchor="end">'
                     f"{pct}%</text>")  # fmt: skip
    for i, key in enumerate(months):
        m = f.months.get(key)
        x = left + gap + i * (bar_w + gap)
        ratio = m.good_days / m.valid_days if m and m.valid_days else None
        label = "no data" if ratio is None else f"{ratio:.0%}"
        if ratio is not None:
            h = height * ratio
            fill = "#2E8B57" if ratio * 100 >= target_pct else "#C0504D"
            parts.append(
                f'<rect x="{x}" y="{top + height - h:.1f}" width="{bar_w}" height="{h:.1f}" '
                f'fill="{fill}"><title>{key}: {m.good_days if m else 0} good of '
                f"{m.valid_days if m else 0} valid days</title></rect>"
            )
        mid = x + bar_w / 2
        parts.append(f'<text x="{mid}" y="{top + height + 14}" font-size="10" '
                     f'text-anchor="middle">{key}</text><text x="{mid}" '
                     f'y="{top + height + 28}" font-size="10" text-anchor="middle">'
                     f"{label}</text>")  # fmt: skip
    y = top + height * (1 - target_pct / 100)
    parts.append(
        f'<line x1="{left}" y1="{y:.1f}" x2="{width}" y2="{y:.1f}" stroke="#1F4E79" '
        f'stroke-width="2" stroke-dasharray="6 4"/><text x="{width - 4}" y="{y - 4:.1f}" '
        f'font-size="11" text-anchor="end" fill="#1F4E79">target {target_pct:g}%</text>'
    )
    parts.append("</svg>")
    caption = (
        f'<p class="note">Good-air days (AQI &le; 100) per valid day, by month; target '
        f"{target_pct:g}% (the programme's, UNVERIFIED: docs/standards.md §2.3).</p>"
    )
    return '<div class="chart">' + "".join(parts) + caption + "</div>"


def _period_months(first: date, last: date) -> list[str]:
    out = []
    month = first.replace(day=1)
    while month <= last:
        out.append(f"{month:%Y-%m}")
        month = (month + timedelta(days=32)).replace(day=1)
    return out

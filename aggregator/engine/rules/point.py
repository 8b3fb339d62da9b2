"""Rules on single readings: odour (GB 14554-93), surface water (GB 3838-2002), blooms. Pure.

- odour.{h2s,nh3,odour}: a reading (or, configured, a clock-hour mean) against the GB 14554-93
  Table 1 plant-boundary limit of the node's grade;
- water.{item}.class: the single-factor class of one parameter worse than the node's target
  class (GB 3838-2002 §5.1), with its exceedance multiple;
- water.site.class: the site's class, that of its worst parameter among the latest values
  (环办[2011]22号, docs/standards.md §5.2), worse than the target; for lakes the record
  also carries the trophic level index (TLI, §6.3);
- bloom.chl_a.{who_low,who_moderate}: chlorophyll-a at the WHO 1999/2003 levels (§6.1);
- bloom.phycocyanin.{name}: configured levels only; no published threshold exists (§6.3,
  UNVERIFIED), and the alert cites the configured source, not a standard.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Final, Literal, cast

import msgspec

from aggregator.engine.observations import Observation, Rule
from aggregator.engine.rules.hysteresis import Hysteresis
from aggregator.fleet import NodeInfo
from schemas.messages import ReadingValues, Severity
from schemas.quantities import Quantity
from schemas.standards import gb3838, gb14554, tli, who_bloom

WATER_ITEMS: Final[frozenset[str]] = frozenset(("do", "codmn", "nh3_n", "tp", "tn", "ph"))
# envnet quantity -> TLI parameter (SD is not measured by sondes; turbidity is not SD).
TLI_INPUTS: Final[dict[Quantity, tli.TliParameter]] = {
    "chl_a": "chl_a",
    "tp": "tp",
    "tn": "tn",
    "codmn": "codmn",
}
WATER_STANDARD: Final = "GB 3838-2002"


# Latest water values older than this (event time, behind the node's newest water reading)
# do not count towards the site class.
WATER_MAX_AGE_MS: Final = 6 * 3_600_000


class OdourSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """agg.toml [alerts.odour]."""

    # GB 14554-93 gives plant-boundary limits without an averaging time for continuous
    # sensors (docs/standards.md §4.1, §9): compare each reading as reported ("reading") or
    # the clock-hour mean ("1h"). envnet's choice.
    window: Literal["reading", "1h"] = "reading"


class BloomLevel(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One configured phycocyanin alert level: agg.toml [[alerts.bloom.phycocyanin]]."""

    name: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_]{1,32}$")]
    ug_l: Annotated[float, msgspec.Meta(gt=0)]
    severity: Severity = "warning"


class BloomSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """agg.toml [alerts.bloom]."""

    # UNVERIFIED: no published Chinese or WHO phycocyanin threshold exists (docs/standards.md
    # §6.3, §8.5). Levels here are site configuration, calibrated locally against cell counts
    # or chlorophyll-a; alerts from them cite `phycocyanin_source`.
    phycocyanin: list[BloomLevel] = []
    phycocyanin_source: Annotated[str, msgspec.Meta(max_length=64)] = (
        "site configuration, not a published standard"
    )


def odour_observation(
    h: Hysteresis,
    info: NodeInfo,
    q: Quantity,
    value: float,
    at_ms: int,
    window_s: int,
    late: bool,
    suspect: bool,
) -> Observation | None:
    if info.odour_grade is None:
        return None
    item = cast(gb14554.OdourItem, q)
    limit = gb14554.limit(item, info.odour_grade)
    rule = Rule(f"odour.{item}", "exceedance", "warning", q, "GB 14554-93", "Table 1", window_s)
    unit = "OU" if item == "odour" else "ug/m3"
    message = (
        f"{item} {value:.4g} {unit} vs plant-boundary limit {limit:g} (grade {info.odour_grade})"
    )
    return Observation(
        rule,
        info.node,
        value > limit,
        value,
        limit,
        at_ms,
        late,
        message,
        cleared=value <= limit * (1 - h.fraction),
        suspect=suspect,
        window_start_ms=at_ms if window_s >= 3600 else None,
    )


def water_item_observation(
    h: Hysteresis, info: NodeInfo, r: ReadingValues, late: bool, suspect: bool
) -> Observation | None:
    body, target = info.water_body, info.water_target
    if body is None or target is None or not gb3838.evaluates(r.quantity, body):
        return None
    item = cast(gb3838.WaterItem, r.quantity)
    result = gb3838.classify(item, r.value, body, target)
    rule = Rule(
        f"water.{item}.class", "exceedance", "warning", r.quantity, WATER_STANDARD,
        "Table 1, §5.1", r.period_s,
    )  # fmt: skip
    exceeded = result.water_class > target
    message = (
        f"{item} {r.value:g} {r.unit} is Class {gb3838.class_name(result.water_class)}, "
        f"target Class {gb3838.class_name(target)}"
    )
    if exceeded:
        message += f", exceeds by {result.multiple:.2f}x"
    return Observation(
        rule,
        info.node,
        exceeded,
        r.value,
        result.target_limit,
        r.ts,
        late,
        message,
        cleared=_water_cleared(item, r.value, result.target_limit, h.fraction),
        suspect=suspect,
    )


def _water_cleared(item: str, value: float, limit: float, fraction: float) -> bool:
    """Back inside the target class by the hysteresis margin: above a minimum (DO) by it,
    below a maximum by it, or inside the pH range shrunk by it at both ends."""
    if item == "ph":
        low, high = gb3838.PH_RANGE
        return low * (1 + fraction) <= value <= high * (1 - fraction)
    if item in gb3838.MINIMA:
        return value >= limit * (1 + fraction)
    return value <= limit * (1 - fraction)


@dataclass(frozen=True, slots=True)
class WaterRecord:
    """A site's evaluation for storage (the `water_quality` measurement)."""

    node: str
    at_ms: int
    evaluation: gb3838.SiteEvaluation
    trophic: tli.TliResult | None


@dataclass(slots=True)
class _Latest:
    values: dict[Quantity, tuple[float, int]] = field(default_factory=dict)


class WaterSites:
    """The latest value of each water parameter per node, and the site evaluation from them."""

    def __init__(self) -> None:
        self._nodes: dict[str, _Latest] = {}

    def add(self, info: NodeInfo, r: ReadingValues) -> WaterRecord | None:
        if r.quantity not in WATER_ITEMS and r.quantity not in TLI_INPUTS:
            return None
        body, target = info.water_body, info.water_target
        if body is None or target is None:
            return None
        latest = self._nodes.setdefault(info.node, _Latest()).values
        previous = latest.get(r.quantity)
        if previous is not None and previous[1] > r.ts:
            return None  # an older reading (backlog) does not replace the latest value
        latest[r.quantity] = (r.value, r.ts)
        fresh = {q: v for q, (v, ts) in latest.items() if r.ts - ts <= WATER_MAX_AGE_MS}
        items = {
            cast(gb3838.WaterItem, q): v
            for q, v in fresh.items()
            if q in WATER_ITEMS and gb3838.evaluates(q, body)
        }
        if not items:
            return None
        try:
            evaluation = gb3838.evaluate_site(items, body, target)
        except gb3838.WaterInputError:
            return None  # e.g. a small negative near zero: the item judgement covers it
        return WaterRecord(info.node, r.ts, evaluation, _trophic(body, fresh))


def _trophic(body: gb3838.WaterBody, fresh: Mapping[Quantity, float]) -> tli.TliResult | None:
    if body != "lake":
        return None
    inputs = {TLI_INPUTS[q]: v for q, v in fresh.items() if q in TLI_INPUTS and v > 0}
    return tli.trophic_index(inputs) if inputs else None


def site_observation(info: NodeInfo, record: WaterRecord, late: bool, suspect: bool) -> Observation:
    e = record.evaluation
    worst = ", ".join(
        f"{c.item} Class {gb3838.class_name(c.water_class)} ({c.multiple:.2f}x)"
        for c in e.exceeding
    )
    message = (
        f"site Class {gb3838.class_name(e.water_class)} ({e.quality.name_en}), target Class "
        f"{gb3838.class_name(e.target)}" + (f"; exceeding: {worst}" if worst else "")
    )
    if record.trophic is not None:
        message += f"; TLI {record.trophic.tli:.1f} {record.trophic.state.name_en}"
    rule = Rule("water.site.class", "exceedance", "warning", None, WATER_STANDARD, "§5.1", 3600)
    return Observation(
        rule,
        info.node,
        not e.meets_target,
        float(e.water_class),
        float(e.target),
        record.at_ms,
        late,
        message,
        suspect=suspect,
    )


def bloom_observations(
    bloom: BloomSettings, h: Hysteresis, info: NodeInfo, r: ReadingValues, late: bool, suspect: bool
) -> list[Observation]:
    levels: list[tuple[str, float, Severity, str, str]]
    if r.quantity == "chl_a":
        levels = [
            (f"bloom.chl_a.{lv.name}", lv.chl_a_ug_l, lv.severity, "WHO 2003", "recreational")
            for lv in who_bloom.LEVELS
        ]
    elif r.quantity == "phycocyanin":
        levels = [
            (f"bloom.phycocyanin.{lv.name}", lv.ug_l, lv.severity, bloom.phycocyanin_source,
             "UNVERIFIED: no published threshold")
            for lv in bloom.phycocyanin
        ]  # fmt: skip
    else:
        return []
    out = []
    for rule_id, level, severity, standard, clause in levels:
        rule = Rule(rule_id, "exceedance", severity, r.quantity, standard[:64], clause, r.period_s)
        message = f"{r.quantity} {r.value:g} ug/L vs level {level:g} ({standard})"
        out.append(
            Observation(
                rule,
                info.node,
                r.value >= level,
                r.value,
                level,
                r.ts,
                late,
                message,
                cleared=r.value < level * (1 - h.fraction),
                suspect=suspect,
            )
        )
    return out

"""The report kinds and how a report is run: inventory, node selection, the kind's builder.

`KINDS` maps each kind of `envnet report` to the coroutine that builds it from InfluxDB. The
nodes are selected once, the same way for every kind (request.select_nodes), and what each
kind knows of a node comes from one place (node_info.node_infos). Every report offers the same
four outputs (`KindReport`), so the command has one code path.

Water, noise and bloom report on the selected nodes they apply to (a water body; a noise zone
class; a water body), and on every node named by --node; their reports are adapted to
`KindReport` by `KpiOutput`. Air takes each node's zone class from the stored inventory
(request.InventoryNode), which holds every class it needs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Protocol

import msgspec

from aggregator.fleet import NodeInfo
from aggregator.reports import air, air_render, bloom, noise, water
from aggregator.reports.fetch import ReportServiceError, ask
from aggregator.reports.html_page import Section, escape, page
from aggregator.reports.node_info import FleetFile, NodeInfos, node_infos
from aggregator.reports.queries import (
    INVENTORY_QUERY,
    AnswerError,
    air_daily_query,
    o3_daily_max_query,
    parse_daily_max,
    parse_inventory,
    parse_windows,
)
from aggregator.reports.request import (
    Kind,
    Period,
    ReportKind,
    ReportUsageError,
    Selection,
    current_inventory,
    select_nodes,
)
from aggregator.reports.settings import ReportSettings
from aggregator.storage.influx import InfluxTarget
from schemas.standards import editions, gb3838


class KindReport(Protocol):
    def to_json(self) -> dict[str, Any]: ...
    def to_csv(self) -> str: ...
    def to_text(self) -> str: ...
    def html_sections(self) -> list[Section]: ...


Builder = Callable[
    [InfluxTarget, Period, Selection, NodeInfos, ReportSettings], Awaitable[KindReport]
]


class KpiReport(Protocol):
    """The water, noise and bloom reports' own outputs (aggregator.reports.water, ...)."""

    def to_json(self) -> dict[str, Any]: ...
    def to_csv(self) -> str: ...
    def text(self) -> str: ...
    def html_section(self) -> str: ...


@dataclass(frozen=True, slots=True)
class AirOutput:
    report: air.AirReport

    def to_json(self) -> dict[str, Any]:
        return air_render.to_json(self.report)

    def to_csv(self) -> str:
        return air_render.to_csv(self.report)

    def to_text(self) -> str:
        return air_render.to_text(self.report)

    def html_sections(self) -> list[Section]:
        return air_render.html_sections(self.report)


@dataclass(frozen=True, slots=True)
class KpiOutput:
    """A water, noise or bloom report as a KindReport: its HTML fragment is one section."""

    report: KpiReport
    title: str

    def to_json(self) -> dict[str, Any]:
        return self.report.to_json()

    def to_csv(self) -> str:
        return self.report.to_csv()

    def to_text(self) -> str:
        return self.report.text()

    def html_sections(self) -> list[Section]:
        return [Section(self.title, self.report.html_section())]


async def build_air(
    target: InfluxTarget,
    period: Period,
    selection: Selection,
    infos: NodeInfos,
    settings: ReportSettings,
) -> AirOutput:
    """Two queries for any period: the daily windows, and (only when a day is judged by HJ
    633-2012) the daily maximum O3 1-h means for that edition's extra indicator."""
    nodes = [i.node for i in selection.nodes]
    queries = [air_daily_query(target, period, nodes)]
    if any(
        editions.resolve(settings.air_edition, period.day_start_ms(d)) == "2012"
        for d in (period.first, period.last)
    ):
        queries.append(o3_daily_max_query(target, period, nodes))
    answers = await ask(target, queries)
    points = parse_windows(answers[0])
    if len(answers) > 1:
        points += parse_daily_max(answers[1])
    return AirOutput(air.compute(period, selection.nodes, points, settings, selection.group))


def applicable(
    selection: Selection, infos: NodeInfos, applies: Callable[[NodeInfo], bool], what: str
) -> list[str]:
    """The selected nodes a kind applies to, and every node named by --node. Raises
    ReportUsageError when none is left."""
    nodes = [
        i.node for i in selection.nodes if i.node in selection.asked or applies(infos.info[i.node])
    ]
    if not nodes:
        raise ReportUsageError(f"no selected node has a {what} in the inventory")
    return nodes


def _notes(*parts: str) -> str:
    return " ".join(p for p in parts if p)


async def build_water(
    target: InfluxTarget,
    period: Period,
    selection: Selection,
    infos: NodeInfos,
    settings: ReportSettings,
) -> KpiOutput:
    nodes = applicable(selection, infos, lambda i: i.water_body is not None, "water_body")
    report = await water.load_water_report(
        target, period, nodes, selection.groups(), infos.info, settings=settings.water
    )
    default = gb3838.class_name(settings.water.default_target)
    validity = _notes(report.validity, infos.source_note(nodes), infos.target_note(nodes, default))
    return KpiOutput(msgspec.structs.replace(report, validity=validity), water.HTML_TITLE)


async def build_noise(
    target: InfluxTarget,
    period: Period,
    selection: Selection,
    infos: NodeInfos,
    settings: ReportSettings,
) -> KpiOutput:
    nodes = applicable(selection, infos, lambda i: i.noise_zone is not None, "noise_zone")
    # No [report] rule of its own: the stored periods' validity is the aggregator's.
    report = await noise.load_noise_report(target, period, nodes, selection.groups(), infos.info)
    validity = _notes(report.validity, infos.source_note(nodes))
    return KpiOutput(msgspec.structs.replace(report, validity=validity), noise.HTML_TITLE)


async def build_bloom(
    target: InfluxTarget,
    period: Period,
    selection: Selection,
    infos: NodeInfos,
    settings: ReportSettings,
) -> KpiOutput:
    nodes = applicable(selection, infos, lambda i: i.water_body is not None, "water_body")
    report = await bloom.load_bloom_report(
        target, period, nodes, selection.groups(), infos.info, settings=settings.bloom
    )
    validity = _notes(report.validity, infos.source_note(nodes))
    return KpiOutput(msgspec.structs.replace(report, validity=validity), bloom.HTML_TITLE)


KINDS: Final[dict[Kind, Builder]] = {
    "air": build_air,
    "water": build_water,
    "noise": build_noise,
    "bloom": build_bloom,
}


ALL_KINDS: Final[tuple[Kind, ...]] = ("air", "water", "noise", "bloom")


@dataclass(frozen=True, slots=True)
class CombinedReport:
    """`envnet report all`: every kind that applies to the selected nodes, on one page (the
    programme's progress assessment reads them together), with the kinds that apply to none."""

    parts: tuple[tuple[Kind, KindReport], ...]
    skipped: tuple[tuple[Kind, str], ...]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for _, part in self.parts:
            out.update(part.to_json())
        if self.skipped:
            out["not_reported"] = dict(self.skipped)
        return out

    def to_csv(self) -> str:
        raise ReportUsageError(
            "--csv needs one kind (their tables differ): air, water, noise, bloom"
        )

    def to_text(self) -> str:
        texts = [part.to_text().rstrip("\n") for _, part in self.parts]
        texts += [f"{kind}: not reported: {why}" for kind, why in self.skipped]
        return "\n\n".join(texts) + "\n"

    def html_sections(self) -> list[Section]:
        sections = [s for _, part in self.parts for s in part.html_sections()]
        if self.skipped:
            items = "".join(f"<li>{escape(kind)}: {escape(why)}</li>" for kind, why in self.skipped)
            sections.append(Section("Not reported", f"<ul>{items}</ul>"))
        return sections


async def build_all(
    target: InfluxTarget,
    period: Period,
    selection: Selection,
    infos: NodeInfos,
    settings: ReportSettings,
) -> CombinedReport:
    """Each kind on the selected nodes it applies to: air on those with an air zone class
    (and any named by --node), the others as their builders choose (`applicable`)."""
    air_nodes = tuple(
        i for i in selection.nodes if i.air_zone is not None or i.node in selection.asked
    )
    parts: list[tuple[Kind, KindReport]] = []
    skipped: list[tuple[Kind, str]] = []
    for kind in ALL_KINDS:
        chosen = replace(selection, nodes=air_nodes) if kind == "air" else selection
        try:
            if kind == "air" and not air_nodes:
                raise ReportUsageError("no selected node has an air_zone in the inventory")
            parts.append((kind, await KINDS[kind](target, period, chosen, infos, settings)))
        except ReportUsageError as exc:
            skipped.append((kind, str(exc)))
    if not parts:
        raise ReportUsageError("no kind applies to the selected nodes")
    return CombinedReport(tuple(parts), tuple(skipped))


async def run_report(
    kind: ReportKind,
    target: InfluxTarget,
    period: Period,
    nodes: Sequence[str],
    group: str | None,
    settings: ReportSettings,
    fleet: FleetFile | None = None,
) -> KindReport:
    """Resolve the nodes through the stored inventory (and `fleet`, the fleet file when one is
    read: node_info) and build the report. Raises ReportUsageError (bad request) or
    fetch.ReportServiceError (InfluxDB, or an answer that is not what was asked)."""
    (answer,) = await ask(target, [INVENTORY_QUERY])
    try:
        inventory = current_inventory(parse_inventory(answer))
        selection = select_nodes(inventory, nodes, group)
        builder: Builder = build_all if kind == "all" else KINDS[kind]
        return await builder(target, period, selection, node_infos(selection, fleet), settings)
    except AnswerError as exc:
        raise ReportServiceError(f"InfluxDB {target.display}: {exc}") from None


def html_document(kind: ReportKind, period: Period, report: KindReport) -> str:
    title = f"envnet {kind} report, {period.first} to {period.last}"
    return page(title, report.html_sections(), note="Generated by envnet report.")

"""The scenario file: a TOML description of a simulated run and the alerts it must produce.

Pure: `parse_scenario` turns the file's text into typed, cross-checked values, or raises
`ScenarioFileError` naming the file and the field at fault. The keys below are a contract
that testers write files against (issue 12); keys may be added, never changed in meaning.

    [scenario]   name, seed, accel (event seconds per wall second), duration_s (event time
                 played after start), start (event-time origin, ISO 8601 with a UTC offset;
                 default now). Added: description, report_interval_s, sample_interval_s.
    [[node]]     a simulated node: id, kind, zone (see simulators.node_kinds). Added: site,
                 group, lat, lon.
    [[replay]]   a PRSA hourly CSV replayed as one node with its original timestamps: csv
                 (relative to the scenario file), node, from, to. Added: sensor.
    [[event]]    a scripted perturbation on event time: node, kind, at_s, duration_s, and for
                 some kinds quantity and value (EVENT_NEEDS below).
    [[expect]]   an expected alert event: node, rule, event (fired | resolved | none),
                 within_s = [from, to] seconds after start (replays: after their first row),
                 count (exact number of such events in the whole run), lane (live | late).
                 Added: suspect (true | false), and `rule` may be a shell-style pattern
                 ("liveness.*.silent").
    [aggregator] added: agg.toml settings for the run's aggregator, merged over the runner's.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import msgspec

from schemas.messages import NodeId
from schemas.quantities import Quantity

EventKind = Literal["step", "ramp", "spike", "stuck", "dropout", "offline", "link_outage"]
ExpectedEvent = Literal["fired", "resolved", "none"]
Lane = Literal["live", "late"]

# What each event kind needs besides node, at_s and duration_s: (quantity, value), where
# "required", "optional" or "forbidden". See simulators.perturbations for their meaning.
EVENT_NEEDS: Final[dict[EventKind, tuple[str, str]]] = {
    "step": ("required", "required"),
    "ramp": ("required", "required"),
    "spike": ("required", "required"),
    "stuck": ("required", "optional"),
    "dropout": ("optional", "forbidden"),
    "offline": ("forbidden", "forbidden"),
    "link_outage": ("forbidden", "forbidden"),
}
# Kinds that perturb a sensor's values, as opposed to the node or its link.
SENSOR_EVENTS: Final = frozenset({"step", "ramp", "spike", "stuck", "dropout"})

Seconds = Annotated[float, msgspec.Meta(ge=0.0, le=10 * 365 * 86_400.0)]
PositiveSeconds = Annotated[float, msgspec.Meta(gt=0.0, le=10 * 365 * 86_400.0)]
Text = Annotated[str, msgspec.Meta(max_length=500)]
# A rule id or a shell-style pattern of one (fnmatch: *, ?, [...]).
RulePattern = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9*?\[][a-z0-9_.*?\[\]!-]{0,94}$")]


class ScenarioFileError(ValueError):
    """A scenario file that cannot be run, with the file and the field at fault."""


class Header(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    seed: int = 0
    # At most 1e5: a wall second is then more than a day of event time, past what the
    # aggregator's windows and acks can follow on a small machine.
    accel: Annotated[float, msgspec.Meta(gt=0.0, le=100_000.0)]
    duration_s: PositiveSeconds
    start: datetime | None = None
    description: Text = ""
    report_interval_s: Annotated[int, msgspec.Meta(ge=1, le=3600)] = 60
    # Default: one sample per report, which keeps a fast run light.
    sample_interval_s: Annotated[float, msgspec.Meta(gt=0.0, le=3600.0)] | None = None


class NodeEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    id: NodeId
    kind: Annotated[str, msgspec.Meta(max_length=40)]
    zone: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    site: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    group: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    lat: Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)] | None = None
    lon: Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)] | None = None


class ReplayEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    csv: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
    node: NodeId
    first_day: date | None = msgspec.field(default=None, name="from")
    last_day: date | None = msgspec.field(default=None, name="to")
    sensor: NodeId = "ref"


class EventEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    node: NodeId
    kind: EventKind
    at_s: Seconds
    # Spikes default to one report interval (ScenarioSpec.event_duration_s).
    duration_s: PositiveSeconds | None = None
    quantity: Quantity | None = None
    value: float | None = None


class ExpectEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    node: NodeId
    rule: RulePattern
    event: ExpectedEvent
    within_s: tuple[float, float] | None = None
    count: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] | None = None
    lane: Lane | None = None
    suspect: bool | None = None


class _File(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    scenario: Header
    node: list[NodeEntry] = []
    replay: list[ReplayEntry] = []
    event: list[EventEntry] = []
    expect: list[ExpectEntry] = []
    aggregator: dict[str, Any] = {}


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    """A checked scenario. `source` is the file it came from; replay paths are resolved."""

    source: Path
    header: Header
    nodes: tuple[NodeEntry, ...]
    replays: tuple[ReplayEntry, ...]
    events: tuple[EventEntry, ...]
    expects: tuple[ExpectEntry, ...]
    aggregator: dict[str, Any]

    def csv_path(self, replay: ReplayEntry) -> Path:
        return (self.source.parent / replay.csv).resolve()

    @property
    def sample_interval_s(self) -> float:
        return self.header.sample_interval_s or float(self.header.report_interval_s)

    def event_duration_s(self, event: EventEntry) -> float:
        return event.duration_s if event.duration_s is not None else self.header.report_interval_s

    @property
    def node_ids(self) -> tuple[str, ...]:
        return tuple(n.id for n in self.nodes) + tuple(r.node for r in self.replays)


def load_scenario(path: Path) -> ScenarioSpec:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioFileError(f"{path}: cannot read: {exc}") from None
    return parse_scenario(text, path)


def parse_scenario(text: str, source: Path) -> ScenarioSpec:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioFileError(f"{source}: not valid TOML: {exc}") from None
    try:
        parsed = msgspec.convert(raw, _File, strict=True)
    except msgspec.ValidationError as exc:
        raise ScenarioFileError(f"{source}: {exc}") from None
    spec = ScenarioSpec(
        source=source,
        header=parsed.scenario,
        nodes=tuple(parsed.node),
        replays=tuple(parsed.replay),
        events=tuple(parsed.event),
        expects=tuple(parsed.expect),
        aggregator=parsed.aggregator,
    )
    problems = cross_check(spec)
    if problems:
        raise ScenarioFileError(f"{source}: " + "; ".join(problems))
    return spec


def cross_check(spec: ScenarioSpec) -> list[str]:
    """What the schema alone cannot say: references between tables, and each kind's keys."""
    problems = _header_problems(spec.header)
    problems += _id_problems(spec)
    simulated = {n.id for n in spec.nodes}
    for index, event in enumerate(spec.events):
        problems += [f"$.event[{index}]: {p}" for p in _event_problems(event, simulated)]
    known = set(spec.node_ids)
    for index, expect in enumerate(spec.expects):
        problems += [f"$.expect[{index}]: {p}" for p in _expect_problems(expect, known)]
    for index, replay in enumerate(spec.replays):
        if replay.first_day and replay.last_day and replay.first_day > replay.last_day:
            problems.append(f"$.replay[{index}]: from {replay.first_day} is after to")
    return problems


def _header_problems(header: Header) -> list[str]:
    if header.start is not None and header.start.tzinfo is None:
        return ["$.scenario.start: give a UTC offset, e.g. 2026-06-01T00:00:00+08:00"]
    return []


def _id_problems(spec: ScenarioSpec) -> list[str]:
    seen: set[str] = set()
    problems = []
    for node_id in spec.node_ids:
        if node_id in seen:
            problems.append(f"node id {node_id!r} is declared twice")
        seen.add(node_id)
    if not spec.node_ids:
        problems.append("no [[node]] and no [[replay]]: nothing to play")
    return problems


def _event_problems(event: EventEntry, simulated: set[str]) -> list[str]:
    problems = []
    if event.node not in simulated:
        problems.append(f"node {event.node!r} is not a [[node]] of this scenario")
    quantity_need, value_need = EVENT_NEEDS[event.kind]
    for key, need, given in (
        ("quantity", quantity_need, event.quantity is not None),
        ("value", value_need, event.value is not None),
    ):
        if need == "required" and not given:
            problems.append(f"a {event.kind} event needs {key}")
        elif need == "forbidden" and given:
            problems.append(f"a {event.kind} event takes no {key}")
    if event.value is not None and event.value != event.value:  # NaN
        problems.append("value must be a number")
    if event.kind != "spike" and event.duration_s is None:
        problems.append(f"a {event.kind} event needs duration_s")
    return problems


def _expect_problems(expect: ExpectEntry, known: set[str]) -> list[str]:
    problems = []
    if expect.node not in known:
        problems.append(f"node {expect.node!r} is not a [[node]] or [[replay]] of this scenario")
    if expect.within_s is not None:
        low, high = expect.within_s
        if not (0.0 <= low <= high) or high == float("inf"):
            problems.append(f"within_s must be [from, to] with 0 <= from <= to, got {low}, {high}")
    if expect.event == "none" and expect.count not in (None, 0):
        problems.append("an expectation of no event takes no count (or count = 0)")
    return problems

"""Expected against observed alert events: which expectations hold, and a readable diff. Pure.

An observed event is one `fired` or `resolved` transition the aggregator stored (the `alerts`
measurement), its time given in event seconds after its node's origin: the scenario's start
for a simulated node, the first row for a replay. Re-notifications and acknowledgements are
not events an expectation can name, and are left out before judging.

How an expectation holds:
- `fired` / `resolved`: at least one such event of the node and rule (and lane and suspect,
  if given) lies in `within_s` (anywhere in the run if absent); and with `count`, the run
  holds exactly that many such events in all. `count = 0` asserts there were none.
- `none`: no `fired` event of the node and rule in `within_s` (or in the whole run).
- `--strict`: besides, every observed event must be named by some expectation: one whose
  node equals the event's and whose rule pattern matches its rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

from simulators.scenario.spec import ExpectEntry, Lane

ObservedKind = Literal["fired", "resolved"]


@dataclass(frozen=True, slots=True)
class Observed:
    node: str
    rule: str
    event: ObservedKind
    at_s: float
    lane: Lane
    suspect: bool = False
    value: float | None = None

    def describe(self) -> str:
        extra = ", suspect" if self.suspect else ""
        value = "" if self.value is None else f", value {self.value:g}"
        where = f"{self.lane}{extra}{value}"
        return f"{self.node} {self.rule} {self.event} at {self.at_s:g} s ({where})"


@dataclass(frozen=True, slots=True)
class Outcome:
    index: int
    expect: ExpectEntry
    holds: bool
    # Why it failed, or how it held: one line.
    reason: str
    matched: tuple[Observed, ...]

    @property
    def name(self) -> str:
        return f"[{self.index}] {describe_expect(self.expect)}"


@dataclass(frozen=True, slots=True)
class Verdict:
    outcomes: tuple[Outcome, ...]
    # Events no expectation names (judged only with strict).
    unnamed: tuple[Observed, ...]
    strict: bool

    @property
    def holds(self) -> bool:
        return all(o.holds for o in self.outcomes) and not (self.strict and self.unnamed)

    @property
    def failed(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if not o.holds)


def judge(expects: Sequence[ExpectEntry], observed: Sequence[Observed], strict: bool) -> Verdict:
    ordered = sorted(observed, key=lambda o: (o.at_s, o.node, o.rule, o.event))
    outcomes = tuple(_outcome(i, e, ordered) for i, e in enumerate(expects, start=1))
    unnamed = tuple(o for o in ordered if not any(_names(e, o) for e in expects))
    return Verdict(outcomes, unnamed, strict)


def _names(expect: ExpectEntry, event: Observed) -> bool:
    return expect.node == event.node and fnmatchcase(event.rule, expect.rule)


def _selected(expect: ExpectEntry, event: Observed, kind: ObservedKind) -> bool:
    return (
        _names(expect, event)
        and event.event == kind
        and (expect.lane is None or expect.lane == event.lane)
        and (expect.suspect is None or expect.suspect == event.suspect)
    )


def _inside(expect: ExpectEntry, event: Observed) -> bool:
    if expect.within_s is None:
        return True
    low, high = expect.within_s
    return low <= event.at_s <= high


def _outcome(index: int, expect: ExpectEntry, observed: Sequence[Observed]) -> Outcome:
    kind: ObservedKind = "fired" if expect.event == "none" else expect.event
    every = tuple(o for o in observed if _selected(expect, o, kind))
    inside = tuple(o for o in every if _inside(expect, o))
    if expect.event == "none" or expect.count == 0:
        wanted_none = inside if expect.event == "none" else every
        if wanted_none:
            return Outcome(index, expect, False, f"{len(wanted_none)} unexpected", wanted_none)
        return Outcome(index, expect, True, "none seen", ())
    if not inside:
        where = "" if expect.within_s is None else f" in {_window(expect)}"
        return Outcome(index, expect, False, f"no {kind} event{where}", every)
    if expect.count is not None and len(every) != expect.count:
        reason = f"{len(every)} {kind} events in the run, expected {expect.count}"
        return Outcome(index, expect, False, reason, every)
    return Outcome(index, expect, True, f"{kind} at {_times(inside)}", inside)


def _window(expect: ExpectEntry) -> str:
    if expect.within_s is None:
        return "the run"
    low, high = expect.within_s
    return f"[{low:g}, {high:g}] s"


def _times(events: Sequence[Observed]) -> str:
    return ", ".join(f"{o.at_s:g} s" for o in events[:5]) + (" …" if len(events) > 5 else "")


def describe_expect(expect: ExpectEntry) -> str:
    parts = [expect.node, expect.rule, expect.event]
    if expect.within_s is not None:
        parts.append(f"within {_window(expect)}")
    if expect.count is not None:
        parts.append(f"count {expect.count}")
    if expect.lane is not None:
        parts.append(f"lane {expect.lane}")
    if expect.suspect is not None:
        parts.append("suspect" if expect.suspect else "not suspect")
    return " ".join(parts)


def render_diff(name: str, verdict: Verdict, observed: Sequence[Observed]) -> str:
    """The verdict for a person: each expectation with ✓ or ✗, and for each failure the
    expected line (-) against what was observed (+) for that node and rule."""
    held = sum(o.holds for o in verdict.outcomes)
    status = "PASSED" if verdict.holds else "FAILED"
    lines = [f"scenario {name}: {held} of {len(verdict.outcomes)} expectations hold: {status}"]
    for outcome in verdict.outcomes:
        mark = "✓" if outcome.holds else "✗"
        lines.append(f"  {mark} {outcome.name}: {outcome.reason}")
        if outcome.holds:
            continue
        lines.append(f"    - expected: {describe_expect(outcome.expect)}")
        related = [o for o in observed if _names(outcome.expect, o)]
        if not related:
            lines.append(f"    + observed: no event of {outcome.expect.rule} for that node")
        lines.extend(f"    + observed: {o.describe()}" for o in related[:20])
        if len(related) > 20:
            lines.append(f"    + … {len(related) - 20} more")
    if verdict.unnamed:
        label = "fail (--strict)" if verdict.strict else "not judged (no --strict)"
        lines.append(f"  events no expectation names: {len(verdict.unnamed)}, {label}")
        lines.extend(f"    + {o.describe()}" for o in verdict.unnamed[:30])
    return "\n".join(lines)

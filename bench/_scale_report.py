"""bench/scale.py's table and machine-readable last line, from the runs' results. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bench._alert_events import AlertDiff, compare
from bench._scale_load import LivePlan
from bench._scale_run import CatchupResult, LiveResult

MB: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Outcome:
    plan: LivePlan
    rate: float
    broker: str
    lives: tuple[LiveResult, ...]
    chaos: LiveResult | None
    catchup: CatchupResult | None

    @property
    def reference(self) -> LiveResult | None:
        """The run the others' alerts are compared with: the fewest replicas."""
        return min(self.lives, key=lambda r: r.replicas) if self.lives else None

    @property
    def top(self) -> LiveResult | None:
        """The chaos-free run with the most replicas: its cost goes on the last line."""
        return max(self.lives, key=lambda r: r.replicas) if self.lives else None

    def diffs(self) -> list[tuple[str, AlertDiff]]:
        ref = self.reference
        if ref is None:
            return []
        out = [
            (f"{r.replicas} replicas vs {ref.replicas}", compare(ref.alerts, r.alerts))
            for r in self.lives
            if r is not ref
        ]
        chaos, top = self.chaos, self.top
        if chaos is not None and top is not None:
            out.append((f"chaos vs {top.replicas} replicas", compare(top.alerts, chaos.alerts)))
        return out

    @property
    def alerts_equal(self) -> bool:
        """Equal event by event, and not vacuously: the seeded exceedances did fire."""
        ref = self.reference
        return ref is not None and bool(ref.alerts) and all(d.equal for _, d in self.diffs())

    def runs(self) -> list[LiveResult]:
        return [*self.lives, *([self.chaos] if self.chaos is not None else [])]

    @property
    def lost(self) -> int:
        live = sum(r.check.lost for r in self.runs())
        c = self.catchup
        return live + (max(0, c.readings - c.stored) if c is not None else 0)

    @property
    def duplicated(self) -> int:
        live = sum(r.check.duplicated for r in self.runs())
        c = self.catchup
        return live + (max(0, c.stored - c.readings) if c is not None else 0)

    @property
    def replicas(self) -> int:
        return max((r.replicas for r in self.runs()), default=0)


def per_1k(value: float, nodes: int) -> float:
    return value / (nodes / 1000)


def _opt(value: int | None) -> str:
    return "n/a" if value is None else str(value)


def live_line(r: LiveResult, nodes: int) -> str:
    c = r.cost
    head = (
        f"  {r.replicas} replica(s){' (chaos)' if r.chaos else ''}: {r.batches:,} batches "
        f"({r.copies - r.batches:,} resent, {r.reconnects} reconnects), {r.acked:,} acked, "
        f"{r.duplicates_dropped:,} copies dropped by dedup; "
        f"stored {r.stored:,}; lost {r.check.lost}, duplicated {r.check.duplicated}, "
        f"value mismatches {r.check.sum_mismatch}; {len(r.alerts)} alert points; "
        f"{r.wall_s:.0f} s{'' if r.complete else ' NOT COMPLETE'}"
    )
    if r.chaos is not None:  # processes were killed and replaced: no cost from this run
        return head
    return head + (
        f"\n      aggregator RSS {c.agg_rss_peak / MB:,.0f} MB "
        f"({per_1k(c.agg_rss_peak / MB, nodes):.1f} MB/1k nodes), "
        f"CPU {c.agg_cpu_pct:.0f}% ({per_1k(c.agg_cpu_pct, nodes):.1f}%/1k nodes); "
        f"broker RSS {c.broker_rss_peak / MB:,.0f} MB "
        f"({per_1k(c.broker_rss_peak / MB, nodes):.1f} MB/1k nodes), "
        f"CPU {c.broker_cpu_pct:.0f}% ({per_1k(c.broker_cpu_pct, nodes):.1f}%/1k nodes)"
    )


def table(outcome: Outcome, wall_s: float) -> str:
    plan = outcome.plan
    lines = [
        f"scale bench: {plan.nodes} nodes x {plan.minutes} event minutes at {outcome.rate:g}x "
        f"({plan.nodes * outcome.rate / 60:.0f} messages/s offered), broker {outcome.broker}, "
        f"total {wall_s:.0f} s"
        if outcome.runs()
        else f"scale bench: catch-up run only, broker {outcome.broker}, total {wall_s:.0f} s"
    ]
    if any(not r.replicas_real for r in outcome.runs()):
        lines.append(
            "  NOTE: this aggregator has no [cluster] replica support: every run used ONE "
            "aggregator process, whatever replica count was asked for"
        )
    lines.extend(live_line(r, plan.nodes) for r in outcome.runs())
    for name, diff in outcome.diffs():
        status = "equal" if diff.equal else f"{len(diff.missing)} missing, {len(diff.extra)} extra"
        lines.append(f"  alerts {name}: {status}")
        lines.extend(f"      missing {e}" for e in diff.missing[:5])
        lines.extend(f"      extra   {e}" for e in diff.extra[:5])
    if (ref := outcome.reference) is not None and not ref.alerts:
        lines.append("  alerts: NONE fired in the reference run, so equality proves nothing")
    if (chaos := outcome.chaos) is not None and chaos.chaos is not None:
        cr = chaos.chaos
        lines.append(
            f"  chaos: broker-kill span lost {_opt(cr.broker_lost)}, replica-kill span lost "
            f"{_opt(cr.replica_lost)}; {'; '.join(cr.notes)}"
        )
    if (c := outcome.catchup) is not None:
        lines.append(
            f"  catch-up: {c.nodes} nodes, {c.readings:,} readings, stored {c.stored:,} in "
            f"{c.seconds:.1f} s ({c.stored / max(c.seconds, 1e-9):,.0f} readings/s)"
            f"{'' if c.complete else ' NOT COMPLETE'}"
        )
    return "\n".join(lines)


def last_line(outcome: Outcome) -> str:
    chaos = outcome.chaos.chaos if outcome.chaos is not None else None
    top = outcome.top
    rss = per_1k(top.cost.agg_rss_peak / MB, outcome.plan.nodes) if top is not None else 0.0
    c = outcome.catchup
    catchup = f"{c.seconds:.1f}" if c is not None and c.complete else "n/a"
    nodes = outcome.plan.nodes if outcome.runs() else 0  # no live run: no live nodes
    return (
        f"nodes={nodes} replicas={outcome.replicas} lost={outcome.lost} "
        f"duplicated={outcome.duplicated} alerts_equal={'yes' if outcome.alerts_equal else 'no'} "
        f"catchup_s={catchup} "
        f"broker_kill_lost={_opt(chaos.broker_lost if chaos else None)} "
        f"replica_kill_lost={_opt(chaos.replica_lost if chaos else None)} "
        f"rss_mb_per_1k_nodes={rss:.1f}"
    )

"""The human-readable table and the machine-readable last line."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Final

from bench._results import AggregatorRun, Delivery, ModeResult

TARGET_READINGS_PER_S: Final = 150_000.0  # backlog mode
TARGET_LIVE_MESSAGES_PER_S: Final = 8_000.0  # live mode


def _n(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:,.0f}"


def _metric_sum(metrics: dict[str, float], name: str) -> dict[str, float]:
    """{labels or '': value} of every sample of counter `name`."""
    out = {}
    for key, value in metrics.items():
        if key == name or key.startswith(name + "{"):
            out[key[len(name) :].strip("{}")] = value
    return out


def _labelled(metrics: dict[str, float], name: str) -> str:
    samples = _metric_sum(metrics, name)
    total = sum(samples.values())
    nonzero = [f"{k}={v:.0f}" for k, v in sorted(samples.items()) if v and k]
    return f"{total:.0f}" + (f" ({', '.join(nonzero)})" if nonzero else "")


def _cpu(delivery: Delivery) -> str:
    return ", ".join(f"{role} {pct:.0f}%" for role, pct in delivery.cpu.items())


def _completion(delivery: Delivery) -> str:
    if delivery.complete:
        return f"{delivery.elapsed_s:.1f} s"
    return f"NOT complete at deadline ({delivery.elapsed_s:.1f} s)"


def _run_lines(run: AggregatorRun) -> list[str]:
    d = run.delivery
    m = run.metrics
    return [
        f"  sent               {d.sent.messages:,} messages = {d.sent.readings:,} readings "
        f"in {d.sent.publish_s:.1f} s (publish rate {_n(d.publish_messages_per_s)} msg/s)",
        f"  stored in InfluxDB {run.stored:,} readings; lost {run.lost:,}; "
        f"first publish -> all stored {_completion(d)}",
        f"  end-to-end rate    {_n(run.readings_per_s)} readings/s = "
        f"{_n(run.messages_per_s)} messages/s",
        f"  acked batches      {run.acked:,} of {d.sent.messages:,}",
        "  aggregator         "
        f"received {_labelled(m, 'envnet_messages_received_total')} messages, "
        f"stored {m.get('envnet_readings_stored_total', 0):,.0f} readings, "
        f"acks sent {m.get('envnet_acks_sent_total', 0):,.0f}",
        f"  refused            {_labelled(m, 'envnet_refused_total')} messages, "
        f"{_labelled(m, 'envnet_readings_refused_total')} readings; "
        f"duplicates {m.get('envnet_duplicate_batches_total', 0):.0f}; "
        f"intake pauses {m.get('envnet_intake_pauses_total', 0):.0f}; "
        f"write failures {_labelled(m, 'envnet_write_failures_total')}",
        f"  windows            {_labelled(m, 'envnet_window_readings_total')} readings handled "
        "specially (late: re-evaluated closed hours)",
        f"  CPU (1 core=100%)  {_cpu(d)}",
        f"  peak RSS           {_rss(run)}",
        f"  stored readings/s  per 2 s from the first publish: {_timeline(run)}",
        f"  service warnings   {_warnings(run.service_warnings)}",
    ]


def _rss(run: AggregatorRun) -> str:
    if not run.peak_rss_mb:
        return "not measured"
    parts = ", ".join(f"{role} {mb:.0f}" for role, mb in run.peak_rss_mb.items())
    return f"{run.total_peak_rss_mb:.0f} MiB ({parts}; VmHWM)"


def _warnings(lines: tuple[str, ...]) -> str:
    if not lines:
        return "none (mosquitto and influxd logs)"
    return f"{len(lines)}, first: {lines[0][:160]}"


def _timeline(run: AggregatorRun) -> str:
    rates = run.timeline.rates(run.delivery.sent.first_publish, 2.0)
    return " ".join(f"{rate / 1000:.0f}k" for rate in rates)


def _ceiling_lines(result: ModeResult) -> list[str]:
    lines = []
    for sub in result.subscribers:
        d = sub.delivery
        lines.append(
            f"  bare {sub.kind:<8} sub {_n(sub.messages_per_s)} msg/s = "
            f"{_n(sub.readings_per_s)} readings/s "
            f"({min(d.received, d.sent.messages):,}/{d.sent.messages:,} messages, "
            f"{_completion(d)}; publish rate {_n(d.publish_messages_per_s)} msg/s; "
            f"CPU {_cpu(d)})"
        )
    if result.influx is not None:
        w = result.influx.writes
        lines.append(
            f"  raw influx writes  {_n(w.readings_per_s)} readings/s "
            f"({w.readings:,} lines in {w.posts:,} POSTs, {w.elapsed_s:.1f} s; "
            f"counted {result.influx.counted:,})"
        )
    return lines


def _verdict(result: ModeResult) -> str:
    run = result.run
    if result.shape.mode == "backlog":
        ours, target, unit = run.readings_per_s, TARGET_READINGS_PER_S, "readings/s"
    else:
        ours, target, unit = run.messages_per_s, TARGET_LIVE_MESSAGES_PER_S, "messages/s"
    met = "MET" if ours >= target and run.lost == 0 else "MISSED"
    lower, ceiling = result.lower_ceiling
    return (
        f"  => {_n(ours)} {unit} vs target {_n(target)}: {met}; "
        f"ratio to the lower ceiling ({lower}, {_n(ceiling)} readings/s) = {result.ratio:.2f}"
    )


def table(results: Iterable[ModeResult]) -> str:
    out = []
    for result in results:
        shape = result.shape
        out.append(
            f"== {shape.mode} mode: {shape.readings} readings per message, QoS 1 ==\n"
            "aggregator (publishers -> mosquitto -> aggregator process -> influxd):"
        )
        out.extend(_run_lines(result.run))
        out.append("ceilings on this machine, same publishers and message shapes:")
        out.extend(_ceiling_lines(result))
        out.append(_verdict(result))
        if result.run.profile:
            out.append(result.run.profile)
        out.append("")
    return "\n".join(out)


def last_line(results: dict[str, ModeResult]) -> str:
    nan = float("nan")
    backlog = results.get("backlog")
    live = results.get("live")
    readings = backlog.run.readings_per_s if backlog else nan
    ceiling = backlog.ceiling_readings_per_s if backlog else nan
    ratio = backlog.ratio if backlog else nan
    live_messages = live.run.messages_per_s if live else nan
    lost = sum(r.run.lost for r in results.values())
    return (
        f"readings_per_s={readings:.0f} live_messages_per_s={live_messages:.0f} "
        f"ceiling_readings_per_s={ceiling:.0f} ratio={ratio:.3f} lost={lost}"
    )


def _spread(values: list[float]) -> str:
    if not values:
        return "not run"
    return (
        f"min {_n(min(values))}, median {_n(statistics.median(values))}, max {_n(max(values))} "
        f"({', '.join(_n(v) for v in values)})"
    )


def meets_floors(results: dict[str, ModeResult]) -> bool:
    """Every mode run met its target, with nothing lost."""
    for result in results.values():
        run = result.run
        if run.lost != 0:
            return False
        if result.shape.mode == "backlog" and not run.readings_per_s >= TARGET_READINGS_PER_S:
            return False
        if result.shape.mode == "live" and not run.messages_per_s >= TARGET_LIVE_MESSAGES_PER_S:
            return False
    return True


def spread(runs: Sequence[dict[str, ModeResult]]) -> str:
    """The spread of consecutive runs, and whether every one met the floors."""
    backlog = [r["backlog"].run.readings_per_s for r in runs if "backlog" in r]
    live = [r["live"].run.messages_per_s for r in runs if "live" in r]
    lost = [sum(result.run.lost for result in r.values()) for r in runs]
    met = [meets_floors(r) for r in runs]
    return "\n".join(
        [
            f"== spread of {len(runs)} consecutive runs ==",
            f"  backlog readings/s  {_spread(backlog)}",
            f"  live messages/s     {_spread(live)}",
            f"  lost                {', '.join(str(n) for n in lost)}",
            f"  every run at or above the floors ({_n(TARGET_READINGS_PER_S)} readings/s, "
            f"{_n(TARGET_LIVE_MESSAGES_PER_S)} msg/s, lost 0): "
            f"{'yes' if all(met) else 'no'} ({sum(met)} of {len(met)})",
        ]
    )

"""`envnet edge status --config node.toml`: the journal of a node, read-only, while its agent
runs or not. Depth and age, the last acknowledgement, what was dropped, and the aggregator's
latest refusal of the node's messages."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from edge.config import load_edge_config
from edge.journal import JournalError, JournalStatus, read_status

EXIT_NO_JOURNAL = 1


class StatusReport(msgspec.Struct, frozen=True, kw_only=True):
    """--json output: the journal as read, and the bounds the node is configured with."""

    node: str
    journal: JournalStatus
    max_bytes: int
    max_age_s: int


def add_status_arguments(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: `envnet edge --config node.toml status` works too (the value is the edge
    # parser's then).
    parser.add_argument(
        "--config", type=Path, default=argparse.SUPPRESS, help="node.toml (its [journal] path)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object, for scripts")


def run_status_command(args: argparse.Namespace) -> int:
    config_path: Path | None = getattr(args, "config", None)
    if config_path is None:
        sys.stderr.write("envnet edge status: --config node.toml is required\n")
        return 2
    config = load_edge_config(config_path)
    now_ms = time.time_ns() // 1_000_000
    try:
        status = read_status(Path(config.journal.path), now_ms)
    except JournalError as exc:
        sys.stderr.write(f"envnet edge status: {exc}\n")
        return EXIT_NO_JOURNAL
    report = StatusReport(
        node=config.node.id,
        journal=status,
        max_bytes=config.journal.max_bytes,
        max_age_s=config.journal.max_age_s,
    )
    if args.json:
        sys.stdout.write(msgspec.json.encode(report).decode() + "\n")
    else:
        sys.stdout.write(render(report, now_ms))
    return 0


def render(report: StatusReport, now_ms: int) -> str:
    j = report.journal
    oldest = "-"
    if j.oldest_age_s is not None:
        oldest = f"journaled {duration(j.oldest_age_s)} ago (bound {duration(report.max_age_s)})"
        if j.oldest_ts is not None:
            oldest += f"; oldest reading from {iso(j.oldest_ts)}"
    last_ack = "never"
    if j.last_ack_ms is not None:
        ago = duration(max(0, now_ms - j.last_ack_ms) // 1000)
        last_ack = f"{iso(j.last_ack_ms)} ({ago} ago), seq {j.last_ack_seq}"
    state = (
        "closed cleanly"
        if j.closed_cleanly
        else "open (an agent is running, or the last one did not stop cleanly)"
    )
    lines = [
        f"node       {report.node}",
        f"journal    {j.path} ({state})",
        f"journal id {j.journal_id or '-'}",
        f"depth      {j.depth} readings in {j.chunks} chunks, not acknowledged yet",
        f"oldest     {oldest}",
        f"last ack   {last_ack}",
        f"dropped    {j.dropped_readings} readings ({size(j.dropped_bytes)}), oldest first",
        f"size       {size(j.used_bytes)} in use of {size(report.max_bytes)}; "
        f"{size(j.file_bytes)} on disk with the WAL",
    ]
    if (refusal := j.last_refusal) is not None:
        seq = f", seq {refusal.seq}" if refusal.seq is not None else ""
        lines.append(
            f"refused    by the aggregator at {iso(refusal.at_ms)} ({refusal.kind}{seq}): "
            f"{refusal.reason}: {refusal.detail}"
        )
    return "\n".join(lines) + "\n"


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"

"""`envnet sim replay-csv`: replay real hourly data through a real edge agent.

The replay is a Producer for the same EdgeAgent that runs on a Pi, so replayed readings are
journaled, published, acknowledged and stored exactly like live ones.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

from envnet.argtypes import day, node_id, non_negative_float, ordered_days, positive_float

DEFAULT_MQTT = "mqtt://127.0.0.1:1883"


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("csv", type=Path, help="a PRSA_Data_*.csv file")
    parser.add_argument("--node", required=True, type=node_id, help="node id to publish as")
    parser.add_argument("--sensor", default="ref", type=node_id, help="sensor id (default: ref)")
    parser.add_argument(
        "--speed",
        type=positive_float,
        default=3600.0,
        help="data seconds per real second (default 3600: one hour of data per second)",
    )
    parser.add_argument(
        "--from", dest="date_from", type=day, default=None, help="first day, YYYY-MM-DD"
    )
    parser.add_argument("--to", dest="date_to", type=day, default=None, help="last day, YYYY-MM-DD")
    parser.add_argument(
        "--rebase-now",
        action="store_true",
        help="shift timestamps so the last row ends at the current hour: the data becomes "
        "the recent past, never the future (default: original times)",
    )
    parser.add_argument("--journal", type=Path, default=None, help="journal file")
    parser.add_argument(
        "--mqtt-url", default=None, help=f"broker (default: $ENVNET_MQTT_URL or {DEFAULT_MQTT})"
    )
    parser.add_argument(
        "--linger",
        type=non_negative_float,
        default=30.0,
        help="after the last row, wait up to N s for acknowledgements (default 30)",
    )


def run_replay_command(args: argparse.Namespace) -> int:
    from edge.config import (
        EdgeConfig,
        JournalSection,
        MqttSection,
        NodeSection,
        SensorSection,
        validated,
    )
    from edge.runtime import build_agent, stop_on_signals
    from schemas.runtime.configfile import ConfigError
    from schemas.runtime.endpoints import url_or_urls
    from schemas.runtime.logs import get_logger
    from schemas.runtime.progress import ROWS, ProgressReporter
    from simulators.replay_csv import CsvReplay, ReplayFileError

    ordered_days(args.date_from, args.date_to)
    now_ms = time.time_ns() // 1_000_000
    try:
        replay = CsvReplay(
            args.csv,
            sensor=args.sensor,
            start_ms=now_ms,
            speed=args.speed,
            date_from=args.date_from,
            date_to=args.date_to,
            # Rebased hourly readings end on the last clock hour, like real ones reported now.
            rebase_end_ms=now_ms - now_ms % 3_600_000 if args.rebase_now else None,
        )
        planned = replay.planned_rows()
    except (ReplayFileError, ValueError) as exc:
        raise ConfigError(f"replay-csv: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"replay-csv: {args.csv}: cannot be read: {exc}") from None
    journal = args.journal or Path(".dev/replay") / f"{args.node}.sqlite"
    # One broker, or several comma-separated (failover, as in node.toml [mqtt] urls).
    url, urls = url_or_urls(args.mqtt_url or os.environ.get("ENVNET_MQTT_URL") or DEFAULT_MQTT)
    config = validated(
        EdgeConfig(
            node=NodeSection(id=args.node),
            sensors=[SensorSection(id=args.sensor, driver="replay-csv")],
            mqtt=MqttSection(url=url, urls=urls),
            journal=JournalSection(path=str(journal)),
        ),
        "--mqtt-url",
    )
    stop = threading.Event()
    stop_on_signals(stop)
    agent = build_agent(config, producer=replay, stop=stop)
    worker = threading.Thread(target=agent.run, args=(stop,), name=f"replay-{args.node}")
    worker.start()
    # Rows done of the rows in the date range: redrawn on a terminal, one line at the end.
    progress = ProgressReporter(sys.stdout, ROWS, planned)
    deadline: float | None = None
    while not stop.wait(0.25):
        progress.update(replay.counts.rows_emitted)
        if replay.exhausted and deadline is None:
            deadline = time.monotonic() + args.linger
        if deadline is not None and (agent.journal_depth == 0 or time.monotonic() > deadline):
            break
    stop.set()
    worker.join()
    counts = replay.counts
    progress.finish(counts.rows_emitted)
    log = get_logger("simulators.replay")
    refusal = agent.last_refusal
    log.info(
        "replay_done",
        rows=counts.rows_emitted,
        readings=counts.readings_emitted,
        skipped=dict(counts.skipped),
        missing=dict(counts.missing),
        unacked=agent.journal_depth,
        refusals=agent.refusals_received,
    )
    if agent.journal_depth == 0:
        return 0
    if refusal is not None:
        sys.stderr.write(
            f"envnet sim replay-csv: {agent.journal_depth} readings not acknowledged; "
            f"refused by the aggregator: {refusal.reason}: {refusal.detail}\n"
        )
    return 1

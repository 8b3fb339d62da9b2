"""`envnet fleet replicas N [--from M]`: which aggregator replica owns which node.

The same partition the replicas use (aggregator.cluster.partition), read from the fleet
inventory: each replica "i/N" with its node count and nodes, and with --from M, the nodes a
change from M to N replicas moves and where (the ones whose windows and open alerts change
hands in the rolling restart, docs/cluster/replicas.md). A running replica reports its own
share as envnet_replica_info and envnet_replica_nodes on /metrics.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import msgspec

from aggregator.cluster.partition import MAX_REPLICAS, owner
from aggregator.fleet import load_fleet

EXIT_BAD_INPUT = 2


def add_replicas_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("count", type=int, help='replicas (N of [cluster] replica = "i/N")')
    parser.add_argument(
        "--from", dest="before", type=int, default=None, help="the count now: list the moves"
    )
    parser.add_argument(
        "--fleet", type=Path, default=None, help="fleet.toml (default: ENVNET_FLEET or /etc)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per replica")


class _Share(msgspec.Struct):
    replica: str
    nodes: list[str]
    moved_in: list[str] | None = None


def shares(nodes: list[str], count: int, before: int | None) -> list[_Share]:
    """Each replica's nodes (sorted), and with `before`, those it gains from the change."""
    out = [_Share(f"{i}/{count}", [], None if before is None else []) for i in range(count)]
    for node in sorted(nodes):
        share = out[owner(node, count)]
        share.nodes.append(node)
        moved = before is not None and owner(node, before) != owner(node, count)
        if moved and share.moved_in is not None:
            share.moved_in.append(node)
    return out


def run_replicas(args: argparse.Namespace) -> int:
    counts = [c for c in (args.count, args.before) if c is not None]
    if any(not 1 <= c <= MAX_REPLICAS for c in counts):
        sys.stderr.write(f"envnet fleet replicas: counts go from 1 to {MAX_REPLICAS}\n")
        return EXIT_BAD_INPUT
    path = args.fleet or Path(_fleet_default())
    try:
        fleet = load_fleet(path)
    except OSError as exc:
        sys.stderr.write(f"envnet fleet replicas: {exc}\n")
        return EXIT_BAD_INPUT
    for share in shares([info.node for info in fleet], args.count, args.before):
        if args.json:
            sys.stdout.write(msgspec.json.encode(share).decode() + "\n")
            continue
        line = f"replica {share.replica}: {len(share.nodes)} nodes"
        if share.moved_in is not None:
            line += f", {len(share.moved_in)} moved in from {args.before} replicas"
        sys.stdout.write(line + "\n")
        for node in share.nodes:
            moved = share.moved_in is not None and node in share.moved_in
            sys.stdout.write(f"  {node}{'  (moves here)' if moved else ''}\n")
    return 0


def _fleet_default() -> str:
    return os.environ.get("ENVNET_FLEET", "/etc/envnet/fleet.toml")

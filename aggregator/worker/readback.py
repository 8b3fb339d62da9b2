"""What the alerting worker is handed at start, read back from InfluxDB by the service.

The worker does no network I/O (aggregator.worker.process): the service, which has an HTTP
client anyway, asks InfluxDB and sends the worker what came back. Two reads, each a shell
around a pure parser:

- the windows' warm start: the recent readings of the windowed quantities, for the late
  horizon (aggregator.storage.warm_start), one quantity at a time, so that neither process
  holds more than one quantity's answer beside the readings;
- the alert history: the `alerts` points of this replica's nodes, to adopt open alerts
  another replica's state file holds (aggregator.storage.alert_history,
  aggregator.engine.adoption).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

import aiohttp

from aggregator.cluster.partition import Replica
from aggregator.engine.adoption import StoredEvent
from aggregator.engine.evaluator import SPECS, WATER
from aggregator.fleet import Fleet
from aggregator.storage.alert_history import EventCounts, parse_events
from aggregator.storage.alert_history import fetch as alert_history
from aggregator.storage.influx import InfluxTarget
from aggregator.storage.warm_start import ParseCounts, fetch, parse_series
from schemas.messages import Reading

# The quantities a warm start reads back: the windowed series, then the water items.
WARM_QUANTITIES: Final = (*SPECS, *sorted(WATER))
# Both reads are one-offs at start, some of them over a large fleet's hours.
TIMEOUT: Final = aiohttp.ClientTimeout(total=120)


async def recent_readings(
    target: InfluxTarget, since_ms: int, fleet: Fleet, replica: Replica, counts: ParseCounts
) -> AsyncIterator[dict[str, list[Reading]]]:
    """Per quantity, the stored readings of `fleet`'s nodes since `since_ms`, by node. A
    partitioned replica asks for its own nodes only (all of them for one replica).
    WarmStartError if InfluxDB cannot answer."""
    nodes = None if replica.solo else sorted(info.node for info in fleet)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        for quantity in WARM_QUANTITIES:
            answer = await fetch(session, target, quantity, since_ms, nodes)
            by_node: dict[str, list[Reading]] = {}
            for item in parse_series(quantity, answer, counts):
                if item.node in fleet:
                    by_node.setdefault(item.node, []).append(item.reading)
            yield by_node


async def alert_events(
    target: InfluxTarget, since_ms: int, fleet: Fleet, counts: EventCounts
) -> list[StoredEvent]:
    """The `alerts` points of `fleet`'s nodes since `since_ms`. AlertHistoryError if
    InfluxDB cannot answer."""
    nodes = sorted(info.node for info in fleet)
    events: list[StoredEvent] = []
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        for answer in await alert_history(session, target, since_ms, nodes):
            events.extend(parse_events(answer, counts))
    return events

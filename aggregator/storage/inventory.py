"""The fleet inventory in InfluxDB (`nodes`, schemas.storage.NODES), for the map.

Written when the aggregator starts and whenever its inventory changes (hot reload calls
`inventory_lines` with the new fleet). The node ids stored before are read back first, so a
node removed from the inventory while the aggregator was stopped is marked inactive too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import aiohttp

from aggregator.fleet import NodeInfo
from aggregator.storage.influx import InfluxTarget
from aggregator.storage.influxql import InfluxQueryError, influxql
from aggregator.storage.records import node_lines
from schemas.runtime.logs import get_logger
from schemas.storage import NODES

log = get_logger("aggregator.storage.inventory")

STORED_NODES_QUERY: Final = f'SHOW TAG VALUES FROM "{NODES.name}" WITH KEY = "node"'
# Metadata only: a short wait, the start-up must not hang on it.
_TIMEOUT_S: Final = 10.0


def tag_values(result: Mapping[str, Any]) -> frozenset[str]:
    """The values of a SHOW TAG VALUES answer ({"series": [{"values": [[key, value]…]}]})."""
    found: set[str] = set()
    for series in result.get("series") or ():
        for row in series.get("values") or ():
            if isinstance(row, list) and len(row) == 2 and isinstance(row[1], str):
                found.add(row[1])
    return frozenset(found)


async def stored_node_ids(target: InfluxTarget) -> frozenset[str]:
    """Every node id ever written to `nodes`; empty when InfluxDB cannot say (logged)."""
    timeout = aiohttp.ClientTimeout(total=min(target.timeout_s, _TIMEOUT_S))
    try:
        async with aiohttp.ClientSession(timeout=timeout, auth=target.auth()) as session:
            return tag_values(await influxql(session, target, STORED_NODES_QUERY))
    except InfluxQueryError as exc:
        # The current inventory is still written; only nodes retired meanwhile stay on the map.
        log.warning("inventory_stored_unknown", error=str(exc))
        return frozenset()


async def inventory_lines(
    target: InfluxTarget,
    nodes: Iterable[NodeInfo],
    at_ms: int,
    owns: Callable[[str], bool] = lambda node: True,
) -> list[str]:
    """The `nodes` points for the inventory `nodes`, retiring stored nodes no longer in it.
    A partitioned replica passes its own nodes and `owns`: it retires only nodes it owns, so
    that it never marks another replica's nodes inactive."""
    current = list(nodes)
    stored = await stored_node_ids(target)
    retired = sorted(n for n in stored - {info.node for info in current} if owns(n))
    return node_lines(current, retired, at_ms)

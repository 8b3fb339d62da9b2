"""The database ceiling: raw batched line-protocol writes to influxd, no MQTT, no aggregator.

The lines are those the aggregator would write for the same messages (records.ReadingLines,
same nodes, same timestamps), grouped into bodies of whole messages of up to
`lines_per_post` lines, posted by `concurrency` workers to /write (v1, precision=ms).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

import aiohttp

from bench._shapes import LineTemplates, Shape


@dataclass(frozen=True, slots=True)
class InfluxWriteResult:
    readings: int
    posts: int
    elapsed_s: float

    @property
    def readings_per_s(self) -> float:
        return self.readings / self.elapsed_s if self.elapsed_s > 0 else 0.0


class InfluxWriteFailedError(RuntimeError):
    """influxd answered a write with something other than 204."""


def bodies(
    nodes: list[str], shape: Shape, t0_ms: int, lines_per_post: int
) -> Iterator[tuple[bytes, int]]:
    """Endless (body, line count): message m of every node in turn, as the broker would
    interleave them, cut into bodies of whole messages."""
    templates = [LineTemplates(node, shape, t0_ms) for node in nodes]
    pending: list[str] = []
    m = 0
    while True:
        for node in templates:
            if pending and len(pending) + shape.readings > lines_per_post:
                yield "\n".join(pending).encode(), len(pending)
                pending = []
            pending.extend(node.lines(m))
        m += 1


@dataclass(slots=True)
class _Progress:
    readings: int = 0
    posts: int = 0
    last_done: float = 0.0


async def _worker(
    session: aiohttp.ClientSession,
    url: str,
    source: Iterator[tuple[bytes, int]],
    deadline: float,
    progress: _Progress,
) -> None:
    while time.perf_counter() < deadline:
        body, count = next(source)
        async with session.post(url, data=body) as response:
            if response.status != 204:
                text = (await response.text())[:300]
                raise InfluxWriteFailedError(f"HTTP {response.status}: {text}")
        progress.readings += count
        progress.posts += 1
        progress.last_done = time.perf_counter()


async def _measure(
    url: str,
    source: Iterator[tuple[bytes, int]],
    seconds: float,
    concurrency: int,
) -> InfluxWriteResult:
    progress = _Progress()
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        started = time.perf_counter()
        deadline = started + seconds
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(_worker(session, url, source, deadline, progress))
    return InfluxWriteResult(progress.readings, progress.posts, progress.last_done - started)


def measure_influx_writes(
    influx_url: str,
    database: str,
    source: Iterator[tuple[bytes, int]],
    seconds: float,
    concurrency: int,
) -> InfluxWriteResult:
    """Write for `seconds`; the rate counts every line up to the last 204."""
    url = f"{influx_url}/write?db={database}&precision=ms"
    return asyncio.run(_measure(url, source, seconds, concurrency))

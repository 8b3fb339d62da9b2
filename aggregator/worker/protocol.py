"""What the service and the alerting worker say to each other: the frames and their messages.

Length-prefixed msgpack frames over a socketpair. The service (aggregator.worker.client)
sends what happened; the worker (aggregator.worker.process) answers each request with what
came of it: storage lines, alert transitions (already saved to the state store: a restart
can neither repeat nor lose them), and metric updates, which the service applies to its own
registry.

Both processes import this module, so it imports only what the messages are made of: no
network client, no metrics registry, nothing of the service's configuration (the worker is
started with `WorkerSettings`, the part of agg.toml it reads).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Final, Literal, NamedTuple

import msgspec

from aggregator.cluster.partition import Replica
from aggregator.engine.adoption import StoredEvent
from aggregator.engine.settings import EngineSettings
from aggregator.fleet import Fleet, NodeInfo
from aggregator.worker.event_clock import ClockSettings
from schemas.messages import Alert, AlertEventKind, ReadingValues, StatusMessage
from schemas.runtime.logs import LogFormat

HEADER: Final = struct.Struct("!I")
MAX_FRAME: Final = 256 * 1024 * 1024


class WorkerSettings(NamedTuple):
    """What the worker reads of agg.toml: the engine's [alerts] keys, [clock], and which
    replica it is (aggregator.config.AggregatorConfig.worker_settings)."""

    engine: EngineSettings
    clock: ClockSettings
    replica: Replica


# What the worker is started with, pickled in its first frame: its settings, the inventory
# and the log settings.
Bootstrap = tuple[WorkerSettings, Fleet, tuple[str, LogFormat]]


class Open(msgspec.Struct, tag=True, array_like=True):
    state_dir: str


class WarmReadings(msgspec.Struct, tag=True, array_like=True):
    """Stored readings of one quantity, by node, read back by the service for the warm start
    (aggregator.storage.warm_start); replayed once `Warm` follows."""

    readings: Mapping[str, Sequence[ReadingValues]]


class Warm(msgspec.Struct, tag=True, array_like=True):
    """Every WarmReadings has been sent: replay them into the windows, or (the read back
    failed part way) drop them, so the windows start empty rather than with some quantities."""

    replay: bool


class Adopt(msgspec.Struct, tag=True, array_like=True):
    """The `alerts` points of this replica's nodes, read back by the service at start, to
    adopt the open alerts another replica's state file holds (aggregator.engine.adoption)."""

    events: list[StoredEvent]


class StoredBatch(msgspec.Struct, array_like=True):
    node: str
    seq: int
    backlog: bool
    # Checked when they arrived: decoded unchecked here (ReadingValues), at less than half
    # the cost. The service encodes its Readings; the fields are the same.
    readings: Sequence[ReadingValues]


class Stored(msgspec.Struct, tag=True, array_like=True):
    """Every batch of one InfluxDB write: one request per write, not per message, so that
    live traffic (a few readings per message) costs the worker few round trips."""

    batches: list[StoredBatch]


class HeardNode(msgspec.Struct, array_like=True):
    node: str
    arrival_ms: int
    readings: list[ReadingValues]  # the newest reading of each quantity
    # Whether the node's latest telling batch was history (aggregator.engine.liveness).
    history: bool | None = None


class Heard(msgspec.Struct, tag=True, array_like=True):
    nodes: list[HeardNode]


class Status(msgspec.Struct, tag=True, array_like=True):
    status: StatusMessage
    arrival_ms: int


class Command(msgspec.Struct, tag=True, array_like=True):
    payload: bytes


class Tick(msgspec.Struct, tag=True, array_like=True):
    now_ms: int
    intake_live: bool


class Checkpoint(msgspec.Struct, tag=True, array_like=True):
    pass


class Gauges(msgspec.Struct, tag=True, array_like=True):
    pass


class Close(msgspec.Struct, tag=True, array_like=True):
    pass


class Reload(msgspec.Struct, tag=True, array_like=True):
    """A new fleet inventory (hot reload); nodes missing from it are retired."""

    nodes: dict[str, NodeInfo]
    at_ms: int


Request = (
    Open
    | WarmReadings
    | Warm
    | Adopt
    | Stored
    | Heard
    | Status
    | Command
    | Tick
    | Checkpoint
    | Gauges
    | Close
    | Reload
)

MetricOp = tuple[Literal["inc", "set"], str, tuple[str, ...], float]


class Event(msgspec.Struct, array_like=True):
    event: AlertEventKind
    alert: Alert
    at_ms: int


class Reply(msgspec.Struct, array_like=True):
    lines: list[str] = []
    events: list[Event] = []
    metrics: list[MetricOp] = []
    live_alerts: list[Alert] = []
    error: str | None = None
    # Adopt: how many open alerts were adopted, and how many local tracks they superseded.
    adopted: tuple[int, int] = (0, 0)


REQUESTS: Final = msgspec.msgpack.Decoder(Request)
REPLIES: Final = msgspec.msgpack.Decoder(Reply)
ENCODER: Final = msgspec.msgpack.Encoder()


def frame(message: Request | Reply) -> bytes:
    body = ENCODER.encode(message)
    return HEADER.pack(len(body)) + body

"""Open alerts that follow a node to a replica without its state file. Pure: times are data.

A replica's alert tracks live in its state.sqlite (aggregator.worker.state_store). Replicas on
one host share that file, but replicas on separate hosts or pods do not: when the replica
count changes, a moved node's new owner would find no track, raise the still-exceeding alert a
second time, and never resolve the first (docs/cluster/replicas.md). Every transition is also
an `alerts` point in InfluxDB (aggregator.storage.records.alert_line), so at start the new
owner reads back its nodes' recent points and rebuilds their open alerts from them.

Points are grouped by episode, not sorted by time alone: fired and resolved are stamped with
event time, renotified and acknowledged with the clock of the replica that wrote them, and an
acknowledgement heard while a lagging node's clearing readings were still on their way can
carry a later time than the resolution it preceded. Every point of one episode carries the
episode's `since_ms` (the start of its exceedance, from the readings themselves, so two
replicas judging the same data agree on it), and a resolved point closes that episode
whatever the time stamps say. The newest episode (the greatest since_ms) is the node's
current state for that rule: open -> a firing track; closed -> nothing to adopt.

Only the live lane is rebuilt: late-lane points (`late`) record past episodes at their true
times and never hold live state. Pending tracks are never published, so there is nothing to
rebuild them from: the new owner starts the pending time again from its own observations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import msgspec

from aggregator.engine.lifecycle import AlertKey, Track
from aggregator.fleet import NodeInfo
from schemas.messages import Alert, AlertEventKind

# Where two points of one episode share a time stamp, the later in the lifecycle wins.
_ORDER: dict[AlertEventKind, int] = {"fired": 0, "renotified": 1, "acknowledged": 2, "resolved": 3}


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One `alerts` point read back: the event, its time stamp, and the alert it carried."""

    event: AlertEventKind
    at_ms: int
    alert: Alert

    @property
    def key(self) -> AlertKey:
        return (self.alert.node, self.alert.rule)


@dataclass(slots=True)
class Adoption:
    """The tracks to install in the live lane, replacing whatever is there."""

    # Open episodes the state file did not know of: installed as firing tracks.
    adopted: dict[AlertKey, Track] = field(default_factory=dict)
    # A local firing track another replica has since resolved (the node moved away and
    # back): installed as the resolved track InfluxDB holds, so it neither stays open nor
    # republishes a stale firing state over the other replica's resolution.
    superseded: dict[AlertKey, Track] = field(default_factory=dict)

    def tracks(self) -> dict[AlertKey, Track]:
        return {**self.adopted, **self.superseded}


def plan_adoption(
    events: Iterable[StoredEvent],
    local: Mapping[AlertKey, Track],
    lookup: Callable[[str], NodeInfo | None],
    now_ms: int,
) -> Adoption:
    """Which live tracks to install, from the stored events of the look-back.

    `local`: the live tracks state.sqlite gave (a local track wins whenever it has seen data
    from the stored episode's start on: it is then at least as new). `lookup`: this replica's
    inventory, the node's info for a node it owns, None for any other (skipped). `now_ms`:
    the replica's clock, the adopted tracks' last touch.
    """
    by_key: dict[AlertKey, list[StoredEvent]] = {}
    for e in events:
        if not e.alert.late:
            by_key.setdefault(e.key, []).append(e)
    out = Adoption()
    for key, found in by_key.items():
        info = lookup(key[0])
        if info is None:
            continue
        newest = max(e.alert.since_ms for e in found)
        episode = sorted(
            (e for e in found if e.alert.since_ms == newest),
            key=lambda e: (e.at_ms, _ORDER[e.event]),
        )
        mine = local.get(key)
        resolved = [e for e in episode if e.event == "resolved"]
        if resolved:
            closed = resolved[-1]
            if (
                mine is not None
                and mine.state == "firing"
                and mine.alert is not None
                and mine.alert.since_ms <= newest
                and mine.updated_ms < closed.at_ms
            ):
                out.superseded[key] = _resolved_track(closed, info, now_ms)
            continue
        if mine is not None and mine.updated_ms >= newest:
            continue  # the state file has seen this episode's data: it knows better
        out.adopted[key] = _firing_track(episode, info, now_ms)
    return out


def _firing_track(episode: list[StoredEvent], info: NodeInfo, now_ms: int) -> Track:
    last = episode[-1]
    acks = [e for e in episode if e.event == "acknowledged"]
    paged = [e.at_ms for e in episode if e.event in ("fired", "renotified")]
    fired = [e.at_ms for e in episode if e.event == "fired"]
    since = last.alert.since_ms
    # Event time of the newest observation known: the fired point's (renotified and
    # acknowledged are stamped on a wall clock). Erring early only sends an observation older
    # than the true one to the live lane, where the firing track absorbs it.
    updated = max(fired, default=since)
    acked_by = acks[-1].alert.acked_by if acks else last.alert.acked_by
    alert = msgspec.structs.replace(
        last.alert,
        state="firing",
        updated_ms=max(updated, last.alert.since_ms),
        site=info.site,
        location=info.location,
        acked_by=acked_by,
        acked_ms=acks[-1].at_ms if acks and acked_by is not None else None,
        ack_note=None,  # not stored in the `alerts` point
    )
    # The clear run starts afresh (cleared_since_ms None): a clearance under way at the move
    # resolves up to clear_s later than it would have, never earlier.
    return Track(
        state="firing",
        alert=alert,
        updated_ms=alert.updated_ms,
        # A fired point's time is event time: never later than our clock, or a node whose
        # clock runs ahead would put its re-notifications off.
        paged_wall_ms=min(max(paged, default=since), now_ms),
        touched_wall_ms=now_ms,
    )


def _resolved_track(closed: StoredEvent, info: NodeInfo, now_ms: int) -> Track:
    alert = msgspec.structs.replace(
        closed.alert,
        state="resolved",
        updated_ms=closed.at_ms,
        site=info.site,
        location=info.location,
        acked_by=None,
        acked_ms=None,
        ack_note=None,
    )
    return Track(state="resolved", alert=alert, updated_ms=closed.at_ms, touched_wall_ms=now_ms)

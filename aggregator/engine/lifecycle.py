"""The alert lifecycle: observations in, transitions out. Pure: every clock is a parameter.

One alert per (node, rule). Its live state moves through

    (none) --exceeded--> pending --exceeded for pending_s--> firing
    firing --cleared for clear_s--> resolved --exceeded--> pending ...

in event time (the observations' own times), so a replay gives the same alerts as the live run.
`exceeded` and `cleared` are separate judgements made by the rule (aggregator.engine.observations):
between the limit and the clear level neither holds, and the alert keeps its state, so a value
hovering at the limit does not flap.

Two lanes keep late data honest. Observations flagged late (a node draining its backlog, a
window re-evaluated because data arrived late) or older than the live state run through their
own *late lane*: they produce alerts marked `late`, recorded at their true times on the event
stream and in InfluxDB, and they never touch the live state or page anyone.

Re-notification (for firing, unacknowledged, non-suspect live alerts) runs on the aggregator's
wall clock, through `tick(now_ms)`. Late episodes close in event time, never on the wall clock:
by their own observations like live ones, or, when their data ends while they still exceed,
when the node says so (`close_late`: it went offline, or drained its backlog) or when the
node's own clock has moved past them by the late horizon (`expire_late`: no late reading can
revise them any more). A closed late episode keeps its track as a tombstone: a later pass over
the same data (a second replay) is recognised and ignored instead of opening it again.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

import msgspec

from aggregator.engine.observations import Observation
from aggregator.fleet import NodeInfo
from schemas.messages import ALERT_SCHEMA, Alert, AlertEventKind

AlertKey = tuple[str, str]
TrackState = Literal["pending", "firing", "resolved"]


class AckRefusedError(ValueError):
    """An acknowledgement for an alert that is not firing."""


class LifecyclePolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How one family of rules moves between states. Durations are event time, in seconds,
    except renotify_s, which is wall-clock time since the last page."""

    pending_s: int = 0
    clear_s: int = 0
    renotify_s: int = 0  # 0: never re-notify


def default_rule_policies() -> dict[str, LifecyclePolicy]:
    # A spike flags one reading (and marks it suspect) but is no reason to page anyone; a
    # sensor that keeps jumping for 5 minutes of event time is.
    return {"health.spike": LifecyclePolicy(pending_s=300, clear_s=300, renotify_s=14400)}


class LifecycleSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """agg.toml [alerts.lifecycle]: a default policy, and overrides by rule-id prefix
    ("odour", "air.o3", "health", ...; the longest whole-segment prefix wins). envnet's
    choices, not a standard's."""

    default: LifecyclePolicy = LifecyclePolicy(renotify_s=3600)
    rules: dict[str, LifecyclePolicy] = msgspec.field(default_factory=default_rule_policies)

    def table(self) -> PolicyTable:
        return PolicyTable(self.default, self.rules)


class PolicyTable:
    """Policies by rule-id prefix ("odour", "odour.h2s", ...): the longest matching prefix of
    whole dot-separated segments wins, then the default."""

    def __init__(self, default: LifecyclePolicy, by_prefix: Mapping[str, LifecyclePolicy]) -> None:
        self._default = default
        self._by_prefix = dict(by_prefix)
        self._cache: dict[str, LifecyclePolicy] = {}

    def for_rule(self, rule_id: str) -> LifecyclePolicy:
        policy = self._cache.get(rule_id)
        if policy is None:
            policy = self._cache[rule_id] = self._lookup(rule_id)
        return policy

    def _lookup(self, rule_id: str) -> LifecyclePolicy:
        parts = rule_id.split(".")
        for end in range(len(parts), 0, -1):
            found = self._by_prefix.get(".".join(parts[:end]))
            if found is not None:
                return found
        return self._default


@dataclass(frozen=True, slots=True)
class Transition:
    event: AlertEventKind
    alert: Alert
    # When it happened: event time for fired/resolved, the wall clock for the others.
    at_ms: int

    @property
    def pages(self) -> bool:
        """Whether a paging sink (webhook) should notify someone now."""
        alert = self.alert
        return (
            self.event in ("fired", "renotified")
            and alert.state == "firing"
            and not alert.late
            and not alert.suspect
        )

    @property
    def retained(self) -> bool:
        """Whether this changes the retained live state on envnet/v1/alerts/{node}/{rule}."""
        return not self.alert.late


class Track(msgspec.Struct, kw_only=True):
    """The state of one (node, rule) in one lane. Persisted as is."""

    state: TrackState = "resolved"
    alert: Alert | None = None  # the last published form; None until it first fires
    exceeded_since_ms: int | None = None  # start of the current run of exceedances
    cleared_since_ms: int | None = None  # start of the current run of clear observations
    updated_ms: int = 0  # event time of the newest observation applied
    paged_wall_ms: int = 0  # wall time of the last fire or re-notification
    touched_wall_ms: int = 0  # wall time of the last observation
    # A late episode closed because its data ended (not by a clear observation): everything
    # up to updated_ms has been recorded, so observations up to then are a second pass.
    closed: bool = False


class AlertBook:
    def __init__(self, policies: PolicyTable) -> None:
        self._policies = policies
        self._live: dict[AlertKey, Track] = {}
        self._late: dict[AlertKey, Track] = {}
        self._dirty: set[AlertKey] = set()

    # -- observations ---------------------------------------------------------------------

    def apply(self, obs: Observation, info: NodeInfo, now_ms: int) -> Transition | None:
        key = (obs.node, obs.rule.id)
        live = self._live.get(key)
        late = obs.late or (live is not None and obs.at_ms < live.updated_ms)
        lane = self._late if late else self._live
        track = lane.get(key)
        if track is None:
            if not obs.exceeded:
                return None  # nothing open and nothing to open: keep no state
            track = lane[key] = Track()
        if late and (
            obs.at_ms < track.updated_ms or (track.closed and obs.at_ms <= track.updated_ms)
        ):
            # Older than what this late episode already covers: a second backlog pass.
            return None
        track.closed = False
        self._dirty.add(key)
        track.touched_wall_ms = now_ms
        return self._step(track, obs, info, late, now_ms)

    def _step(
        self, track: Track, obs: Observation, info: NodeInfo, late: bool, now_ms: int
    ) -> Transition | None:
        track.updated_ms = obs.at_ms
        if obs.exceeded:
            return self._exceeded(track, obs, info, late, now_ms)
        if obs.is_cleared:
            return self._cleared(track, obs, info, late)
        # In the hysteresis band: neither a new exceedance nor a clearance.
        track.cleared_since_ms = None
        if track.state == "firing":
            self._remember(track, obs, info, late)
        return None

    def _exceeded(
        self, track: Track, obs: Observation, info: NodeInfo, late: bool, now_ms: int
    ) -> Transition | None:
        track.cleared_since_ms = None
        if track.exceeded_since_ms is None:
            track.exceeded_since_ms = obs.at_ms
        if track.state == "firing":
            return self._refresh(track, obs, info, late, now_ms)
        pending_ms = self._policies.for_rule(obs.rule.id).pending_s * 1000
        if obs.at_ms - track.exceeded_since_ms >= pending_ms:
            return self._fire(track, obs, info, late, now_ms)
        track.state = "pending"
        return None

    def _cleared(
        self, track: Track, obs: Observation, info: NodeInfo, late: bool
    ) -> Transition | None:
        track.exceeded_since_ms = None
        if track.state == "pending":
            track.state = "resolved"  # never published, so nothing to retract
        if track.state != "firing":
            return None
        if track.cleared_since_ms is None:
            track.cleared_since_ms = obs.at_ms
        clear_ms = self._policies.for_rule(obs.rule.id).clear_s * 1000
        if obs.at_ms - track.cleared_since_ms < clear_ms:
            self._remember(track, obs, info, late)
            return None
        return self._resolve(track, obs, info, late)

    def _fire(
        self, track: Track, obs: Observation, info: NodeInfo, late: bool, now_ms: int
    ) -> Transition:
        since = track.exceeded_since_ms if track.exceeded_since_ms is not None else obs.at_ms
        alert = _alert(obs, info, "firing", since, late)
        track.state, track.alert, track.paged_wall_ms = "firing", alert, now_ms
        return Transition("fired", alert, obs.at_ms)

    def _refresh(
        self, track: Track, obs: Observation, info: NodeInfo, late: bool, now_ms: int
    ) -> Transition | None:
        was_suspect = track.alert is not None and track.alert.suspect
        alert = self._remember(track, obs, info, late)
        if was_suspect and not alert.suspect and not late:
            # Fired on a sensor judged unhealthy; a healthy sensor now confirms it: page.
            track.paged_wall_ms = now_ms
            return Transition("renotified", alert, now_ms)
        return None

    def _resolve(self, track: Track, obs: Observation, info: NodeInfo, late: bool) -> Transition:
        assert track.alert is not None
        alert = _alert(obs, info, "resolved", track.alert.since_ms, late)
        track.state, track.alert = "resolved", alert
        track.cleared_since_ms = None
        return Transition("resolved", alert, obs.at_ms)

    def _remember(self, track: Track, obs: Observation, info: NodeInfo, late: bool) -> Alert:
        """Keep the firing alert's latest value without publishing it (that would spam)."""
        assert track.alert is not None
        previous = track.alert
        alert = _alert(obs, info, _published_state(track), previous.since_ms, late)
        alert = msgspec.structs.replace(
            alert,
            acked_by=previous.acked_by,
            acked_ms=previous.acked_ms,
            ack_note=previous.ack_note,
        )
        track.alert = alert
        return alert

    # -- wall clock -----------------------------------------------------------------------

    def tick(self, now_ms: int) -> list[Transition]:
        """Re-notifications due."""
        out: list[Transition] = []
        for key, track in self._live.items():
            alert = track.alert
            if track.state != "firing" or alert is None or alert.acked_by or alert.suspect:
                continue
            every = self._policies.for_rule(alert.rule).renotify_s * 1000
            if every and now_ms - track.paged_wall_ms >= every:
                track.paged_wall_ms = now_ms
                self._dirty.add(key)
                out.append(Transition("renotified", alert, now_ms))
        return out

    def close_late(self, node: str, reason: str) -> list[Transition]:
        """The node's late data has ended (it went offline, or drained its backlog): close
        its open late episodes where their data ended, saying why."""
        return [
            t
            for key, track in list(self._late.items())
            if key[0] == node and (t := self._close_late(key, track, reason)) is not None
        ]

    def retire(self, node: str, reason: str, now_ms: int) -> list[Transition]:
        """The node left the inventory: resolve its firing alerts in both lanes, saying why,
        and forget its tracks (no reading of it will ever clear them)."""
        out: list[Transition] = []
        for lane in (self._live, self._late):
            for key in [key for key in lane if key[0] == node]:
                track = lane.pop(key)
                self._dirty.add(key)
                if track.state != "firing" or track.alert is None or track.closed:
                    continue  # pending or resolved: never published as open
                resolved = msgspec.structs.replace(
                    track.alert, state="resolved", message=f"{reason}; {track.alert.message}"[:300]
                )
                out.append(Transition("resolved", resolved, now_ms))
        return out

    def expire_late(self, newest_ms: Mapping[str, int], horizon_ms: int) -> list[Transition]:
        """Close the late episodes whose data ends more than `horizon_ms` before their node's
        newest data (`newest_ms`, event time): no late reading can revise them any more."""
        out: list[Transition] = []
        for key, track in list(self._late.items()):
            newest = newest_ms.get(key[0])
            if newest is None or track.updated_ms >= newest - horizon_ms:
                continue
            transition = self._close_late(key, track, "late data ended")
            if transition is not None:
                out.append(transition)
        return out

    def _close_late(self, key: AlertKey, track: Track, reason: str) -> Transition | None:
        if track.closed or track.state == "resolved":
            return None
        self._dirty.add(key)
        firing = track.state == "firing" and track.alert is not None
        track.state, track.closed = "resolved", True
        track.exceeded_since_ms = track.cleared_since_ms = None
        if not firing or track.alert is None:
            return None  # pending: never published, nothing to retract
        # Closed where its data ended, and saying so: the exceedance had not cleared.
        closed = msgspec.structs.replace(
            track.alert,
            state="resolved",
            message=f"{reason} while exceeding; {track.alert.message}"[:300],
        )
        track.alert = closed
        return Transition("resolved", closed, track.updated_ms)

    def acknowledge(
        self, node: str, rule: str, by: str, note: str | None, now_ms: int
    ) -> Transition:
        track = self._live.get((node, rule))
        if track is None or track.state != "firing" or track.alert is None:
            raise AckRefusedError(f"no firing alert {rule!r} on node {node!r}")
        alert = msgspec.structs.replace(track.alert, acked_by=by, acked_ms=now_ms, ack_note=note)
        track.alert = alert
        self._dirty.add((node, rule))
        return Transition("acknowledged", alert, now_ms)

    # -- views and persistence ------------------------------------------------------------

    def firing(self) -> list[Alert]:
        return [t.alert for t in self._live.values() if t.state == "firing" and t.alert]

    def live(self) -> Iterator[Alert]:
        return (t.alert for t in self._live.values() if t.alert is not None)

    def take_dirty(self) -> dict[AlertKey, tuple[Track | None, Track | None]]:
        """(live, late) track of every key changed since the last call, for the state store."""
        dirty, self._dirty = self._dirty, set()
        return {key: (self._live.get(key), self._late.get(key)) for key in dirty}

    def live_tracks(self) -> Mapping[AlertKey, Track]:
        """The live lane as it stands (read-only use: adoption's view of the state file)."""
        return self._live

    def install(self, key: AlertKey, track: Track) -> None:
        """Set one key's live track from elsewhere (aggregator.engine.adoption), to be saved:
        no transition, since the replica that wrote its history published it already."""
        self._live[key] = track
        self._dirty.add(key)

    def load(self, key: AlertKey, live: Track | None, late: Track | None) -> None:
        """Restore one key's tracks (from the state store's rows)."""
        if live is not None:
            self._live[key] = live
        if late is not None:
            self._late[key] = late


def _published_state(track: Track) -> Literal["firing", "resolved"]:
    return "firing" if track.state == "firing" else "resolved"


def _alert(
    obs: Observation,
    info: NodeInfo,
    state: Literal["firing", "resolved"],
    since_ms: int,
    late: bool,
) -> Alert:
    rule = obs.rule
    return Alert(
        schema=ALERT_SCHEMA,
        node=obs.node,
        rule=rule.id,
        kind=rule.kind,
        state=state,
        severity=rule.severity,
        standard=rule.standard,
        clause=rule.clause,
        window_s=rule.window_s,
        value=round(obs.value, 3),
        limit=obs.limit,
        since_ms=since_ms,
        updated_ms=obs.at_ms,
        message=obs.message[:300],
        quantity=rule.quantity,
        unit=rule.unit,
        site=info.site,
        location=info.location,
        late=late,
        suspect=obs.suspect,
        window_start_ms=obs.window_start_ms,
    )

"""The topics a replica subscribes to, and how that set grows as nodes appear. Pure.

One replica (N == 1) subscribes to the readings and status wildcards, as the aggregator
always did. Replica i of N > 1 subscribes to the status wildcard (retained: at connect the
broker hands it every node's last status, so it learns of every node at once) and, per
node it owns, to that node's readings topic; nodes it learns of later (a status of an owned
node it had not subscribed, a node added to the inventory) are subscribed as they appear.

Its persistent session may hold subscriptions from an earlier layout (the readings wildcard
when the fleet had one replica, readings topics of nodes another replica owns now), and a
session keeps its subscriptions until told otherwise: so the first connection also
unsubscribes the wildcard and the readings topics of every known node it does not own.

With `[cluster] readings = "wildcard"` a replica of several subscribes to the readings
wildcard instead, like one replica, and the service skips (acks unread, counts) readings of
nodes another replica owns. Every replica's session then receives every reading: N times the
broker's delivery work, for a constant handful of filters instead of one per node. That is the
choice for a broker where a filter is expensive (nats-server: a replicated JetStream consumer
per filter, at most 65,535 / max_ack_pending of them per session; docs/cluster/replicas.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from aggregator.cluster.partition import Replica
from schemas import topics

QOS = 1
# How a replica of several reads readings: one topic per owned node, or the wildcard.
ReadingsMode = Literal["per-node", "wildcard"]
# Readings topics one replica subscribes at most: far above a city's fleet, so that a flood
# of statuses under ever new node ids (a broker without the ACL) cannot grow the session,
# and the list sent at each reconnect, without bound. Beyond it a node is not subscribed
# (counted by the caller); nodes of the inventory come first at start.
MAX_NODE_TOPICS = 100_000


@dataclass(frozen=True, slots=True)
class SubscriptionPlan:
    """What to send on connecting: UNSUBSCRIBE `drop` (if any), then SUBSCRIBE `keep`."""

    keep: tuple[tuple[str, int], ...]
    drop: tuple[str, ...]


def fleet_wide() -> list[tuple[str, int]]:
    """Topics every replica reads whole: the status wildcard and the operators' commands."""
    return [(topics.STATUS_FILTER, QOS), (topics.ALERT_COMMANDS, QOS)]


@dataclass(slots=True)
class NodeSubscriptions:
    """The readings topics of one replica, grown as nodes become known."""

    replica: Replica
    mode: ReadingsMode = "per-node"
    subscribed: set[str] = field(default_factory=set)
    # Known nodes whose readings topic the session must not keep: those owned elsewhere,
    # and with the wildcard mode every node (the wildcard brings their readings).
    foreign: set[str] = field(default_factory=set)
    limit: int = MAX_NODE_TOPICS
    # Owned nodes not subscribed because of `limit`.
    over_limit: int = 0

    def learn(self, nodes: Iterable[str]) -> list[str]:
        """Note `nodes` as known; the readings topics to subscribe now (owned nodes not yet
        subscribed), in a stable order. Always empty when the replica reads the wildcard (one
        replica, or the wildcard mode); the wildcard mode still notes every node, so that the
        first connection drops the per-node topics a per-node layout left in the session."""
        if self.replica.solo:
            return []
        new: list[str] = []
        for node in sorted(set(nodes)):
            if self.mode == "wildcard" or not self.replica.owns(node):
                if len(self.foreign) < self.limit:
                    self.foreign.add(node)
            elif node not in self.subscribed:
                if len(self.subscribed) >= self.limit:
                    self.over_limit += 1
                    continue
                self.subscribed.add(node)
                new.append(topics.readings(node))
        return new

    def plan(self) -> SubscriptionPlan:
        """Everything to (re)subscribe on a connection: the session may be new or old."""
        if self.replica.solo or self.mode == "wildcard":
            keep = ((topics.READINGS_FILTER, QOS), *fleet_wide())
            # One replica has nothing to drop; a wildcard replica drops every node's topic.
            return SubscriptionPlan(keep, tuple(topics.readings(n) for n in sorted(self.foreign)))
        readings = [(topics.readings(node), QOS) for node in sorted(self.subscribed)]
        drop = [topics.READINGS_FILTER, *(topics.readings(n) for n in sorted(self.foreign))]
        return SubscriptionPlan((*fleet_wide(), *readings), tuple(drop))


def session_client_id(client_id: str, replica: Replica) -> str:
    """The MQTT client id of a replica's persistent session: one per replica index, not per
    layout, so a rolling restart to another count reuses (and re-plans, `plan`) the sessions
    of the indices that remain, instead of leaving behind sessions that would queue readings
    for nobody. Index 0 keeps the plain id: going from one replica to several, the first
    takes over the one session there was, with whatever it holds."""
    return client_id if replica.index == 0 else f"{client_id}-r{replica.index}"

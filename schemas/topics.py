"""MQTT topic names of contract version 1, built and parsed in one place."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from schemas.messages import ID_REGEX, RULE_PATTERN

PREFIX: Final = "envnet/v1"
READINGS_FILTER: Final = f"{PREFIX}/nodes/+/readings"
STATUS_FILTER: Final = f"{PREFIX}/nodes/+/status"
ALERT_EVENTS: Final = f"{PREFIX}/alert-events"
ALERTS_FILTER: Final = f"{PREFIX}/alerts/#"
ALERT_COMMANDS: Final = f"{PREFIX}/alert-commands"

NodeTopicKind = Literal["readings", "status", "ack"]

_KINDS: Final[dict[str, NodeTopicKind]] = {"readings": "readings", "status": "status", "ack": "ack"}
_NODE_TOPIC = re.compile(r"^envnet/v1/nodes/([^/]+)/(readings|status|ack)$")
_ALERT_TOPIC = re.compile(r"^envnet/v1/alerts/([^/]+)/([^.]+)$")
_RULE = re.compile(RULE_PATTERN)


class TopicError(ValueError):
    """A topic that is not part of the contract, or names an invalid id."""


def readings(node: str) -> str:
    return f"{PREFIX}/nodes/{_checked_id(node)}/readings"


def status(node: str) -> str:
    return f"{PREFIX}/nodes/{_checked_id(node)}/status"


def ack(node: str) -> str:
    return f"{PREFIX}/nodes/{_checked_id(node)}/ack"


def refusal(node: str) -> str:
    return f"{PREFIX}/nodes/{_checked_id(node)}/refusal"


def alert(node: str, rule: str) -> str:
    """envnet/v1/alerts/{node}/{rule}, each `.` of the rule id a topic level (air.pm2_5.24h:
    .../air/pm2_5/24h). A clustered broker built on NATS (docs/cluster/broker.md) maps topic
    levels to subject tokens and disconnects a client that uses a `.` in a topic; rule ids
    never contain `/`, so parse_alert_topic gets the rule id back."""
    if not _RULE.match(rule):
        msg = f"invalid rule id {rule!r}"
        raise TopicError(msg)
    return f"{PREFIX}/alerts/{_checked_id(node)}/{rule.replace('.', '/')}"


@dataclass(frozen=True, slots=True)
class AlertTopic:
    node: str
    rule: str


def parse_alert_topic(topic: str) -> AlertTopic:
    """Split envnet/v1/alerts/{node}/{rule levels}; raise TopicError for anything else."""
    match = _ALERT_TOPIC.match(topic)
    if match is None:
        msg = f"not an envnet v1 alert topic: {topic[:120]!r}"
        raise TopicError(msg)
    node, rule = match.group(1), match.group(2).replace("/", ".")
    if not ID_REGEX.match(node) or not _RULE.match(rule):
        msg = f"invalid node or rule id in alert topic: {topic[:120]!r}"
        raise TopicError(msg)
    return AlertTopic(node, rule)


@dataclass(frozen=True, slots=True)
class NodeTopic:
    node: str
    kind: NodeTopicKind


def parse_node_topic(topic: str) -> NodeTopic:
    """Split envnet/v1/nodes/{node}/{kind}; raise TopicError for anything else."""
    match = _NODE_TOPIC.match(topic)
    if match is None:
        msg = f"not an envnet v1 node topic: {topic[:120]!r}"
        raise TopicError(msg)
    node, kind = match.group(1), match.group(2)
    if not ID_REGEX.match(node):
        msg = f"invalid node id in topic: {node[:80]!r}"
        raise TopicError(msg)
    return NodeTopic(node, _KINDS[kind])


def _checked_id(node: str) -> str:
    if not ID_REGEX.match(node):
        msg = f"invalid node id {node!r}"
        raise TopicError(msg)
    return node

"""Alert topics: a rule id's dots become topic levels (NATS refuses '.' in MQTT topics), and
the topic gives the (node, rule) back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import topics
from schemas.messages import ID_PATTERN, RULE_PATTERN


def test_alert_topic_has_one_level_per_rule_segment() -> None:
    topic = topics.alert("sz-park", "air.pm2_5.24h")
    assert topic == "envnet/v1/alerts/sz-park/air/pm2_5/24h"
    assert topics.parse_alert_topic(topic) == topics.AlertTopic("sz-park", "air.pm2_5.24h")


@given(st.from_regex(ID_PATTERN, fullmatch=True), st.from_regex(RULE_PATTERN, fullmatch=True))
def test_alert_topic_round_trips_and_never_holds_a_dot_or_space(node: str, rule: str) -> None:
    topic = topics.alert(node, rule)
    assert "." not in topic
    assert " " not in topic
    assert topics.parse_alert_topic(topic) == topics.AlertTopic(node, rule)


@pytest.mark.parametrize(
    "topic",
    [
        "envnet/v1/alerts/node",  # no rule
        "envnet/v1/alerts/Node/air/o3",  # node id out of the alphabet
        "envnet/v1/alerts/node/air.o3",  # the old form: a '.' in a level
        "envnet/v1/alerts/node/air/O3",
        "envnet/v1/nodes/node/status",
    ],
)
def test_parse_alert_topic_refuses_what_is_not_an_alert_topic(topic: str) -> None:
    with pytest.raises(topics.TopicError):
        topics.parse_alert_topic(topic)

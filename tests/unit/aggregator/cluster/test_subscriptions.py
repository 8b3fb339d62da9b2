"""Which topics a replica subscribes to and drops, as nodes become known. Pure."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aggregator.cluster.partition import Replica
from aggregator.cluster.subscriptions import NodeSubscriptions, session_client_id
from schemas import topics
from schemas.messages import ID_PATTERN

FLEET = [f"node-{i}" for i in range(12)]


def test_one_replica_keeps_the_wildcards_exactly_as_before() -> None:
    subs = NodeSubscriptions(Replica(0, 1))
    assert subs.learn(FLEET) == []
    plan = subs.plan()
    assert plan.keep == (
        (topics.READINGS_FILTER, 1),
        (topics.STATUS_FILTER, 1),
        (topics.ALERT_COMMANDS, 1),
    )
    assert plan.drop == ()


def test_a_replica_subscribes_to_its_nodes_and_drops_the_rest() -> None:
    replica = Replica(1, 3)
    subs = NodeSubscriptions(replica)
    new = subs.learn(FLEET)
    mine = sorted(n for n in FLEET if replica.owns(n))
    assert mine and len(mine) < len(FLEET)
    assert new == [topics.readings(n) for n in mine]
    plan = subs.plan()
    assert plan.keep == (
        (topics.STATUS_FILTER, 1),
        (topics.ALERT_COMMANDS, 1),
        *((topics.readings(n), 1) for n in mine),
    )
    # The wildcard an earlier one-replica session held, and every foreign node's topic.
    foreign = sorted(set(FLEET) - set(mine))
    assert plan.drop == (topics.READINGS_FILTER, *(topics.readings(n) for n in foreign))


def test_a_newly_seen_node_is_subscribed_once_and_only_by_its_owner() -> None:
    replicas = [NodeSubscriptions(Replica(i, 2)) for i in range(2)]
    for subs in replicas:
        subs.learn(FLEET)
    newcomer = next(f"new-{i}" for i in range(100) if Replica(1, 2).owns(f"new-{i}"))
    assert replicas[0].learn([newcomer]) == []
    assert replicas[1].learn([newcomer]) == [topics.readings(newcomer)]
    assert replicas[1].learn([newcomer]) == []  # a second status: nothing more to do
    assert (topics.readings(newcomer), 1) in replicas[1].plan().keep
    assert topics.readings(newcomer) in replicas[0].plan().drop


@given(
    nodes=st.lists(st.from_regex(ID_PATTERN, fullmatch=True), max_size=30),
    count=st.integers(min_value=2, max_value=6),
)
def test_the_replicas_together_subscribe_each_node_once(nodes: list[str], count: int) -> None:
    subscribed: list[str] = []
    for i in range(count):
        subs = NodeSubscriptions(Replica(i, count))
        subscribed.extend(subs.learn(nodes))
        kept = {t for t, _ in subs.plan().keep}
        assert not kept & set(subs.plan().drop)
    assert sorted(subscribed) == sorted(topics.readings(n) for n in set(nodes))


def test_session_ids_are_per_index_and_index_zero_keeps_the_plain_id() -> None:
    assert session_client_id("envnet-aggregator", Replica(0, 1)) == "envnet-aggregator"
    assert session_client_id("envnet-aggregator", Replica(0, 3)) == "envnet-aggregator"
    ids = {session_client_id("agg", Replica(i, 4)) for i in range(4)}
    assert len(ids) == 4
    assert session_client_id("agg", Replica(2, 3)) == session_client_id("agg", Replica(2, 5))


def test_the_topics_of_one_replica_are_bounded() -> None:
    subs = NodeSubscriptions(Replica(0, 2), limit=3)
    owned = [n for n in (f"flood-{i}" for i in range(200)) if Replica(0, 2).owns(n)]
    assert len(subs.learn(owned)) == 3
    assert subs.over_limit == len(owned) - 3
    assert len(subs.foreign) == 0 and len(subs.plan().keep) == 2 + 3
    subs.learn([f"flood-{i}" for i in range(200)])
    assert len(subs.foreign) == 3  # the UNSUBSCRIBE list is bounded too


def test_a_wildcard_replica_reads_the_wildcard_and_drops_every_per_node_topic() -> None:
    # [cluster] readings = "wildcard": a few filters whatever the fleet, and the per-node
    # topics an earlier per-node layout left in the session (owned ones too) are dropped, so
    # that no reading arrives twice through two matching filters.
    subs = NodeSubscriptions(Replica(1, 3), "wildcard")
    assert subs.learn(FLEET) == []
    assert subs.learn(["late-comer"]) == []
    plan = subs.plan()
    assert plan.keep == (
        (topics.READINGS_FILTER, 1),
        (topics.STATUS_FILTER, 1),
        (topics.ALERT_COMMANDS, 1),
    )
    assert plan.drop == tuple(topics.readings(n) for n in sorted([*FLEET, "late-comer"]))
    assert subs.subscribed == set()


def test_going_back_to_per_node_drops_the_wildcard() -> None:
    subs = NodeSubscriptions(Replica(0, 2), "per-node")
    subs.learn(FLEET)
    assert topics.READINGS_FILTER in subs.plan().drop


def test_the_wildcard_mode_changes_nothing_for_one_replica() -> None:
    solo = NodeSubscriptions(Replica(0, 1), "wildcard")
    assert solo.learn(FLEET) == []
    assert solo.plan() == NodeSubscriptions(Replica(0, 1)).plan()

"""The shipped broker ACL (deploy/mosquitto/envnet.acl) lets the aggregator tell a node why
it was refused, lets the node read only its own refusals, and lets no node forge one (issue 9,
item 10). Real mosquitto with the shipped TLS config and ACL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas import codec, topics
from schemas.messages import REFUSAL_SCHEMA, RefusalMessage
from tests.support.harness import wait_for
from tests.support.tls_broker import TlsBroker, tls_broker, tls_probe

USERS = {"node-x": "x-secret", "node-y": "y-secret", "envnet-aggregator": "agg-secret"}
AT_MS = 1_796_000_000_000


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[TlsBroker]:
    with tls_broker(tmp_path / "tls", USERS) as broker:
        yield broker


def refusal(node: str, detail: str) -> bytes:
    message = RefusalMessage(REFUSAL_SCHEMA, node, "unknown_node", detail, AT_MS, "readings")
    return codec.REFUSAL.encode(message)


def test_a_node_reads_its_own_refusals_only_and_cannot_forge_one(tls: TlsBroker) -> None:
    aggregator = tls_probe(tls, "envnet-aggregator", [])
    # node-x asks for both nodes' refusals; mosquitto grants the subscription but delivers
    # only what the ACL lets node-x read.
    x = tls_probe(tls, "node-x", [topics.refusal("node-y"), topics.refusal("node-x")])
    y = tls_probe(tls, "node-y", [topics.refusal("node-y")])
    try:
        # node-x forges one for node-y; once the broker has acknowledged it, it has routed
        # or dropped it, so had it passed, node-y would have it before the genuine one.
        forged = x.client.publish(topics.refusal("node-y"), refusal("node-y", "forged"), qos=1)
        forged.wait_for_publish(timeout=10)
        assert forged.is_published()
        for node in ("node-y", "node-x"):
            aggregator.client.publish(topics.refusal(node), refusal(node, "genuine"), qos=1)
        wait_for(lambda: bool(x.on(lambda t: "node-x" in t)), 10, "node-x's refusal")
        wait_for(lambda: bool(y.on(lambda t: True)), 10, "node-y's refusal")
        assert x.on(lambda t: "node-y" in t) == []
        assert [codec.REFUSAL.decode(p).detail for p in y.on(lambda t: True)] == ["genuine"]
    finally:
        for probe in (x, y, aggregator):
            probe.stop()

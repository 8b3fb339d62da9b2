"""Which refusals a node is told (issue 9, item 10), and the limits that stop a hostile node
from making the aggregator flood the broker. Pure parts;
tests/integration/e2e/test_refusal.py runs the real services."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aggregator.fleet import Fleet, NodeInfo
from aggregator.intake.checks import Intake, Refusal
from aggregator.intake.refusal_notices import MAX_REMEMBERED, RefusalNotices
from edge.journal import Journal, LastRefusal, read_status
from envnet.commands.edge_status import StatusReport, render
from schemas import codec
from schemas.messages import MAX_REFUSAL_DETAIL, RefusalMessage
from tests.unit.aggregator.intake.test_hostile_payloads import reading, readings_message

NOW = 1_796_000_000_000
FLEET = Fleet({"n1": NodeInfo(site="Site one")})


def told(notices: RefusalNotices, refusal: Refusal, now_ms: int = NOW) -> RefusalMessage:
    message = notices.notice(refusal, "readings", now_ms)
    assert isinstance(message, RefusalMessage), message
    return message


def test_a_refusal_naming_a_valid_node_is_told_with_its_reason_detail_and_seq() -> None:
    message = told(RefusalNotices(), Refusal("node_mismatch", "differs", "n1", 42))
    assert (message.node, message.reason, message.detail, message.seq) == (
        "n1",
        "node_mismatch",
        "differs",
        42,
    )
    assert message.at_ms == NOW and message.kind == "readings"
    assert codec.REFUSAL.decode(codec.REFUSAL.encode(message)) == message


def test_no_node_bad_topic_or_an_invalid_id_is_never_told() -> None:
    notices = RefusalNotices()
    assert notices.notice(Refusal("oversized", "big"), "readings", NOW) is None
    assert notices.notice(Refusal("bad_topic", "x", "n1"), "readings", NOW) is None
    assert notices.notice(Refusal("invalid", "x", "N 1"), "readings", NOW) is None


def test_the_detail_is_cut_to_the_contract_bound() -> None:
    message = told(RefusalNotices(), Refusal("invalid", "x" * 5000, "n1"))
    assert len(message.detail) == MAX_REFUSAL_DETAIL
    codec.REFUSAL.decode(codec.REFUSAL.encode(message))


def test_one_per_node_and_reason_per_interval() -> None:
    notices = RefusalNotices(per_node_interval_ms=10_000)
    told(notices, Refusal("invalid", "x", "n1"))
    assert notices.notice(Refusal("invalid", "x", "n1"), "readings", NOW + 9_999) == "suppressed"
    told(notices, Refusal("malformed", "x", "n1"), NOW + 1_000)  # another reason
    told(notices, Refusal("invalid", "x", "n2"), NOW + 1_000)  # another node
    told(notices, Refusal("invalid", "x", "n1"), NOW + 10_000)


def test_a_flood_of_made_up_node_ids_is_capped_per_second() -> None:
    notices = RefusalNotices(max_per_s=20)
    outcomes = [
        notices.notice(Refusal("unknown_node", "x", f"ghost-{i}"), "readings", NOW + i)
        for i in range(500)
    ]
    assert sum(isinstance(o, RefusalMessage) for o in outcomes) == 20
    told(notices, Refusal("unknown_node", "x", "ghost-next"), NOW + 1_000)


@pytest.mark.parametrize("step_ms", [0, 1, 10_000])
def test_memory_stays_bounded(step_ms: int) -> None:
    notices = RefusalNotices(max_per_s=10**9)
    for i in range(MAX_REMEMBERED + 100):
        refusal = Refusal("unknown_node", "x", f"g{i}")
        assert isinstance(notices.notice(refusal, "status", NOW + i * step_ms), RefusalMessage)
    assert len(notices._last) <= MAX_REMEMBERED


# -- intake: the node and seq a refusal can be told with --------------------------------------


def test_oversized_names_the_node_of_a_valid_topic_only() -> None:
    intake = Intake(FLEET, max_payload_bytes=10)
    big = b"x" * 11
    assert intake.readings("envnet/v1/nodes/n1/readings", big) == Refusal(
        "oversized", "11 bytes > limit 10", "n1"
    )
    refused = intake.readings("envnet/v1/nodes/N 1/readings", big)
    assert isinstance(refused, Refusal) and refused.node is None


def test_invalid_and_mismatched_batches_carry_their_seq() -> None:
    intake = Intake(FLEET, max_payload_bytes=64 * 1024)
    topic = "envnet/v1/nodes/n1/readings"
    mismatch = intake.readings(topic, readings_message([reading()], seq=9, node="n2"))
    assert isinstance(mismatch, Refusal) and (mismatch.reason, mismatch.seq) == (
        "node_mismatch",
        9,
    )
    body = json.loads(readings_message([reading()], seq=11))
    del body["node"]
    invalid = intake.readings(topic, json.dumps(body).encode())
    assert isinstance(invalid, Refusal) and (invalid.reason, invalid.seq) == ("invalid", 11)
    unknown = intake.readings("envnet/v1/nodes/ghost/readings", b"{}")
    assert isinstance(unknown, Refusal) and (unknown.reason, unknown.node) == (
        "unknown_node",
        "ghost",
    )


# -- the edge keeps the latest refusal in its journal, for `envnet edge status` ------------


def test_the_journal_keeps_the_latest_refusal_and_status_shows_it(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = Journal(path, 10**9, 10**9)
    assert read_status(path, NOW).last_refusal is None
    first = LastRefusal(reason="invalid", detail="bad", at_ms=NOW, kind="readings", seq=3)
    latest = LastRefusal(
        reason="unknown_node", detail="node 'g' is not in the fleet", at_ms=NOW + 1, kind="status"
    )
    journal.note_refusal(first)
    journal.note_refusal(latest)
    assert read_status(path, NOW).last_refusal == latest
    journal.close()
    status = read_status(path, NOW)
    assert status.last_refusal == latest
    text = render(StatusReport(node="g", journal=status, max_bytes=1, max_age_s=1), NOW)
    assert "refused    by the aggregator at" in text
    assert "(status): unknown_node: node 'g' is not in the fleet" in text

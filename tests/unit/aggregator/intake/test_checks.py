"""Intake refuses bad input with a stable reason, and never loses a good reading."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.fleet import Fleet, NodeInfo
from aggregator.intake.checks import (
    AcceptedBatch,
    AcceptedStatus,
    Intake,
    Refusal,
    _NodeTopics,
    _ValidIds,
)
from schemas import codec
from schemas.codec import ContractError

FLEET = Fleet({"n1": NodeInfo(site="Site one"), "n2": NodeInfo(site="Site two")})
TOPIC = "envnet/v1/nodes/n1/readings"


def good(**overrides: object) -> dict[str, object]:
    return {
        "ts": 1796000400000,
        "quantity": "o3",
        "value": 80.0,
        "unit": "ug/m3",
        "period_s": 60,
        "stat": "mean",
        "sensor": "s1",
        **overrides,
    }


def payload(
    readings: list[dict[str, object]], node: str = "n1", seq: int = 5, journal: str | None = None
) -> bytes:
    message = {"schema": "envnet.readings/1", "node": node, "seq": seq, "readings": readings}
    if journal is not None:
        message["journal"] = journal
    return json.dumps(message).encode()


def intake() -> Intake:
    return Intake(FLEET, max_payload_bytes=64 * 1024)


def test_accepts_a_good_batch() -> None:
    result = intake().readings(TOPIC, payload([good(), good(quantity="co", unit="mg/m3", value=1)]))
    assert isinstance(result, AcceptedBatch)
    assert result.seq == 5 and len(result.readings) == 2 and result.bad_readings == []
    assert result.info.node == "n1" and result.info.site == "Site one"


@pytest.mark.parametrize(
    ("topic", "body", "reason"),
    [
        (TOPIC, b"x" * (64 * 1024 + 1), "oversized"),
        ("envnet/v1/nodes/n1/readings/extra", payload([good()]), "bad_topic"),
        ("envnet/v2/nodes/n1/readings", payload([good()]), "bad_topic"),
        ("envnet/v1/nodes/N1!/readings", payload([good()]), "bad_topic"),
        ("envnet/v1/nodes/n1/status", payload([good()]), "bad_topic"),
        (TOPIC, b"{not json", "malformed"),
        (TOPIC, b"", "malformed"),
        (TOPIC, b'{"schema": "envnet.readings/1", "node": "n1"}', "invalid"),
        (TOPIC, payload([good()], seq=0), "invalid"),
        (TOPIC, payload([]), "invalid"),
        ("envnet/v1/nodes/ghost/readings", payload([good()], node="ghost"), "unknown_node"),
        (TOPIC, payload([good()], node="n2"), "node_mismatch"),
        (TOPIC, payload([good(unit="ppb")], node="n2"), "node_mismatch"),
        (TOPIC, payload([good()], node="n1 value=1"), "invalid"),
    ],
)
def test_refusals(topic: str, body: bytes, reason: str) -> None:
    result = intake().readings(topic, body)
    assert isinstance(result, Refusal), result
    assert result.reason == reason
    assert result.detail


def test_bad_readings_are_refused_alone_and_good_ones_kept() -> None:
    readings = [
        good(),
        good(unit="ppb"),
        good(quantity="rh", unit="%", value=140.0),
        good(sensor="s1,evil=1"),
        good(ts=1796000460000),
    ]
    result = intake().readings(TOPIC, payload(readings))
    assert isinstance(result, AcceptedBatch)
    assert [r.ts for r in result.readings] == [1796000400000, 1796000460000]
    assert [e.index for e in result.bad_readings] == [1, 2, 3]
    assert "ppb" in result.bad_readings[0].detail


def test_a_batch_of_only_bad_readings_is_still_accepted_so_it_can_be_acked() -> None:
    result = intake().readings(TOPIC, payload([good(unit="ppb")]))
    assert isinstance(result, AcceptedBatch)
    assert result.readings == [] and len(result.bad_readings) == 1


def test_status_and_will() -> None:
    body = json.dumps(
        {"schema": "envnet.status/1", "node": "n1", "state": "offline", "reason": "lost"}
    ).encode()
    result = intake().status("envnet/v1/nodes/n1/status", body)
    assert isinstance(result, AcceptedStatus) and result.status.state == "offline"
    refused = intake().status("envnet/v1/nodes/n1/status", b"{}")
    assert isinstance(refused, Refusal) and refused.reason == "invalid"


@given(st.binary(max_size=2000), st.sampled_from([TOPIC, "x", "envnet/v1/nodes/n1/status"]))
def test_arbitrary_bytes_never_raise(body: bytes, topic: str) -> None:
    result = intake().readings(topic, body)
    assert isinstance(result, Refusal | AcceptedBatch)


@given(st.text(max_size=200))
def test_arbitrary_topics_never_raise(topic: str) -> None:
    result = intake().readings(topic, payload([good()]))
    assert isinstance(result, Refusal | AcceptedBatch)


SENSOR_IDS = st.one_of(
    st.sampled_from(["s1", "pm", "gas-2", "a_b", "0"]),
    st.text(alphabet="az09_-AZ \n\\,=é", min_size=0, max_size=66),  # mostly not ids
)
# Good readings with at most one field spoiled, so that a bad sensor id is often the only fault.
SPOILED: dict[str, st.SearchStrategy[object]] = {
    "ts": st.sampled_from([946_684_799_999, 4_102_444_800_000]),
    "quantity": st.just("nope"),
    "value": st.sampled_from([-1.0, 1e9]),
    "unit": st.just("ppm"),
    "period_s": st.just(0),
    "stat": st.just("median"),
    "flags": st.just(["bogus"]),
    # Good and bad serials: checked once per distinct serial on the hot path.
    "serial": st.sampled_from(["SN-1", "Ab.9_x", "SN 1", "SN-1\n", "", "-SN"]),
}


@st.composite
def readings_maybe_spoiled(draw: st.DrawFn) -> dict[str, object]:
    quantity, unit, value = draw(
        st.sampled_from([("o3", "ug/m3", 80.0), ("co", "mg/m3", 1.2), ("laeq", "dB(A)", 61.0)])
    )
    reading = good(quantity=quantity, unit=unit, value=value, sensor=draw(SENSOR_IDS))
    if draw(st.booleans()):
        reading["flags"] = ["incomplete"]
    spoil = draw(st.sampled_from([None, *SPOILED]))
    if spoil is not None:
        reading[spoil] = draw(SPOILED[spoil])
    return reading


READINGS = readings_maybe_spoiled()


# The message's own ids: the node (checked against the topic's) and the journal (checked once
# per distinct id), each good or not.
NODES = st.sampled_from(["n1", "n1", "n2", "ghost", "N1", "n1\n", "n1 value=1", ""])
JOURNALS = st.one_of(
    st.none(),
    st.sampled_from(["5f0c2a9be41d7368", "5f0c2a9be41d7368" * 2, "5F0C2A9BE41D7368"]),
    st.text(alphabet="0af\n", max_size=34),  # mostly not journal ids
)


@given(
    st.lists(READINGS, min_size=1, max_size=4),
    st.integers(0, 100),
    NODES,
    JOURNALS,
)
def test_the_hot_path_accepts_exactly_what_the_contract_accepts(
    readings: list[dict[str, object]], repeat_first: int, node: str, journal: str | None
) -> None:
    """Intake decodes with a faster type that checks sensor and journal ids itself
    (aggregator.intake.checks _ValidIds), and the node against the topic's. Every message must
    fare exactly as under the contract's own type."""
    body = payload(readings, node=node, journal=journal)
    checker = intake()
    for _ in range(1 + repeat_first % 3):  # ids are cached after the first message
        result = checker.readings(TOPIC, body)
        try:
            message = codec.READINGS.decode(body)
        except ContractError:
            # Refused whole, or salvaged with each bad reading refused: never accepted clean.
            assert isinstance(result, Refusal) or result.bad_readings
            continue
        if message.node != "n1":
            assert isinstance(result, Refusal) and result.reason == "node_mismatch"
            continue
        assert isinstance(result, AcceptedBatch) and result.bad_readings == []
        assert result.journal == (message.journal or "")
        assert [msgspec.structs.asdict(r) for r in result.readings] == [
            msgspec.structs.asdict(r) for r in message.readings
        ]


def test_a_bad_journal_id_is_refused_as_invalid_after_a_good_one() -> None:
    checker = intake()
    good_journal = checker.readings(TOPIC, payload([good()], journal="5f0c2a9be41d7368"))
    assert isinstance(good_journal, AcceptedBatch) and good_journal.journal == "5f0c2a9be41d7368"
    for journal in ("5f0c2a9be41d7368\n", "5F0C2A9BE41D7368", "5f0c"):
        refused = checker.readings(TOPIC, payload([good()], journal=journal))
        assert isinstance(refused, Refusal) and refused.reason == "invalid", journal


def test_a_bad_serial_after_a_good_one_is_still_refused() -> None:
    checker = intake()
    accepted = checker.readings(TOPIC, payload([good(serial="SN-1")]))
    assert isinstance(accepted, AcceptedBatch) and accepted.readings[0].serial == "SN-1"
    for serial in ("SN 1", "SN-1\n", "-SN", ""):
        result = checker.readings(TOPIC, payload([good(serial="SN-1"), good(serial=serial)]))
        assert isinstance(result, AcceptedBatch), serial
        assert len(result.readings) == 1 and [e.index for e in result.bad_readings] == [1]


def test_a_node_other_than_the_topics_is_refused_even_when_the_topic_was_seen() -> None:
    checker = intake()
    assert isinstance(checker.readings(TOPIC, payload([good()])), AcceptedBatch)
    for node, reason in (("n2", "node_mismatch"), ("n1\n", "invalid"), ("N1", "invalid")):
        refused = checker.readings(TOPIC, payload([good()], node=node))
        assert isinstance(refused, Refusal) and refused.reason == reason, node


def test_a_bad_sensor_id_after_good_ones_is_still_refused() -> None:
    checker = intake()
    assert isinstance(checker.readings(TOPIC, payload([good(sensor="s1")])), AcceptedBatch)
    result = checker.readings(TOPIC, payload([good(sensor="s1"), good(sensor="S1,x=1")]))
    assert isinstance(result, AcceptedBatch)
    assert len(result.readings) == 1 and [e.index for e in result.bad_readings] == [1]


def test_the_cache_of_checked_sensor_ids_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A node sending ever new (valid) sensor ids must not grow intake's memory without end."""
    monkeypatch.setattr(_ValidIds, "MAX_IDS", 3)
    checker = intake()
    for i in range(10):
        result = checker.readings(TOPIC, payload([good(sensor=f"s{i}")], seq=i + 1))
        assert isinstance(result, AcceptedBatch) and result.bad_readings == []
        assert len(checker._sensor_ids.known) <= 3
        journal = checker.readings(TOPIC, payload([good()], seq=i + 1, journal=f"{i:016x}"))
        assert isinstance(journal, AcceptedBatch) and journal.journal == f"{i:016x}"
        assert len(checker._journal_ids.known) <= 3
    bad = checker.readings(TOPIC, payload([good(sensor="Bad")], seq=11))
    assert isinstance(bad, AcceptedBatch) and len(bad.bad_readings) == 1


def test_remembered_topics_are_bounded_and_judged_as_the_first_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Parsed node topics are remembered; a stream of ever new topics must not grow intake's
    memory, and a topic refused once is refused again the same way."""
    monkeypatch.setattr(_NodeTopics, "MAX_TOPICS", 3)
    checker = intake()
    for i in range(10):
        refused = checker.readings(f"envnet/v1/nodes/other-{i}/readings", payload([good()]))
        assert isinstance(refused, Refusal) and refused.reason == "unknown_node"
        assert len(checker._topics._parsed) <= 3
    for _ in range(2):
        assert isinstance(checker.readings(TOPIC, payload([good()])), AcceptedBatch)
        bad = checker.readings("envnet/v1/nodes/Bad Id/readings", payload([good()]))
        assert isinstance(bad, Refusal) and bad.reason == "bad_topic"

"""The agent names its journal in every batch and takes only acks for its own journal: a real
edge agent on a real mosquitto."""

from __future__ import annotations

from pathlib import Path

from schemas import codec, topics
from schemas.messages import ACK_SCHEMA, AckMessage, ReadingsMessage
from simulators.local_stack import Mosquitto
from tests.support.edge_harness import node_config, running_agent
from tests.support.harness import MqttProbe, publisher, wait_for
from tests.unit.edge.test_journal import BASE
from tests.unit.edge.test_journal_id import open_at


def test_the_agent_names_its_journal_and_ignores_acks_for_another(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Real agent, real broker, no aggregator: the test plays the aggregator's acks."""
    config = node_config("edge-1", mosquitto.url, tmp_path, ack_timeout_s=1.0)
    probe = MqttProbe(mosquitto.port, [topics.readings("edge-1")]).start()
    acker = publisher(mosquitto.port)

    def ack(journal: str, seqs: list[int]) -> None:
        message = AckMessage(ACK_SCHEMA, "edge-1", seqs, journal)
        acker.publish(topics.ack("edge-1"), codec.ACK.encode(message), qos=1).wait_for_publish(10)

    def sent() -> list[ReadingsMessage]:
        return [codec.READINGS.decode(p) for p in probe.on(lambda t: True)]

    try:
        with running_agent(config, BASE) as run:
            # Two batches, not one and its resend (the ack timeout is 1 s).
            wait_for(lambda: len({m.seq for m in sent()}) >= 2, 30, "two published batches")
            journals = {m.journal for m in sent()}
            first = sent()[0]
            second = next(m for m in sent() if m.seq != first.seq)
            (own,) = journals
            assert own is not None
            foreign = "0" * 16 if own != "0" * 16 else "1" * 16
            ack(foreign, [first.seq, second.seq])
            wait_for(lambda: run.agent.foreign_acks == 1, 20, "the foreign ack")
            ack(own, [second.seq])
            ack(foreign, [first.seq])  # delivered in order: once counted, the own ack is in
            wait_for(lambda: run.agent.foreign_acks == 2, 20, "the second foreign ack")
        produced = run.producer.count()
    finally:
        probe.stop()
        acker.loop_stop()
        acker.disconnect()
    journal = open_at(tmp_path / "edge-1.sqlite")
    assert journal.journal_id == own
    # Only the batch acked under its own journal is gone; the first is still journaled.
    assert journal.depth() == produced - len(second.readings)

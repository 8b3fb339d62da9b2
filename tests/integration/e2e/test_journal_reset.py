"""Issue 9, item 2: an ack means stored, also when a node's journal starts its seqs again.

Two consecutive days replayed as one node, the second from a fresh journal (as after a
replaced SD card), through real mosquitto, the real aggregator and influxd: every reading of
both days must be stored, and the replays' success (every batch acked) must mean exactly
that. One variant replays the real Beijing data when ../shared/data has it; the other a
small file in the same PRSA format that the test writes itself, so that it runs everywhere.
And on the aggregator alone: acks name the batches' journal, and a seq that a node without
journal ids sends again with other readings is stored, not acked as a duplicate."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import msgspec
import pytest

from aggregator.fleet import Fleet, NodeInfo
from schemas import codec, topics
from schemas.messages import READINGS_SCHEMA, Reading, ReadingsMessage
from simulators.local_stack import Influxd, Mosquitto
from tests.support.harness import (
    MqttProbe,
    aggregator_config,
    count,
    publisher,
    running_aggregator,
    wait_for,
)
from tests.support.prsa import write_prsa

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
CSV = DATA / "PRSA_Data_Aotizhongxin_20130301-20170228.csv"
NODE = "bj-aoti"
FLEET = Fleet({NODE: NodeInfo(site="Beijing Aotizhongxin", air_zone=2)})
# The PRSA columns that become one quantity each; rh comes from TEMP and DEWP together.
DIRECT = ("PM2.5", "PM10", "SO2", "NO2", "CO", "O3", "TEMP", "PRES")


def expected_readings(path: Path, first: date, last: date) -> int:
    """Rows × quantities − NA values, counted from the file independently of the replay."""
    total = 0
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            day = date(int(row["year"]), int(row["month"]), int(row["day"]))
            if first <= day <= last:
                total += sum(row[c] != "NA" for c in DIRECT)
                total += row["TEMP"] != "NA" and row["DEWP"] != "NA"
    return total


def replay(path: Path, day: date, journal: Path, mosquitto: Mosquitto) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "envnet.cli",
            "sim",
            "replay-csv",
            str(path),
            "--node",
            NODE,
            "--from",
            day.isoformat(),
            "--to",
            day.isoformat(),
            "--speed",
            "720000",
            "--journal",
            str(journal),
        ],
        env={**os.environ, "ENVNET_MQTT_URL": mosquitto.url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def replay_two_days_from_two_journals(
    path: Path, first: date, mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    second = first + timedelta(days=1)
    config = aggregator_config(mosquitto, influxd.url, tmp_path)
    with running_aggregator(config, FLEET):
        replay(path, first, tmp_path / "sd-card-1.sqlite", mosquitto)
        replay(path, second, tmp_path / "sd-card-2.sqlite", mosquitto)
        # Both replays ended with every batch acked: so every reading is stored, now.
        stored = count(influxd, f"SELECT count(value) FROM readings WHERE node='{NODE}'")
    assert stored == expected_readings(path, first, second)


@pytest.mark.skipif(not CSV.exists(), reason=f"shared data not found at {CSV}")
def test_a_fresh_journal_s_batches_are_stored_real_data(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    # 2013-03-08 and -09 have NA values (4 and 1): 427 readings of 432.
    first = date(2013, 3, 8)
    assert expected_readings(CSV, first, first + timedelta(days=1)) == 427
    replay_two_days_from_two_journals(CSV, first, mosquitto, influxd, tmp_path)


def test_a_fresh_journal_s_batches_are_stored_written_data(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    path = tmp_path / "PRSA_Data_Test_20130308-20130309.csv"
    first = date(2013, 3, 8)
    write_prsa(path, first, days=2)
    expected = expected_readings(path, first, first + timedelta(days=1))
    assert expected == 48 * 9 - 5 - 3  # 5 NA values, and 3 NA dew points (no rh)
    replay_two_days_from_two_journals(path, first, mosquitto, influxd, tmp_path)


# -- the aggregator alone -----------------------------------------------------------------------

OLD_CARD, NEW_CARD = "5f0c2a9be41d7368", "0a1b2c3d4e5f6071"
T0 = 1_796_000_400_000


def message(seq: int, start_ms: int, journal: str | None, **more: object) -> bytes:
    readings = [
        Reading(start_ms + i * 60_000, "pm2_5", 20.0 + i, "ug/m3", 60, "mean", "pm")
        for i in range(3)
    ]
    body = ReadingsMessage(READINGS_SCHEMA, NODE, seq, readings, journal=journal)
    return codec.READINGS.encode(msgspec.structs.replace(body, **more))


def test_acks_name_the_journal_and_a_reused_seq_with_other_readings_is_stored(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    config = aggregator_config(mosquitto, influxd.url, tmp_path)
    probe = MqttProbe(mosquitto.port, [topics.ack(NODE)]).start()
    client = publisher(mosquitto.port)

    def send(payload: bytes, acks: int) -> None:
        client.publish(topics.readings(NODE), payload, qos=1).wait_for_publish(10)
        wait_for(lambda: len(acked()) >= acks, 30, f"{acks} acks")

    def acked() -> list[tuple[str | None, int]]:
        decoded = [codec.ACK.decode(p) for p in probe.on(lambda t: True)]
        return [(a.journal, seq) for a in decoded for seq in a.seqs]

    def stored() -> int:
        return count(influxd, f"SELECT count(value) FROM readings WHERE node='{NODE}'")

    try:
        with running_aggregator(config, FLEET) as agg:
            send(message(1, T0, OLD_CARD), acks=1)
            send(message(1, T0 + 3_600_000, NEW_CARD), acks=2)  # the new card's seq 1
            assert acked() == [(OLD_CARD, 1), (NEW_CARD, 1)]
            assert stored() == 6
            # A node without journal ids reuses seq 7 with other readings, then resends them.
            send(message(7, T0 + 7_200_000, None), acks=3)
            send(message(7, T0 + 10_800_000, None), acks=4)
            assert stored() == 12
            assert agg.metric("envnet_batches_seq_conflict_total") == 1
            copy = message(7, T0 + 10_800_000, None, sent_ms=T0 + 11_000_000, backlog=True)
            send(copy, acks=5)
            assert agg.metric("envnet_duplicate_batches_total") == 1
            assert agg.metric("envnet_batches_seq_conflict_total") == 1
            assert acked()[2:] == [(None, 7)] * 3
    finally:
        probe.stop()
        client.loop_stop()
        client.disconnect()
    assert stored() == 12

"""Derived data outlives raw readings (issue 11, storage bootstrap), on a real influxd.

On a fresh influxd the aggregator creates the database with its default retention policy for
the readings (400 days) and a second policy for derived measurements (windows, aqi,
water_quality, alerts; 10 years here), and writes each kind into its own policy. Creating
both is idempotent and never changes an existing policy. A policy dropped while the aggregator
runs is created again by the next write that meets its absence, and nothing is lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import aiohttp
import msgspec
import paho.mqtt.client as mqtt
import pytest

from aggregator.fleet import Fleet, NodeInfo
from aggregator.startup import StartupError
from aggregator.storage.influx import InfluxTarget
from aggregator.storage.setup import ensure_database
from schemas import codec, topics
from schemas.messages import READINGS_SCHEMA, Reading, ReadingsMessage
from schemas.quantities import SPECS
from simulators.local_stack import Influxd, Mosquitto, influx_query
from tests.support.harness import MqttProbe, aggregator_config, count, publisher, running_aggregator
from tests.support.harness import wait_for as wait

MIN_MS: Final = 60_000
WAIT_S: Final = 60.0
NODE: Final = "plant-fence"
FLEET: Final = Fleet({NODE: NodeInfo(site="Plant fence", odour_grade="II-new")})


@pytest.fixture
def bare_influxd(tmp_path: Path) -> Iterator[Influxd]:
    """A real influxd with no database at all, as after a fresh install."""
    with Influxd(tmp_path / "bare-influxd") as server:
        yield server


def policies(server: Influxd, database: str = "envnet") -> dict[str, tuple[str, bool]]:
    """name -> (duration, default)."""
    answer = influx_query(server.url, f'SHOW RETENTION POLICIES ON "{database}"')
    rows = answer["results"][0]["series"][0]["values"]  # type: ignore[index]
    return {row[0]: (row[1], row[4]) for row in rows}


def send(client: mqtt.Client, seq: int, t0: int, values: list[float]) -> None:
    readings = [
        Reading(
            ts=t0 + i * 5 * MIN_MS,
            quantity="h2s",
            value=v,
            unit=SPECS["h2s"].unit,
            period_s=300,
            stat="mean",
            sensor="gas",
        )
        for i, v in enumerate(values)
    ]
    message = ReadingsMessage(READINGS_SCHEMA, NODE, seq, readings)
    client.publish(topics.readings(NODE), codec.READINGS.encode(message), qos=1).wait_for_publish(
        timeout=10
    )


def acked(probe: MqttProbe) -> set[int]:
    return {s for p in probe.on(lambda t: t == topics.ack(NODE)) for s in codec.ACK.decode(p).seqs}


def test_readings_and_derived_data_land_in_their_own_retention_policies(
    mosquitto: Mosquitto, bare_influxd: Influxd, tmp_path: Path
) -> None:
    config = aggregator_config(
        mosquitto,
        bare_influxd.url,
        tmp_path,
        create_duration="400d",
        derived_retention_policy="derived",
        derived_duration="3650d",
    )
    t0 = (int(time.time() * 1000) // 3_600_000) * 3_600_000
    probe = MqttProbe(mosquitto.port, [topics.ack(NODE)]).start()
    client = publisher(mosquitto.port)
    try:
        with running_aggregator(config, FLEET):
            assert policies(bare_influxd) == {
                "autogen": ("9600h0m0s", True),  # raw readings: 400 days, the default
                "derived": ("87600h0m0s", False),  # derived data: 10 years
            }
            # 13 five-minute readings: one hour closes; H2S 100 > 60 µg/m³ fires an alert.
            send(client, 1, t0, [100.0, *([20.0] * 12)])
            wait(lambda: acked(probe) == {1}, WAIT_S, "the first batch's ack")

            def derived(measurement: str) -> int:
                q = f'SELECT count(*) FROM "derived"."{measurement}" WHERE node = \'{NODE}\''
                return count(bare_influxd, q.replace("count(*)", "count(value)"))

            wait(lambda: derived("alerts") >= 1, WAIT_S, "the alert in the derived policy")
            wait(lambda: derived("windows") >= 1, WAIT_S, "a window in the derived policy")
            # Dropped while running (an operator's mistake): created again, nothing lost.
            influx_query(bare_influxd.url, 'DROP RETENTION POLICY "derived" ON "envnet"')
            send(client, 2, t0 + 13 * 5 * MIN_MS, [100.0, *([20.0] * 12)])
            wait(lambda: acked(probe) == {1, 2}, WAIT_S, "the second batch's ack")
            wait(lambda: derived("alerts") >= 1, WAIT_S, "the alert after the policy's return")
            assert policies(bare_influxd)["derived"] == ("87600h0m0s", False)
        assert count(bare_influxd, "SELECT count(value) FROM readings") == 26
        assert count(bare_influxd, 'SELECT count(value) FROM "derived"."readings"') == 0
        assert count(bare_influxd, "SELECT count(value) FROM alerts") == 0
        assert count(bare_influxd, "SELECT count(value) FROM windows") == 0
    finally:
        client.loop_stop()
        probe.stop()


def test_creating_the_policies_is_idempotent_and_never_changes_existing_ones(
    bare_influxd: Influxd,
) -> None:
    target = InfluxTarget(
        url=bare_influxd.url,
        api="v1",
        database="envnet",
        create_duration="400d",
        derived_retention_policy="long term",
        derived_duration="520w",
    )
    shorter = msgspec.structs.replace(target, derived_duration="30d")

    async def run() -> list[bool]:
        async with aiohttp.ClientSession() as session:
            return [await ensure_database(session, t) for t in (target, target, shorter)]

    assert asyncio.run(run()) == [True, False, False]
    assert policies(bare_influxd) == {
        "autogen": ("9600h0m0s", True),
        "long term": ("87360h0m0s", False),
    }


def test_a_policy_influxd_refuses_stops_the_start_saying_how_to_fix_it(
    bare_influxd: Influxd,
) -> None:
    # InfluxDB 1.x refuses a retention policy shorter than one hour.
    target = InfluxTarget(
        url=bare_influxd.url,
        api="v1",
        database="envnet",
        derived_retention_policy="brief",
        derived_duration="30m",
    )

    async def run() -> bool:
        async with aiohttp.ClientSession() as session:
            return await ensure_database(session, target)

    with pytest.raises(StartupError) as refused:
        asyncio.run(run())
    message = str(refused.value)
    assert message.startswith("InfluxDB retention policy 'brief' on 'envnet' does not exist at ")
    assert "could not be created: retention policy duration must be at least" in message
    assert 'CREATE RETENTION POLICY "brief" ON "envnet" DURATION 30m' in message
    assert message.endswith("or fix [influx] derived_retention_policy")

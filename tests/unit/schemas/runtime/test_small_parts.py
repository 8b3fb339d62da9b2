"""Backoff, token bucket, sequence tracking, and logs: redaction, timestamps, the stream."""

from __future__ import annotations

import io
import json
import logging
import random
import sys
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.ratelimit import TokenBucket
from schemas.runtime.backoff import Backoff
from schemas.runtime.logs import LogFormat, configure_logging, get_logger, redact_url


@given(st.floats(0.01, 5), st.floats(5, 120), st.integers(0, 2**32))
def test_backoff_stays_within_its_cap(initial: float, cap: float, seed: int) -> None:
    backoff = Backoff(initial, cap, rng=random.Random(seed))
    delays = [backoff.next_delay() for _ in range(100)]
    assert all(0 <= d <= cap for d in delays)
    backoff.reset()
    assert backoff.next_delay() <= initial


def test_backoff_ceiling_grows_then_caps() -> None:
    backoff = Backoff(1.0, 8.0, jitter=0.0)
    assert [backoff.next_delay() for _ in range(6)] == [1, 2, 4, 8, 8, 8]


def test_full_jitter_spreads_a_fleet() -> None:
    delays = {round(Backoff(1.0, 60.0, rng=random.Random(s)).next_delay(), 3) for s in range(50)}
    assert len(delays) > 40


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="initial_s <= cap_s"):
        Backoff(10.0, 1.0)


def test_token_bucket_paces_to_the_rate() -> None:
    bucket = TokenBucket(rate_per_s=100.0, burst=100.0)
    assert bucket.try_take(100, 0)
    assert not bucket.try_take(1, 0)
    assert bucket.ms_until(50, 0) == 501
    assert bucket.try_take(50, 500)


@given(st.lists(st.tuples(st.integers(1, 300), st.integers(0, 1000)), max_size=200))
def test_token_bucket_never_exceeds_rate_plus_burst(takes: list[tuple[int, int]]) -> None:
    bucket = TokenBucket(rate_per_s=200.0, burst=100.0)
    now, taken = 0, 0
    for amount, step_ms in takes:
        now += step_ms
        if bucket.try_take(amount, now):
            taken += amount
    # Each take may overdraw by at most one oversized amount (300 here).
    assert taken <= 100 + 200.0 * now / 1000 + 300


def test_urls_and_secret_fields_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    assert redact_url("mqtt://user:hunter2@h:1883") == "mqtt://***@h:1883"
    assert redact_url("http://h:8086") == "http://h:8086"
    configure_logging("debug", "json")
    logging.getLogger().addHandler(caplog.handler)
    get_logger("t").info("connect", token="hunter2", password="hunter2", host="h")
    text = caplog.records[-1].__dict__["envnet_fields"]
    assert text == {"token": "***", "password": "***", "host": "h"}


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_log_timestamps_are_iso_8601_utc_with_the_offset(
    fmt: LogFormat, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging("info", fmt)
    # 2026-12-03T21:06:41.123Z; the record's creation time is the only clock read.
    monkeypatch.setattr(time, "time_ns", lambda: 1_796_332_001_123_456_789)  # Python >= 3.13
    monkeypatch.setattr(time, "time", lambda: 1_796_332_001.123456)  # before
    get_logger("t").info("tick")
    line = stream.getvalue().strip()
    ts = json.loads(line)["ts"] if fmt == "json" else line.split()[0].removeprefix("ts=")
    assert ts == "2026-12-03T21:06:41.123Z"
    assert datetime.fromisoformat(ts) == datetime(2026, 12, 3, 21, 6, 41, 123000, tzinfo=UTC)


def test_logs_go_to_the_stderr_of_the_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest swaps stderr around each test and closes the old one: a handler that kept the
    stream of configuration time failed on every later record ('I/O operation on closed
    file'), e.g. in the teardown of the next test that started a service."""
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("info", "logfmt")
    get_logger("t").info("one")
    assert "event=one" in first.getvalue()
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    get_logger("t").info("two")
    assert "Logging error" not in second.getvalue()
    assert "event=two" in second.getvalue()

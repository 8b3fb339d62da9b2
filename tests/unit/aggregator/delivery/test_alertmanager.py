"""The Alertmanager payload (aggregator.delivery.alertmanager_payload), the sink's bookkeeping,
the [alertmanager] config and the example deploy/alertmanager/alertmanager.yml (amtool)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Final

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.config import load_aggregator_config
from aggregator.delivery import AlertmanagerSettings, AlertmanagerSink, postable
from aggregator.delivery.alertmanager_payload import body, family
from aggregator.engine.lifecycle import Transition
from aggregator.fleet import NodeInfo
from schemas.messages import ALERT_SCHEMA, Alert
from schemas.runtime.configfile import ConfigError

ROOT: Final = Path(__file__).resolve().parents[4]
NOW: Final = 1_800_000_000_000
LEASE: Final = 240_000
INFO: Final = NodeInfo(site="Plant east", odour_grade="II-new", group="Wujiang", node="wwtp-1")


def h2s(**changes: object) -> Alert:
    alert = Alert(
        ALERT_SCHEMA, "wwtp-1", "odour.h2s", "exceedance", "firing", "warning", "GB 14554-93",
        "Table 1", 300, 100.0, 60.0, NOW - 600_000, NOW - 600_000,
        "H2S 100 ug/m3 over the GB 14554-93 limit 60", quantity="h2s", unit="ug/m3",
        site="Plant east", window_start_ms=NOW - 900_000,
    )  # fmt: skip
    return msgspec.structs.replace(alert, **changes)


def test_a_firing_alert_has_the_labels_annotations_and_a_lease() -> None:
    sent = postable(h2s(), INFO, NOW, LEASE)
    assert sent.labels == {
        "alertname": "odour.h2s",
        "node": "wwtp-1",
        "family": "odour",
        "severity": "warning",
        "zone": "odour-II-new",
        "quantity": "h2s",
        "group": "Wujiang",
        "lane": "live",
    }
    assert sent.annotations == {
        "summary": "H2S 100 ug/m3 over the GB 14554-93 limit 60",
        "value": "100 ug/m3",
        "limit": "60 ug/m3",
        "window_start": "2027-01-15T07:45:00.000Z",
        "window_end": "2027-01-15T07:50:00.000Z",
        "standard": "GB 14554-93 Table 1",
        "suspect": "false",
        "site": "Plant east",
    }
    assert (sent.startsAt, sent.endsAt) == ("2027-01-15T07:50:00.000Z", "2027-01-15T08:04:00.000Z")


def test_a_resolved_alert_ends_at_its_resolution_and_never_in_the_future() -> None:
    resolved = h2s(state="resolved", updated_ms=NOW - 60_000)
    assert postable(resolved, INFO, NOW, LEASE).endsAt == "2027-01-15T07:59:00.000Z"
    # Event time ahead of the wall clock (an accelerated simulation): resolved now.
    ahead = h2s(state="resolved", since_ms=NOW + 3_600_000, updated_ms=NOW + 7_200_000)
    sent = postable(ahead, INFO, NOW, LEASE)
    assert sent.endsAt == sent.startsAt == "2027-01-15T08:00:00.000Z"


def test_late_suspect_and_unknown_nodes() -> None:
    sent = postable(h2s(late=True, suspect=True), None, NOW, LEASE)
    assert sent.labels["lane"] == "late" and sent.annotations["suspect"] == "true"
    assert "zone" not in sent.labels and "group" not in sent.labels


@pytest.mark.parametrize(
    ("rule", "kind", "expected"),
    [
        ("air.pm2_5.24h", "exceedance", "air"),
        ("aqi.hour", "aqi", "air"),
        ("liveness.node", "liveness", "liveness"),
        ("health.flatline.pms", "health", "health"),
        ("bloom.chl_a.alert1", "exceedance", "bloom"),
    ],
)
def test_families(rule: str, kind: str, expected: str) -> None:
    assert family(h2s(rule=rule, kind=kind)) == expected


@given(
    since=st.integers(0, 4_000_000_000_000),
    updated=st.integers(0, 4_000_000_000_000),
    now=st.integers(1, 4_000_000_000_000),
    resolved=st.booleans(),
)
def test_starts_never_after_ends_and_firing_ends_in_the_future(
    since: int, updated: int, now: int, resolved: bool
) -> None:
    alert = h2s(since_ms=since, updated_ms=updated, state="resolved" if resolved else "firing")
    sent = postable(alert, INFO, now, LEASE)
    # Alertmanager refuses startsAt after endsAt (HTTP 400); ISO strings in one format sort.
    assert sent.startsAt <= sent.endsAt
    assert json.loads(body([sent]))[0]["labels"]["alertname"] == "odour.h2s"


def sink(clock: list[int]) -> AlertmanagerSink:
    settings = AlertmanagerSettings(("http://am",), resend_s=60, lease_factor=4, max_alerts=2)
    return AlertmanagerSink(settings, lambda _: INFO, clock_ms=lambda: clock[0])


def test_seed_keeps_firing_and_recently_resolved_alerts() -> None:
    async def run() -> None:
        clock = [NOW]
        s = sink(clock)
        s.seed(
            [
                h2s(),
                h2s(rule="odour.nh3", state="resolved", updated_ms=NOW - 60_000),
                h2s(rule="odour.ch4s", state="resolved", updated_ms=NOW - 3_600_000),
            ]
        )
        assert s.held == 2
        clock[0] += 10 * 60_000  # one lease later the resolved one is forgotten
        s._expire(clock[0])
        assert s.held == 1

    asyncio.run(run())


def test_a_full_sink_drops_resolved_alerts_first() -> None:
    async def run() -> None:
        clock = [NOW]
        s = sink(clock)
        s.offer(Transition("fired", h2s(), NOW))
        s.offer(Transition("resolved", h2s(rule="odour.nh3", state="resolved"), NOW))
        s.offer(Transition("fired", h2s(rule="odour.ch4s"), NOW))
        assert s.held == 2
        assert {k[1] for k in s._alerts} == {"odour.h2s", "odour.ch4s"}

    asyncio.run(run())


def test_config_from_file_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "agg.toml"
    path.write_text('[alertmanager]\nurls = ["http://am1:9093"]\nresend_s = 30\n')
    assert load_aggregator_config(path, {}).alertmanager.urls == ("http://am1:9093",)
    env = {"ENVNET_ALERTMANAGER_URL": "http://am1:9093, http://am2:9093"}
    settings = load_aggregator_config(path, env).alertmanager
    assert settings.urls == ("http://am1:9093", "http://am2:9093")
    assert settings.lease_ms == 120_000
    assert load_aggregator_config(None, {}).alertmanager.urls == ()
    with pytest.raises(ConfigError, match=r"alertmanager\.urls"):
        load_aggregator_config(None, {"ENVNET_ALERTMANAGER_URL": "am1:9093"})


def test_the_example_config_passes_amtool_check_config() -> None:
    amtool = shutil.which("amtool")
    assert amtool, "amtool missing: install prometheus-alertmanager (make os-packages)"
    config = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
    result = subprocess.run(
        [amtool, "check-config", str(config)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 inhibit rules" in result.stdout and "1 templates" in result.stdout


def test_the_ui_unpacker_reads_vfsgen_literals(tmp_path: Path) -> None:
    import gzip

    from simulators.alertmanager_ui import UiError, ui_files, unpack_ui

    def literal(data: bytes) -> str:
        return "".join(f"\\x{b:02x}" for b in data)

    source = (
        '"/static/index.html": &vfsgen\u06f0CompressedFileInfo{\n name: "index.html",\n'
        f' compressedContent: []byte("{literal(gzip.compress(b"<html>am</html>"))}"),\n}},\n'
        '"/static/script.js": &vfsgen\u06f0FileInfo{\n name: "script.js",\n'
        ' content: []byte("var a = \\"x\\";\\n"),\n},\n'
    )
    assert ui_files(source) == {"index.html": b"<html>am</html>", "script.js": b'var a = "x";\n'}
    with pytest.raises(UiError):
        ui_files("")
    with pytest.raises(UiError, match="golang-github-prometheus-alertmanager-dev"):
        unpack_ui(tmp_path / "ui", tmp_path / "missing.go")


def test_delivery_states_from_alertmanagers_answer() -> None:
    from envnet.commands.alerts import delivery_states

    answer: list[dict[str, object]] = [
        {"labels": {"node": "a", "alertname": "odour.h2s", "lane": "live"},
         "status": {"state": "suppressed", "silencedBy": ["s1"], "inhibitedBy": []}},
        {"labels": {"node": "b", "alertname": "odour.h2s", "lane": "live"},
         "status": {"state": "suppressed", "silencedBy": [], "inhibitedBy": ["f1"]}},
        {"labels": {"node": "c", "alertname": "odour.h2s", "lane": "late"},
         "status": {"state": "active", "silencedBy": [], "inhibitedBy": []}},
        {"labels": "not a table"},
    ]  # fmt: skip
    assert delivery_states(answer) == {
        ("a", "odour.h2s", "live"): "silenced by s1",
        ("b", "odour.h2s", "live"): "inhibited by f1",
        ("c", "odour.h2s", "late"): "active",
    }


def test_the_sink_sends_to_every_url_retries_5xx_and_counts_a_400_as_rejected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Against real local HTTP servers (aiohttp): one answers 503 twice then 200, one 400."""
    from aiohttp import web

    async def run() -> None:
        seen: dict[str, list[list[dict[str, object]]]] = {"flaky": [], "refusing": []}

        async def flaky(request: web.Request) -> web.Response:
            seen["flaky"].append(await request.json())
            return web.Response(status=503 if len(seen["flaky"]) <= 2 else 200)

        async def refusing(request: web.Request) -> web.Response:
            seen["refusing"].append(await request.json())
            return web.Response(status=400, text="start time must be before end time")

        urls = []
        runners = []
        for handler in (flaky, refusing):
            app = web.Application()
            app.router.add_post("/api/v2/alerts", handler)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            runners.append(runner)
            urls.append(f"http://user:secret@127.0.0.1:{runner.addresses[0][1]}")
        outcomes: list[str] = []
        settings = AlertmanagerSettings(
            tuple(urls), max_attempts=5, retry_initial_s=0.01, retry_cap_s=0.02
        )
        s = AlertmanagerSink(settings, lambda _: INFO, outcomes.append, clock_ms=lambda: NOW)
        import aiohttp

        async with aiohttp.ClientSession() as session:
            await s.send(session, [h2s()])
        for runner in runners:
            await runner.cleanup()
        assert sorted(outcomes) == ["delivered", "rejected"]
        assert len(seen["flaky"]) == 3 and len(seen["refusing"]) == 1
        assert seen["flaky"][-1][0]["labels"]["alertname"] == "odour.h2s"  # type: ignore[index]

    asyncio.run(run())
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "alertmanager_rejected" in logged and "alertmanager_retry" in logged
    assert "secret" not in logged  # URLs are logged without their userinfo


def test_the_sink_gives_up_after_max_attempts_on_a_closed_port() -> None:
    from simulators.local_stack import free_port

    async def run() -> None:
        import aiohttp

        outcomes: list[str] = []
        settings = AlertmanagerSettings(
            (f"http://127.0.0.1:{free_port()}",), max_attempts=3, retry_initial_s=0.01,
            retry_cap_s=0.02, timeout_s=2,
        )  # fmt: skip
        s = AlertmanagerSink(settings, lambda _: INFO, outcomes.append, clock_ms=lambda: NOW)
        async with aiohttp.ClientSession() as session:
            await s.send(session, [h2s()])
        assert outcomes == ["gave_up"]
        assert s.held == 0  # send() is the shell; what is held is offer()'s and seed()'s

    asyncio.run(run())


def test_drain_waits_for_every_change_to_be_sent_and_is_bounded() -> None:
    """Against a real local HTTP server that holds each POST until the test lets it go."""
    from aiohttp import web

    async def run() -> tuple[int, int, list[str]]:
        posted: list[list[str]] = []
        entered, release = asyncio.Event(), asyncio.Event()

        async def handler(request: web.Request) -> web.Response:
            entered.set()
            await release.wait()
            posted.append([a["labels"]["alertname"] for a in await request.json()])
            return web.Response(status=200)

        app = web.Application()
        app.router.add_post("/api/v2/alerts", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        settings = AlertmanagerSettings((url,), timeout_s=60, resend_s=3600)
        s = AlertmanagerSink(settings, lambda _: INFO, clock_ms=lambda: NOW)
        s.offer(Transition("fired", h2s(), NOW))
        task = asyncio.create_task(s.run())
        await asyncio.wait_for(entered.wait(), 10)
        # The first POST is in flight; a resolution arrives meanwhile.
        s.offer(Transition("resolved", h2s(rule="odour.nh3", state="resolved"), NOW))
        bounded = await s.drain(0.1)  # the receiver holds the POST: both are unsent
        draining = asyncio.create_task(s.drain(30))
        release.set()
        left = await asyncio.wait_for(draining, 30)
        task.cancel()
        await runner.cleanup()
        return bounded, left, [name for batch in posted for name in batch]

    bounded, left, names = asyncio.run(run())
    assert bounded == 2 and left == 0
    assert names == ["odour.h2s", "odour.nh3"]


def test_drain_of_an_idle_sink_returns_at_once() -> None:
    s = sink([NOW])
    assert asyncio.run(asyncio.wait_for(s.drain(60), 5)) == 0
    assert s.unsent == 0

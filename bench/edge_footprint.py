"""Edge agent footprint: one real `envnet edge` process with 4 simulated sensors sampled at
1 Hz, against a real mosquitto, with a bench-side acker standing in for the aggregator.
Reports its resident memory, its CPU and the bytes its SQLite journal writes per reading.
See bench/README.md.

    .venv/bin/python bench/edge_footprint.py [--duration S] [--report-interval S]

The last line of output is machine-readable:
    rss_mb=… cpu_pct=… journal_bytes_per_reading=… sqlite_bytes_per_reading=…

journal_bytes_per_reading is what the kernel counts as sent to storage (/proc/<pid>/io
write_bytes: whole pages, plus whatever the file system adds for each fsync);
sqlite_bytes_per_reading is what SQLite itself wrote (wchar: WAL frames and checkpoints; the
agent's logs are off and go to a pipe, MQTT goes through send(), which wchar does not count).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

if not __package__:  # run as a script: make the repository root importable for bench.*
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench._procstat import cpu_seconds
from schemas import codec, topics
from schemas.codec import ContractError
from schemas.messages import ACK_SCHEMA, AckMessage
from simulators.local_stack import Mosquitto, ServiceError

NODE: Final = "bench-edge"
RSS_TARGET_MB: Final = 40.0
CPU_TARGET_PCT: Final = 2.0
FIRST_READINGS_TIMEOUT_S: Final = 60.0

# Four sensors as a roadside air station has them: particles and gases, weather, noise, odour.
SENSORS: Final = """
[[sensors]]
id = "air"
driver = "sim-air"
options = { traffic = 0.9, haze = true, seed = 1 }

[[sensors]]
id = "met"
driver = "sim-met"
options = { seed = 1 }

[[sensors]]
id = "snd"
driver = "sim-noise"
options = { zone = "4a", seed = 1 }

[[sensors]]
id = "odour"
driver = "sim-odour"
options = { seed = 1 }
"""


class BenchError(RuntimeError):
    """The agent died, or never published."""


@dataclass
class Acker:
    """Stands in for the aggregator: acks every batch at once, counts distinct readings."""

    port: int
    readings: int = 0
    messages: int = 0
    seqs: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    client: mqtt.Client | None = None

    def start(self) -> Acker:
        client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        client.on_connect = lambda c, *_: c.subscribe(topics.readings(NODE), qos=1)
        client.on_message = self._on_message
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        self.client = client
        return self

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            batch = codec.READINGS.decode(msg.payload)
        except ContractError:
            return
        with self.lock:
            self.messages += 1
            if batch.seq not in self.seqs:
                self.seqs.add(batch.seq)
                self.readings += len(batch.readings)
        ack = AckMessage(schema=ACK_SCHEMA, node=batch.node, seqs=[batch.seq])
        client.publish(topics.ack(batch.node), codec.ACK.encode(ack), qos=1)

    def distinct_readings(self) -> int:
        with self.lock:
            return self.readings

    def stop(self) -> None:
        if self.client is not None:
            self.client.loop_stop()
            self.client.disconnect()


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float
    cpu_s: float
    write_bytes: int
    wchar: int
    readings: int


@dataclass(frozen=True, slots=True)
class Result:
    seconds: float
    readings: int
    cpu_pct: float
    rss_mb: float
    rss_peak_mb: float
    write_bytes: int
    wchar: int
    journal_files_bytes: int

    @property
    def bytes_per_reading(self) -> float:
        return self.write_bytes / self.readings if self.readings else float("nan")

    @property
    def logical_bytes_per_reading(self) -> float:
        return self.wchar / self.readings if self.readings else float("nan")


def proc_io(pid: int) -> dict[str, int]:
    """/proc/<pid>/io: write_bytes is what the process sent towards the storage layer (whole
    pages, as it dirtied them); wchar is what it passed to write() and pwrite()."""
    out = {}
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = int(value)
    return out


def proc_status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise BenchError(f"no {key} in /proc/{pid}/status")


def write_config(directory: Path, args: argparse.Namespace) -> Path:
    path = directory / "node.toml"
    path.write_text(
        f'[node]\nid = "{NODE}"\n'
        f"[mqtt]\nstatus_interval_s = 60\n"
        f"[sampling]\nsample_interval_s = {args.sample_interval}\n"
        f"report_interval_s = {args.report_interval}\n"
        f'[journal]\npath = "{directory / "journal.sqlite"}"\n'
        f"{SENSORS}",
        encoding="utf-8",
    )
    return path


def start_agent(config: Path, mqtt_url: str, log_tail: deque[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ENVNET_MQTT_URL": mqtt_url}
    argv = [sys.executable, "-m", "envnet.cli", "edge", "--config", str(config)]
    # Logs go to a pipe, not a file, so that they do not count as the journal's disk writes.
    process = subprocess.Popen(
        [*argv, "--log-level", "warning"], env=env, stderr=subprocess.PIPE, cwd=config.parent
    )

    def drain() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log_tail.append(line.decode(errors="replace").rstrip())

    threading.Thread(target=drain, daemon=True).start()
    return process


def snapshot(pid: int, acker: Acker) -> Snapshot:
    io = proc_io(pid)
    cpu = cpu_seconds(pid)
    if cpu is None:
        raise BenchError("the agent is gone")
    return Snapshot(
        time.monotonic(), cpu, io["write_bytes"], io["wchar"], acker.distinct_readings()
    )


def wait_alive(process: subprocess.Popen[bytes], seconds: float, rss_kb: list[int]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the agent exited with {process.returncode}")
        rss_kb.append(proc_status_kb(process.pid, "VmRSS"))
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def measure(args: argparse.Namespace, workdir: Path, log_tail: deque[str]) -> Result:
    with Mosquitto(workdir / "mosquitto") as broker:
        acker = Acker(broker.port).start()
        agent = start_agent(write_config(workdir, args), broker.url, log_tail)
        try:
            deadline = time.monotonic() + FIRST_READINGS_TIMEOUT_S
            while acker.distinct_readings() == 0:
                if agent.poll() is not None or time.monotonic() > deadline:
                    raise BenchError("the agent published no readings")
                time.sleep(0.1)
            print(f"agent pid {agent.pid} publishing; warm-up {args.warmup} s", file=sys.stderr)
            wait_alive(agent, args.warmup, [])
            before = snapshot(agent.pid, acker)
            rss_kb: list[int] = []
            print(f"measuring for {args.duration} s", file=sys.stderr)
            wait_alive(agent, args.duration, rss_kb)
            after = snapshot(agent.pid, acker)
            peak_kb = proc_status_kb(agent.pid, "VmHWM")
        finally:
            agent.terminate()
            code = agent.wait(timeout=30)
            acker.stop()
        if code != 0:
            raise BenchError(f"the agent exited with {code} on SIGTERM")
    files = sum(p.stat().st_size for p in workdir.glob("journal.sqlite*"))
    return Result(
        seconds=after.at - before.at,
        readings=after.readings - before.readings,
        cpu_pct=100.0 * (after.cpu_s - before.cpu_s) / (after.at - before.at),
        rss_mb=max(rss_kb) / 1024.0,
        rss_peak_mb=peak_kb / 1024.0,
        write_bytes=after.write_bytes - before.write_bytes,
        wchar=after.wchar - before.wchar,
        journal_files_bytes=files,
    )


def report(result: Result, args: argparse.Namespace) -> None:
    rss_ok = "MET" if result.rss_mb <= RSS_TARGET_MB else "MISSED"
    cpu_ok = "MET" if result.cpu_pct <= CPU_TARGET_PCT else "MISSED"
    rate = result.readings / result.seconds
    print(
        f"edge agent, 4 simulated sensors, sample {args.sample_interval} s, report "
        f"{args.report_interval} s, {result.seconds:.0f} s measured after {args.warmup} s warm-up"
    )
    print(f"  readings acked      {result.readings} ({rate:.1f}/s)")
    print(
        f"  RSS                 {result.rss_mb:.1f} MB max in window, peak {result.rss_peak_mb:.1f}"
        f" MB (target <= {RSS_TARGET_MB:.0f}: {rss_ok})"
    )
    print(
        f"  CPU                 {result.cpu_pct:.2f} % of one core "
        f"(target <= {CPU_TARGET_PCT:.0f}: {cpu_ok})"
    )
    print(
        f"  storage writes      {result.write_bytes} B = {result.bytes_per_reading:.0f} "
        f"B/reading ({result.write_bytes / result.seconds / 1024:.1f} KiB/s; write_bytes)"
    )
    print(
        f"  SQLite writes       {result.wchar} B = {result.logical_bytes_per_reading:.0f} "
        "B/reading (wchar: WAL frames, checkpoints)"
    )
    print(f"  journal files       {result.journal_files_bytes} B at the end")
    print(
        f"rss_mb={result.rss_mb:.1f} cpu_pct={result.cpu_pct:.2f} "
        f"journal_bytes_per_reading={result.bytes_per_reading:.0f} "
        f"sqlite_bytes_per_reading={result.logical_bytes_per_reading:.0f}"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=90.0, help="measured seconds (90)")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before (10)")
    parser.add_argument("--sample-interval", type=float, default=1.0, help="seconds (1)")
    parser.add_argument(
        "--report-interval", type=int, default=1, help="seconds per reading and commit (1)"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="on the disk to measure")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="edge-footprint-", dir=args.workdir))
    log_tail: deque[str] = deque(maxlen=40)
    try:
        result = measure(args, workdir, log_tail)
    except (BenchError, ServiceError) as exc:
        print(f"edge_footprint: {exc}", file=sys.stderr)
        print("\n".join(log_tail), file=sys.stderr)
        print(f"work directory kept: {workdir}", file=sys.stderr)
        return 1
    report(result, args)
    if args.keep:
        print(f"work directory: {workdir}", file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Optional: sample the aggregator and its alerting worker with py-spy during the aggregator run.

`py-spy record --format raw` writes collapsed stacks ("frame;frame;frame count" per line);
`summarize` turns each process's main thread's into the top functions by own and by
inclusive samples, which is what the aggregator owner needs to see where the time goes. Idle
samples (the event loop waiting in select/epoll, the worker waiting for a request) are kept,
so the split between work and waiting shows too: stages that wait while another is busy are
taking turns instead of overlapping. Sampling pauses the processes briefly (py-spy's default,
blocking mode), which gives whole stacks; at 100 Hz the cost is small but not zero.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Final, Self

STOP_TIMEOUT_S: Final = 30.0


class PySpy:
    """`py-spy record` attached to one pid for the duration of a with-block."""

    def __init__(self, pid: int, output: Path, rate: int = 100) -> None:
        self.output = output
        self._pid = pid
        self._rate = rate
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.output.parent.mkdir(parents=True, exist_ok=True)
        argv = [exe, "record", "--pid", str(self._pid), "--format", "raw", "--idle", "--threads"]
        argv.append("--subprocesses")  # the alerting worker too
        argv += ["--rate", str(self._rate), "--output", str(self.output)]
        log = self.output.with_suffix(".log").open("wb")
        with log:
            self._process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        return self

    def __exit__(self, *exc: object) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _function(frame: str) -> str:
    """'Class.method (path/file.py:123)' → 'Class.method (path/file.py)'."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


def _is_idle(function: str) -> bool:
    """The event loop blocked in its selector, or the worker blocked reading its socket."""
    if function == "_read_exact (aggregator/worker/process.py)":
        return True
    return function.endswith("(selectors.py)") and function.split(" ", maxsplit=1)[0].endswith(
        (".select", ".poll")
    )


def _process_name(stacks: list[tuple[list[str], int]]) -> str:
    for functions, _ in stacks:
        if "serve (aggregator/worker/process.py)" in functions:
            return "alerting worker"
        if any(f.startswith("run_aggregator ") for f in functions):
            return "aggregator"
    return "other process"


# `--subprocesses` prefixes each stack with its process chain ("process PID:\"cmdline\";...";
# a command line may itself contain ';'), then "thread (TID): NAME".
_THREAD: Final = re.compile(r"(?:^|;)thread \((\d+)\): ([^;]*);")


def _main_thread_stacks(path: Path) -> Iterator[tuple[str, list[str], int]]:
    """(pid of the sampled process, its main thread's frames, samples) per raw line."""
    for raw in path.read_text(errors="replace").splitlines():
        stack, _, count_text = raw.rpartition(" ")
        thread = _THREAD.search(stack)
        if count_text.isdigit() and thread is not None and thread.group(2) == "MainThread":
            frames = stack[thread.end() :].split(";")
            yield thread.group(1), [_function(f) for f in frames], int(count_text)


def summarize(path: Path, top: int = 15) -> str:
    """Per process (the aggregator, then its alerting worker): the top functions by own and by
    inclusive samples of its main thread."""
    by_process: dict[str, list[tuple[list[str], int]]] = {}
    for pid, functions, count in _main_thread_stacks(path):
        by_process.setdefault(pid, []).append((functions, count))
    if not by_process:
        return f"no samples in {path}"
    named = [(_process_name(stacks), pid, stacks) for pid, stacks in by_process.items()]
    return "\n".join(
        _summarize_process(f"{name} (pid {pid})", stacks, top)
        for name, pid, stacks in sorted(named)
        if name != "other process"  # multiprocessing's resource tracker
    )


def _summarize_process(name: str, stacks: list[tuple[list[str], int]], top: int) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = idle = 0
    for functions, count in stacks:
        if not functions:
            continue
        total += count
        idle += count if _is_idle(functions[-1]) else 0
        own[functions[-1]] += count
        for function in set(functions):
            inclusive[function] += count
    if total == 0:
        return f"py-spy, {name}: no samples"
    # Leave out the frames every sample has (runpy, asyncio.run, the loop itself).
    distinct = [(f, n) for f, n in inclusive.most_common() if n < 0.9 * total][:top]
    lines = [
        f"py-spy, {name} main thread: {total} samples, "
        f"{100 * idle / total:.0f}% waiting (select/epoll, or the worker's socket read)",
        "  top by own samples:",
        *(f"    {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)),
        "  top by inclusive samples:",
        *(f"    {100 * n / total:5.1f}%  {f}" for f, n in distinct),
    ]
    return "\n".join(lines)

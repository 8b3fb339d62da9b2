"""Optional: sample the aggregator process with py-spy during the aggregator run.

`py-spy record --format raw` writes collapsed stacks ("frame;frame;frame count" per line);
`summarize` turns the main thread's (the event loop's) into the top functions by own and by
inclusive samples, which is what the aggregator owner needs to see where the time goes. Idle
samples (the event loop waiting in select/epoll) are kept, so the split between work and
waiting shows too. Sampling pauses the process briefly (py-spy's default, blocking mode),
which gives whole stacks; at 100 Hz the cost is small but not zero.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
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
        argv += ["--rate", str(self._rate), "--output", str(self.output)]
        log = self.output.with_suffix(".log").open("wb")
        with log:
            self._process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
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
    """The event loop blocked in its selector."""
    return function.endswith("(selectors.py)") and function.split(" ", maxsplit=1)[0].endswith(
        (".select", ".poll")
    )


def _main_thread_stacks(path: Path) -> Iterator[tuple[list[str], int]]:
    for raw in path.read_text(errors="replace").splitlines():
        stack, _, count_text = raw.rpartition(" ")
        frames = stack.split(";")
        if count_text.isdigit() and "MainThread" in frames[0]:
            yield [_function(f) for f in frames[1:]], int(count_text)


def summarize(path: Path, top: int = 15) -> str:
    """Top functions (all lines of a function together) by own and by inclusive samples."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = idle = 0
    for functions, count in _main_thread_stacks(path):
        if not functions:
            continue
        total += count
        idle += count if _is_idle(functions[-1]) else 0
        own[functions[-1]] += count
        for function in set(functions):
            inclusive[function] += count
    if total == 0:
        return f"no samples in {path}"
    # Leave out the frames every sample has (runpy, asyncio.run, the loop itself).
    distinct = [(f, n) for f, n in inclusive.most_common() if n < 0.9 * total][:top]
    lines = [
        f"py-spy, aggregator main thread ({path}): {total} samples, "
        f"{100 * idle / total:.0f}% waiting in select/epoll",
        "  top by own samples:",
        *(f"    {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)),
        "  top by inclusive samples:",
        *(f"    {100 * n / total:5.1f}%  {f}" for f, n in distinct),
    ]
    return "\n".join(lines)

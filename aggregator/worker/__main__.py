"""`python -m aggregator.worker FD`: the alerting worker process, which the service starts
with its end of a socket pair as FD (aggregator.worker.process)."""

from __future__ import annotations

import sys

from aggregator.worker.process import run_child

if __name__ == "__main__":
    run_child(int(sys.argv[1]))

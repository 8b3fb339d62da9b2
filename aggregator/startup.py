"""Errors that stop the aggregator at start: the operator must fix something first.

`envnet aggregator` prints the message and exits 2, like a configuration error, instead of a
traceback: a port that is taken, or storage that names a bucket that does not exist, is a
setting to correct, and restarting the service (systemd Restart=always) would not help.
"""

from __future__ import annotations


class StartupError(Exception):
    """The aggregator cannot start; the message says why and what to change."""

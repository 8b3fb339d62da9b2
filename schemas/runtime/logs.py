"""Structured logging on top of the standard library.

`get_logger(name).info("event", key=value)` emits one record whose fields are kept apart
from the message, rendered as logfmt for people or JSON lines for log shippers. Secrets never
reach the output: fields whose name looks secret are masked, and URL credentials are removed
by `redact_url` wherever a URL is logged.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Final, Literal, TextIO
from urllib.parse import urlsplit, urlunsplit

LogFormat = Literal["logfmt", "json"]

_SECRET_KEY: Final = re.compile(r"pass|token|secret|authori[sz]ation|credential", re.IGNORECASE)
_FIELDS_ATTR: Final = "envnet_fields"
_MASK: Final = "***"


def redact_url(url: str) -> str:
    """Drop the password (and user) from a URL before it is shown anywhere."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{_MASK}@{host}", parts.path, parts.query, ""))


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: (_MASK if _SECRET_KEY.search(k) else v) for k, v in fields.items()}


class StructLogger:
    """A thin adapter: an event name plus typed key/value fields."""

    __slots__ = ("_logger",)

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def _log(self, level: int, event: str, fields: dict[str, Any], exc: bool = False) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, event, extra={_FIELDS_ATTR: _clean(fields)}, exc_info=exc)

    def debug(self, event: str, /, **fields: Any) -> None:
        self._log(logging.DEBUG, event, fields)

    def info(self, event: str, /, **fields: Any) -> None:
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, /, **fields: Any) -> None:
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, /, **fields: Any) -> None:
        self._log(logging.ERROR, event, fields)

    def exception(self, event: str, /, **fields: Any) -> None:
        """Log at ERROR with the traceback of the exception being handled."""
        self._log(logging.ERROR, event, fields, exc=True)


def get_logger(name: str) -> StructLogger:
    return StructLogger(logging.getLogger(name))


def _logfmt_value(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n\t'):
        return json.dumps(text, ensure_ascii=False)
    return text


def timestamp(created: float) -> str:
    """ISO 8601 in UTC with its offset, to the millisecond: '2026-12-03T21:06:41.123Z'.
    Without an offset a line read on another machine, or across a DST change, is ambiguous."""
    moment = datetime.fromtimestamp(created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes each record to sys.stderr as it is then, not as it was at configuration.

    Whoever owns the process may swap stderr and close the old one: pytest does so around
    every test that runs `envnet.cli.main` in-process. A handler holding the old stream then
    fails on every later record ("--- Logging error --- ... I/O operation on closed file"),
    such as a fixture's teardown or a thread still stopping."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """StreamHandler sets its stream; this one always writes to the current stderr."""


class _Formatter(logging.Formatter):
    def __init__(self, fmt: LogFormat) -> None:
        super().__init__()
        self._fmt_kind = fmt

    @property
    def kind(self) -> LogFormat:
        return self._fmt_kind

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, _FIELDS_ATTR, {})
        base = {
            "ts": timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        if record.exc_info:
            fields = {**fields, "exc": self.formatException(record.exc_info)}
        if self._fmt_kind == "json":
            return json.dumps({**base, **fields}, ensure_ascii=False, default=str)
        items = {**base, **fields}
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in items.items())


def logging_settings() -> tuple[str, LogFormat]:
    """The level and format the root logger was configured with, for a child process."""
    root = logging.getLogger()
    fmt: LogFormat = "logfmt"
    for handler in root.handlers:
        if isinstance(handler.formatter, _Formatter):
            fmt = handler.formatter.kind
    return logging.getLevelName(root.getEffectiveLevel()).lower(), fmt


def configure_logging(level: str = "info", fmt: LogFormat = "logfmt") -> None:
    """Configure the root logger once, from the CLI."""
    handler = _StderrHandler()
    handler.setFormatter(_Formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # paho and aiomqtt log every reconnect attempt at WARNING; ours says it once, with context.
    logging.getLogger("mqtt").setLevel(logging.ERROR)

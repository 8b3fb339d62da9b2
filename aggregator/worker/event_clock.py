"""The clock the alert logic runs on: the wall clock, or a scaled event clock for scenarios.

Everything the alert logic judges against "now" reads it here: lateness (a reading is live
when it ends within `late_after_s` of now, aggregator.engine.event_time), window closing in
a node's clock, the liveness deadman, re-notification, and the times of alert transitions
and acknowledgements. In production that is the wall clock.

An accelerated scenario runs its edge agents on a scaled clock (edge/clock.py ScaledClock):
their event time starts at the scenario's origin and runs `rate` times faster than real
time. The aggregator must judge them in the same time, or every reading of a scenario set in
the past would be late, and a deadman would take `rate` times too long. agg.toml:

    [clock]
    origin_ms = 1780243200000       # event time at the anchor, epoch ms UTC
    anchor_wall_ms = 1764806400000  # the wall time at which event time was origin_ms
    rate = 600.0                    # event seconds per wall second (> 0; default 1)

event time = origin_ms + rate x (wall_ms - anchor_wall_ms), floored to the millisecond.
No [clock] section (or no origin_ms) is the wall clock. ENVNET_CLOCK overrides the section's
keys, as "origin_ms=...,anchor_wall_ms=...,rate=..." (aggregator.config).

What stays on the wall clock, whatever [clock] says: storage batching and retries, MQTT
keepalives and reconnects, metrics and /healthz, refusal-notice rate limits, the inventory's
`nodes` points (metadata of the deployment, written when it is loaded), and Alertmanager.
Alertmanager judges `startsAt`/`endsAt` against its own wall clock, so its lease (`endsAt =
now + lease` of a firing alert) must be wall time or a scaled clock would expire or extend
every lease; its payload clamps both times to the wall now (aggregator.delivery), so an
alert timed in a past event time is shown as starting (and, resolved, ending) then.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Final

import msgspec

WallMs = Callable[[], int]
_KEYS: Final = {"origin_ms": int, "anchor_wall_ms": int, "rate": float}


def wall_ms() -> int:
    """The wall clock, epoch milliseconds UTC."""
    return time.time_ns() // 1_000_000


class ClockSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """agg.toml [clock]: the event clock of the alert logic (see the module docstring)."""

    origin_ms: int | None = None
    anchor_wall_ms: int | None = None
    rate: Annotated[float, msgspec.Meta(gt=0)] = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"clock rate must be a positive finite number, got {self.rate}")
        if (self.origin_ms is None) != (self.anchor_wall_ms is None):
            raise ValueError("clock origin_ms and anchor_wall_ms go together: give both or neither")
        if self.origin_ms is None and self.rate != 1.0:
            raise ValueError("clock rate needs origin_ms and anchor_wall_ms (when rate x starts)")

    @property
    def scaled(self) -> bool:
        return self.origin_ms is not None


def event_ms(settings: ClockSettings, wall: int) -> int:
    """Event time at wall time `wall` (the wall time itself on the wall clock)."""
    if settings.origin_ms is None or settings.anchor_wall_ms is None:
        return wall
    return settings.origin_ms + math.floor(settings.rate * (wall - settings.anchor_wall_ms))


class EventClock:
    """`now_ms()`: event time now, from a wall-time function (injected, for tests)."""

    __slots__ = ("_settings", "_wall")

    def __init__(self, settings: ClockSettings | None = None, wall: WallMs = wall_ms) -> None:
        self._settings = settings or ClockSettings()
        self._wall = wall

    @property
    def settings(self) -> ClockSettings:
        return self._settings

    @property
    def scaled(self) -> bool:
        return self._settings.scaled

    def now_ms(self) -> int:
        return event_ms(self._settings, self._wall())


def parse_clock_env(text: str) -> dict[str, Any]:
    """ENVNET_CLOCK ("origin_ms=...,anchor_wall_ms=...,rate=...") as a raw [clock] table.
    ValueError with a clear message if it is not that."""
    table: dict[str, Any] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, value = (s.strip() for s in item.partition("="))
        kind = _KEYS.get(key)
        if not sep or kind is None:
            raise ValueError(
                f"ENVNET_CLOCK: expected key=value with keys {', '.join(_KEYS)}, got {item!r}"
            )
        try:
            table[key] = kind(value)
        except ValueError:
            raise ValueError(f"ENVNET_CLOCK: {key} must be a number, got {value!r}") from None
    return table


def overlay_clock_env(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """`raw` with the keys ENVNET_CLOCK sets written into its [clock] table."""
    text = environ.get("ENVNET_CLOCK", "").strip()
    if text:
        section = raw.setdefault("clock", {})
        if not isinstance(section, dict):
            raise ValueError("clock (from ENVNET_CLOCK): [clock] is not a table")
        section.update(parse_clock_env(text))
    return raw

"""The standards engine's settings: agg.toml's [alerts] section, declared once.

Each part of the engine declares the settings it uses, with their bounds, defaults and why
(`WindowSettings` in windows, `HealthSettings` in sensor_health, `LivenessSettings` in
liveness, `LifecycleSettings` in lifecycle, `Hysteresis`, `OdourSettings` and `BloomSettings`
in rules/). `EngineSettings` composes them into the section, adds the air rules' own keys, and
is an `EventTime`: the civil clock and lateness every part shares, handed to each part as a
separate argument instead of being copied into its settings. aggregator.config adds what the
service alone reads ([[alerts.webhooks]]) and loads the file; nothing here reads it.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from aggregator.engine.event_time import EventTime
from aggregator.engine.lifecycle import LifecycleSettings
from aggregator.engine.liveness import LivenessSettings
from aggregator.engine.rules.hysteresis import Hysteresis
from aggregator.engine.rules.point import BloomSettings, OdourSettings
from aggregator.engine.sensor_health import HealthSettings
from aggregator.engine.windows import WindowSettings
from schemas.standards import editions, hj633


class EngineSettings(EventTime, frozen=True, forbid_unknown_fields=True):
    """agg.toml [alerts]: the EventTime keys, the air rules' keys, and one table per part."""

    # GB 3095 / HJ 633 edition (docs/standards.md §0.1): "auto" judges each window by the
    # edition in force at its start (2012 before 2026-03-01 00:00 Beijing time, 2026 from then
    # on; GB 3095-2026 前言); "2012" or "2026" forces one edition for all dates.
    air_edition: editions.EditionSetting = "auto"
    # Lowest HJ 633 category that raises an aqi.* alert (docs/standards.md §2.3, §9):
    # 3 = III 轻度污染 (AQI > 100). envnet's choice.
    aqi_alert_level: Annotated[int, msgspec.Meta(ge=2, le=6)] = 3
    # Which HJ 633 reports raise aqi.{report} alerts. Both are always computed and stored (the
    # `aqi` measurement); by default only the real-time (hourly) AQI pages, so one pollution
    # episode opens one AQI alert, which clears when the air does.
    aqi_alert_reports: tuple[hj633.Report, ...] = ("hour",)
    lifecycle: LifecycleSettings = LifecycleSettings()
    hysteresis: Hysteresis = Hysteresis()
    windows: WindowSettings = WindowSettings()
    health: HealthSettings = HealthSettings()
    liveness: LivenessSettings = LivenessSettings()
    odour: OdourSettings = OdourSettings()
    bloom: BloomSettings = BloomSettings()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.windows.close_after_s >= self.late_after_s:
            raise ValueError("alerts.windows.close_after_s must be below late_after_s")

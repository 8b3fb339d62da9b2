"""Event-time settings that several parts of the engine share: the city's civil clock (local
hours, GB 3096 day and night) and the age that makes an observation late. Pure.

Declared once here and handed to each part that needs them (windows, air and noise rules, the
evaluator, liveness), instead of being copied into each part's own settings.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import msgspec

from schemas.standards import gb3096

_HOUR_MS = 3_600_000


class EventTime(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """agg.toml [alerts]: utc_offset_h, day_starts_h, night_starts_h, late_after_s."""

    # Local civil time offset of the city, whole hours; China uses UTC+8 without DST.
    utc_offset_h: Annotated[int, msgspec.Meta(ge=-12, le=14)] = 8
    # GB 3096-2008 §3.4 (docs/standards.md §3.2): day 06:00-22:00, night 22:00-06:00. Local
    # rules may move these (UNVERIFIED for Suzhou, docs/standards.md §8.2), hence configurable.
    day_starts_h: Annotated[int, msgspec.Meta(ge=0, le=23)] = 6
    night_starts_h: Annotated[int, msgspec.Meta(ge=0, le=23)] = 22
    # An observation whose window ended more than this before the aggregator's clock is late:
    # recorded with its true time and marked late, never paged. The same age makes a live
    # batch history (liveness.history_verdict).
    late_after_s: Annotated[int, msgspec.Meta(gt=0)] = 900

    def __post_init__(self) -> None:
        if self.day_starts_h == self.night_starts_h:
            raise ValueError("alerts.day_starts_h and night_starts_h must differ")

    @property
    def offset_ms(self) -> int:
        return self.utc_offset_h * _HOUR_MS

    @property
    def late_after_ms(self) -> int:
        return self.late_after_s * 1000

    def local_date(self, ts_ms: int) -> date:
        return (
            datetime.fromtimestamp(ts_ms / 1000, UTC) + timedelta(hours=self.utc_offset_h)
        ).date()

    def is_night(self, ts_ms: int) -> bool:
        local = datetime.fromtimestamp(ts_ms / 1000, UTC) + timedelta(hours=self.utc_offset_h)
        return gb3096.is_night(local.hour, self.day_starts_h, self.night_starts_h)

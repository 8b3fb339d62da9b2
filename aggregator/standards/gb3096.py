"""GB 3096-2008 environmental noise limits by functional zone (Table 1).

From ../shared/standards.md §3.1.

L_Aeq limits in dB(A), day and night. §5.4: at night, L_max must not exceed the zone's night
limit by more than 15 dB(A). Day is 06:00-22:00 and night 22:00-06:00 (§3.4); local rules may
move that boundary (UNVERIFIED for Suzhou), so the hours are configuration, not constants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

NoiseZone = Literal["0", "1", "2", "3", "4a", "4b"]


@dataclass(frozen=True, slots=True)
class DayNight:
    day: float
    night: float


# GB 3096-2008 Table 1.
LIMITS: Final[dict[NoiseZone, DayNight]] = {
    "0": DayNight(50, 40),
    "1": DayNight(55, 45),
    "2": DayNight(60, 50),
    "3": DayNight(65, 55),
    "4a": DayNight(70, 55),
    "4b": DayNight(70, 60),
}

# GB 3096-2008 §5.4: night-time burst noise margin over the night limit.
NIGHT_LMAX_MARGIN_DB: Final = 15.0


def is_night(local_hour: int, day_starts_h: int, night_starts_h: int) -> bool:
    """True for hours in [night_starts_h, day_starts_h), wrapping over midnight."""
    if night_starts_h > day_starts_h:
        return local_hour >= night_starts_h or local_hour < day_starts_h
    return night_starts_h <= local_hour < day_starts_h

"""GB 3096-2008 environmental noise limits by functional zone (Table 1).

From docs/standards.md §3.1.

L_Aeq limits in dB(A), day and night. §5.4: at night, L_max must not exceed the zone's night
limit by more than 15 dB(A). Day is 06:00-22:00 and night 22:00-06:00 (§3.4); local rules may
move that boundary (UNVERIFIED for Suzhou), so the hours are configuration, not constants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal, get_args

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


Period = Literal["day", "night"]
Metric = Literal["leq", "lmax"]
ZONES: Final[tuple[NoiseZone, ...]] = get_args(NoiseZone)


class NoiseInputError(ValueError):
    """Input a noise assessment cannot be made from (base class)."""


class UnknownZoneError(NoiseInputError):
    """A functional zone that GB 3096-2008 Table 1 does not have."""


class NoiseLevelError(NoiseInputError):
    """A sound level that is negative, NaN or infinite."""


@dataclass(frozen=True, slots=True)
class NoiseAssessment:
    zone: NoiseZone
    period: Period
    metric: Metric
    level: float
    limit: float

    @property
    def exceeds(self) -> bool:
        """The limit is a maximum: a level equal to it meets the standard."""
        return self.level > self.limit

    @property
    def excess_db(self) -> float:
        """dB(A) above the limit, 0 when within it."""
        return max(0.0, self.level - self.limit)


def parse_zone(text: str) -> NoiseZone:
    """A zone from user text ("4A" and "4a" are the same zone)."""
    zone = text.strip().lower()
    for known in ZONES:
        if zone == known:
            return known
    raise UnknownZoneError(f"unknown noise zone {text!r} (GB 3096-2008 has {', '.join(ZONES)})")


def assess(zone: NoiseZone, period: Period, leq: float) -> NoiseAssessment:
    """L_Aeq against the zone's day or night limit (GB 3096-2008 Table 1)."""
    _check_level(leq)
    if period not in ("day", "night"):
        raise NoiseInputError(f"unknown period {period!r} (day or night)")
    known = parse_zone(zone)
    limit = LIMITS[known].night if period == "night" else LIMITS[known].day
    return NoiseAssessment(known, period, "leq", leq, limit)


def assess_night_lmax(zone: NoiseZone, lmax: float) -> NoiseAssessment:
    """Night L_max against the night limit + 15 dB(A) (GB 3096-2008 §5.4).

    The standard sets no daytime L_max limit.
    """
    _check_level(lmax)
    known = parse_zone(zone)
    return NoiseAssessment(known, "night", "lmax", lmax, LIMITS[known].night + NIGHT_LMAX_MARGIN_DB)


def _check_level(level: float) -> None:
    if not math.isfinite(level) or level < 0:
        raise NoiseLevelError(f"sound level {level} dB(A) is not a non-negative number")

"""Which edition of GB 3095 and HJ 633 applies to a window: the one in force on its date.

GB 3095-2026 and HJ 633-2026 replaced GB 3095-2012 and HJ 633-2012 on 2026-03-01 (GB 3095-2026
前言; docs/standards.md §0.1). Data is judged by the edition in force when it was measured,
so a replay of 2013 data is judged by GB 3095-2012 Table 1 (PM2.5 24-h Grade II 75 µg/m³) and
HJ 633-2012 Table 1, and data from March 2026 on by the 2026 editions.

The switch is an instant: 2026-03-01 00:00 China Standard Time (UTC+8, no DST), that is
2026-02-28 16:00 UTC, whatever local offset the aggregator is configured with, because the
standards are Chinese national standards dated in Beijing time. A window is judged by its
start: the hour 2026-02-28 23:00-24:00 CST and the natural day 2026-02-28 by the 2012
editions, the hour and the day beginning 2026-03-01 00:00 CST by the 2026 editions. A window
that straddles the instant (an 8-h sliding mean from 2026-02-28 20:00 CST, or a day with a
non-Chinese offset) takes the edition of its start.

`[alerts] air_edition` is "auto" (this module) or forces one edition for all dates.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Final, Literal, get_args

from schemas.standards.gb3095 import Edition

EditionSetting = Literal["auto", "2012", "2026"]
EDITION_SETTINGS: Final[tuple[EditionSetting, ...]] = get_args(EditionSetting)

# China Standard Time: the time zone the standards' effective dates are in.
CST: Final = timezone(timedelta(hours=8), "CST")
# GB 3095-2026 / HJ 633-2026 in force from this Beijing-time date on.
FIRST_DAY_2026: Final = date(2026, 3, 1)
# 2026-03-01T00:00+08:00 as epoch ms (1772294400000).
FIRST_MS_2026: Final = int(
    datetime(FIRST_DAY_2026.year, FIRST_DAY_2026.month, FIRST_DAY_2026.day, tzinfo=CST).timestamp()
    * 1000
)


def edition_on(beijing_day: date) -> Edition:
    """The edition in force on a date in Beijing time."""
    return "2026" if beijing_day >= FIRST_DAY_2026 else "2012"


def edition_at(start_ms: int) -> Edition:
    """The edition in force at an instant (a window's start, epoch ms)."""
    return "2026" if start_ms >= FIRST_MS_2026 else "2012"


def beijing_date(ts_ms: int) -> date:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).astimezone(CST).date()


def resolve(setting: EditionSetting, start_ms: int) -> Edition:
    """The edition a window starting at `start_ms` is judged by under `setting`."""
    return edition_at(start_ms) if setting == "auto" else setting

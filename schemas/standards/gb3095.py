"""GB 3095 ambient air quality limits (Table 1 of GB 3095-2026 and GB 3095-2012).

GB 3095-2026 took effect on 2026-03-01 with two phases: transition limits until 2030-12-31 and
final limits from 2031-01-01 (GB 3095-2026 前言 and §4.4; docs/standards.md §0.1, §1.1).
Grade I applies to Class 1 zones, Grade II to Class 2 zones (GB 3095-2026 §4.1).
Gases are at 298.15 K and 1013.25 hPa; PM at actual conditions (GB 3095-2026 §3.14, §4.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

from schemas.quantities import Quantity

Edition = Literal["2012", "2026"]
Phase = Literal["2012", "2026-transition", "2026-final"]
Period = Literal["1h", "8h", "24h", "annual"]

TRANSITION_LAST_DAY: Final = date(2030, 12, 31)


@dataclass(frozen=True, slots=True)
class GradeLimits:
    grade_i: float
    grade_ii: float

    def for_zone(self, zone: Literal[1, 2]) -> float:
        return self.grade_i if zone == 1 else self.grade_ii


Table = dict[tuple[Quantity, Period], GradeLimits]

# Units: µg/m³, CO mg/m³. O3 "8h" is the daily maximum 8-h mean (MDA8).
# GB 3095-2026 Table 1, transition columns (docs/standards.md §1.1).
TRANSITION_2026: Final[Table] = {
    ("so2", "annual"): GradeLimits(20, 60),
    ("so2", "24h"): GradeLimits(50, 150),
    ("so2", "1h"): GradeLimits(150, 500),
    ("no2", "annual"): GradeLimits(40, 40),
    ("no2", "24h"): GradeLimits(80, 80),
    ("no2", "1h"): GradeLimits(200, 200),
    ("co", "24h"): GradeLimits(4, 4),
    ("co", "1h"): GradeLimits(10, 10),
    ("o3", "8h"): GradeLimits(100, 160),
    ("o3", "1h"): GradeLimits(160, 200),
    ("pm10", "annual"): GradeLimits(40, 60),
    ("pm10", "24h"): GradeLimits(50, 120),
    ("pm2_5", "annual"): GradeLimits(15, 30),
    ("pm2_5", "24h"): GradeLimits(35, 60),
}

# GB 3095-2026 Table 1, final columns, from 2031-01-01 (docs/standards.md §1.1).
FINAL_2026: Final[Table] = {
    **TRANSITION_2026,
    ("so2", "annual"): GradeLimits(20, 20),
    ("so2", "24h"): GradeLimits(50, 50),
    ("so2", "1h"): GradeLimits(150, 150),
    ("no2", "annual"): GradeLimits(30, 30),
    ("no2", "24h"): GradeLimits(50, 50),
    ("pm10", "annual"): GradeLimits(20, 50),
    ("pm10", "24h"): GradeLimits(50, 100),
    ("pm2_5", "annual"): GradeLimits(10, 25),
    ("pm2_5", "24h"): GradeLimits(25, 50),
}

# GB 3095-2012 Tables 1 and 2, for historical data (docs/standards.md §1.1).
EDITION_2012: Final[Table] = {
    **TRANSITION_2026,
    ("pm10", "annual"): GradeLimits(40, 70),
    ("pm10", "24h"): GradeLimits(50, 150),
    ("pm2_5", "annual"): GradeLimits(15, 35),
    ("pm2_5", "24h"): GradeLimits(35, 75),
}

TABLES: Final[dict[Phase, Table]] = {
    "2012": EDITION_2012,
    "2026-transition": TRANSITION_2026,
    "2026-final": FINAL_2026,
}

# GB 3095-2026 Table 4: a 1-h mean needs at least 45 minutes of sampling in the hour.
MIN_COVERAGE_1H_S: Final = 45 * 60


def phase_for(edition: Edition, local_day: date) -> Phase:
    """Which column applies to data of `local_day` under `edition`."""
    if edition == "2012":
        return "2012"
    return "2026-transition" if local_day <= TRANSITION_LAST_DAY else "2026-final"


def limit(phase: Phase, quantity: Quantity, period: Period, zone: Literal[1, 2]) -> float | None:
    """The limit, or None when the standard sets none for that pollutant and period."""
    limits = TABLES[phase].get((quantity, period))
    return None if limits is None else limits.for_zone(zone)


def clause(phase: Phase) -> tuple[str, str]:
    """(standard, clause) to cite on an alert."""
    if phase == "2012":
        return "GB 3095-2012", "Table 1"
    column = "transition" if phase == "2026-transition" else "final"
    return "GB 3095-2026", f"Table 1 ({column})"

"""WHO 1999/2003 recreational guidance levels for cyanobacteria (docs/standards.md §6.1).

Chlorophyll-a with cyanobacterial dominance: 10 µg/L is the "relatively low probability of
adverse effects" level, 50 µg/L the "moderate probability" level. Phycocyanin has no
published threshold (UNVERIFIED, §6.3): any phycocyanin level is site configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal


@dataclass(frozen=True, slots=True)
class BloomLevel:
    name: str
    chl_a_ug_l: float
    severity: Literal["warning", "critical"]


LEVELS: Final = (
    BloomLevel("who_low", 10.0, "warning"),
    BloomLevel("who_moderate", 50.0, "critical"),
)

"""GB 14554-93 odour pollutant plant-boundary limits for fugitive sources (Table 1).

Values from docs/standards.md §4.1 (values HIGH, column assignment MEDIUM-HIGH). The
standard gives NH3 and H2S in mg/m³ and odour concentration as a dimensionless dilution ratio.
The reference state of its mg/m³ values is UNVERIFIED; envnet's canonical gas unit is µg/m³ at
25 °C, so the limits are applied as given ×1000 at that state.
"""

from __future__ import annotations

from typing import Final, Literal

OdourGrade = Literal["I", "II-new", "II-existing", "III-new", "III-existing"]
OdourItem = Literal["nh3", "h2s", "odour"]

# GB 14554-93 Table 1, in the standard's own units (mg/m³; odour dimensionless).
TABLE_1: Final[dict[OdourItem, dict[OdourGrade, float]]] = {
    "nh3": {"I": 1.0, "II-new": 1.5, "II-existing": 2.0, "III-new": 4.0, "III-existing": 5.0},
    "h2s": {"I": 0.03, "II-new": 0.06, "II-existing": 0.10, "III-new": 0.32, "III-existing": 0.60},
    "odour": {"I": 10, "II-new": 20, "II-existing": 30, "III-new": 60, "III-existing": 70},
}

# Multiplier from the table's unit to envnet's canonical unit.
TO_CANONICAL: Final[dict[OdourItem, float]] = {"nh3": 1000.0, "h2s": 1000.0, "odour": 1.0}


def limit(item: OdourItem, grade: OdourGrade) -> float:
    """The limit in envnet's canonical unit (µg/m³ for gases, OU for odour)."""
    return TABLE_1[item][grade] * TO_CANONICAL[item]

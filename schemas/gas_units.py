"""Mixing ratios (ppb, ppm) to envnet's canonical mass concentrations, at 25 °C.

GB 3095-2026 §3.14 and §4.3 express gaseous pollutants at 298.15 K and 1013.25 hPa, where one
mole of ideal gas occupies 24.465 L; so 1 ppb = M / 24.465 µg/m³ with M the molar mass in g/mol
(docs/standards.md §1.3: SO2 ×2.619, NO2 ×1.880, O3 ×1.962, CO ppm ×1.145 mg/m³; §4.1:
NH3 1 ppm = 0.696 mg/m³, H2S 1 ppm = 1.393 mg/m³). The 0 °C factors are about 9 % higher and
must not be used. Shared by edge drivers (electrochemical cells report ppb) and the standards
calculator, so it lives in the contract package.
"""

from __future__ import annotations

from typing import Final, Literal

from schemas.quantities import SPECS

MixingUnit = Literal["ppb", "ppm"]
Gas = Literal["so2", "no2", "o3", "co", "nh3", "h2s"]

# Molar volume of an ideal gas at 298.15 K and 101.325 kPa, L/mol (GB 3095-2026 §3.14).
MOLAR_VOLUME_25C_L: Final = 24.465

# Molar masses, g/mol (IUPAC standard atomic weights).
MOLAR_MASS_G: Final[dict[Gas, float]] = {
    "so2": 64.066,
    "no2": 46.0055,
    "o3": 47.9982,
    "co": 28.0101,
    "nh3": 17.0305,
    "h2s": 34.081,
}

_PPB_PER: Final[dict[MixingUnit, float]] = {"ppb": 1.0, "ppm": 1000.0}
# Canonical units per SPECS: µg/m³, except CO in mg/m³.
_CANONICAL_PER_UG: Final[dict[str, float]] = {"ug/m3": 1.0, "mg/m3": 0.001}


class GasUnitError(ValueError):
    """A conversion was asked for a gas or unit this module does not know."""


def ug_m3_per_ppb(gas: Gas) -> float:
    """µg/m³ per ppb at 25 °C and 1013.25 hPa."""
    try:
        return MOLAR_MASS_G[gas] / MOLAR_VOLUME_25C_L
    except KeyError:
        raise GasUnitError(f"no molar mass for {gas!r}") from None


def to_canonical(gas: Gas, value: float, unit: MixingUnit) -> float:
    """`value` in ppb or ppm, as the quantity's canonical unit (µg/m³, CO mg/m³) at 25 °C."""
    if unit not in _PPB_PER:
        raise GasUnitError(f"unknown mixing-ratio unit {unit!r} (ppb or ppm)")
    ug_m3 = value * _PPB_PER[unit] * ug_m3_per_ppb(gas)
    return ug_m3 * _CANONICAL_PER_UG[SPECS[gas].unit]

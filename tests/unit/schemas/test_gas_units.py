"""Mixing-ratio conversion at the 25 °C reference state (docs/standards.md §1.3, §4.1)."""

from __future__ import annotations

import pytest

from schemas.gas_units import GasUnitError, to_canonical, ug_m3_per_ppb


@pytest.mark.parametrize(
    ("gas", "factor"),
    [("so2", 2.619), ("no2", 1.880), ("o3", 1.962), ("nh3", 0.696), ("h2s", 1.393)],
)
def test_factors_match_the_reference_table(gas: str, factor: float) -> None:
    assert ug_m3_per_ppb(gas) == pytest.approx(factor, abs=0.0006)  # type: ignore[arg-type]


def test_co_ppm_gives_mg_m3() -> None:
    # §1.3: CO ppm x 1.145 gives mg/m³, which is CO's canonical unit.
    assert to_canonical("co", 1.0, "ppm") == pytest.approx(1.145, abs=0.0006)


def test_ppm_is_a_thousand_ppb() -> None:
    assert to_canonical("so2", 1.0, "ppm") == pytest.approx(1000 * to_canonical("so2", 1, "ppb"))


def test_not_the_zero_degree_factor() -> None:
    # The 0 °C factor for SO2 is 2.858; using it would overstate by about 9 %.
    assert to_canonical("so2", 100, "ppb") < 270


def test_unknown_unit_is_refused() -> None:
    with pytest.raises(GasUnitError, match="ppb or ppm"):
        to_canonical("so2", 1.0, "mg")  # type: ignore[arg-type]

"""Lake trophic state: the comprehensive trophic level index TLI(Σ) (综合营养状态指数).

Method of 中国环境监测总站 "湖泊（水库）富营养化评价方法及分级技术规定" (总站生字[2001]090号),
as in docs/standards.md §6.3 (HIGH):

    TLI(j) = 10 (a_j + b_j ln x_j)            per parameter j
    TLI(Σ) = Σ W_j TLI(j),   W_j = r_j² / Σ r_j²

with r_j each parameter's correlation with chlorophyll-a. Units: chl-a in mg/m³ (= µg/L, so
envnet's canonical chl_a value is used as is), TP and TN in mg/L, SD (Secchi depth) in m,
CODMn in mg/L.

The method defines TLI(Σ) over all five parameters. A sensor site often has fewer, so envnet
computes it from the parameters present, with the weights re-normalised over them (Σ W_j = 1
over what was measured). That is envnet's choice, not the method's; the result lists the
parameters that were missing, so a caller can refuse a partial index.

Classes: TLI < 30 oligotrophic, 30 <= TLI <= 50 mesotrophic, above 50 eutrophic, split at 60
and 70. The source pages render the inequalities ambiguously, so whether exactly 50, 60 and 70
belong to the lower or the higher class is MEDIUM confidence; here each belongs to the lower.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, get_args

TliParameter = Literal["chl_a", "tp", "tn", "sd", "codmn"]
TLI_PARAMETERS: Final[tuple[TliParameter, ...]] = get_args(TliParameter)


@dataclass(frozen=True, slots=True)
class Term:
    """TLI(j) = 10 (a + b ln x), and r, the parameter's correlation with chl-a."""

    a: float
    b: float
    r: float


# 总站生字[2001]090号 (docs/standards.md §6.3).
TERMS: Final[dict[TliParameter, Term]] = {
    "chl_a": Term(2.5, 1.086, 1.0),
    "tp": Term(9.436, 1.624, 0.84),
    "tn": Term(5.453, 1.694, 0.82),
    "sd": Term(5.118, -1.94, -0.83),
    "codmn": Term(0.109, 2.661, 0.83),
}


@dataclass(frozen=True, slots=True)
class TrophicState:
    name_zh: str
    name_en: str
    eutrophic: bool


OLIGOTROPHIC: Final = TrophicState("贫营养", "oligotrophic", False)
MESOTROPHIC: Final = TrophicState("中营养", "mesotrophic", False)
LIGHT_EUTROPHIC: Final = TrophicState("轻度富营养", "light eutrophic", True)
MODERATE_EUTROPHIC: Final = TrophicState("中度富营养", "moderate eutrophic", True)
HYPEREUTROPHIC: Final = TrophicState("重度富营养", "hypereutrophic", True)

# (class, upper bound, whether the bound itself belongs to the class), in order; above the
# last bound is hypereutrophic. TLI < 30 and 30 <= TLI <= 50 are HIGH; the side of 50, 60, 70
# for the eutrophic splits is MEDIUM (see the module docstring).
CLASSES: Final[tuple[tuple[TrophicState, float, bool], ...]] = (
    (OLIGOTROPHIC, 30.0, False),
    (MESOTROPHIC, 50.0, True),
    (LIGHT_EUTROPHIC, 60.0, True),
    (MODERATE_EUTROPHIC, 70.0, True),
)


class TliInputError(ValueError):
    """Input a trophic index cannot be computed from (base class)."""


class TliValueError(TliInputError):
    """A value the logarithm cannot take: zero, negative, NaN or infinite."""


class NoTliParametersError(TliInputError):
    """None of chl-a, TP, TN, SD, CODMn was given."""


@dataclass(frozen=True, slots=True)
class TliResult:
    tli: float
    state: TrophicState
    partial: Mapping[TliParameter, float]  # TLI(j) of each parameter used
    weights: Mapping[TliParameter, float]  # W_j, re-normalised over the parameters used
    missing: tuple[TliParameter, ...]


def partial_index(parameter: TliParameter, value: float) -> float:
    """TLI(j) of one parameter."""
    if not math.isfinite(value) or value <= 0:
        raise TliValueError(f"{parameter} value {value} must be a positive number for TLI")
    term = TERMS[parameter]
    return 10 * (term.a + term.b * math.log(value))


def trophic_state(tli: float) -> TrophicState:
    for state, bound, inclusive in CLASSES:
        if tli < bound or (inclusive and tli == bound):
            return state
    return HYPEREUTROPHIC


def trophic_index(values: Mapping[TliParameter, float]) -> TliResult:
    """TLI(Σ) from the parameters present, weights re-normalised over them."""
    if not values:
        raise NoTliParametersError("TLI needs at least one of chl_a, tp, tn, sd, codmn")
    partial = {p: partial_index(p, v) for p, v in values.items()}
    total_r2 = sum(TERMS[p].r ** 2 for p in partial)
    weights = {p: TERMS[p].r ** 2 / total_r2 for p in partial}
    tli = sum(weights[p] * partial[p] for p in partial)
    return TliResult(
        tli=tli,
        state=trophic_state(tli),
        partial=partial,
        weights=weights,
        missing=tuple(p for p in TLI_PARAMETERS if p not in values),
    )

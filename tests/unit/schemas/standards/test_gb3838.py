"""GB 3838-2002 site evaluation and the lake trophic level index TLI.

References: docs/standards.md §5 and §6.3.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.standards import gb3838, tli
from schemas.standards.gb3838 import (
    NoWaterItemsError,
    TargetClassError,
    WaterValueError,
    evaluate_site,
)


def test_lake_example_tp_and_do_class_iv() -> None:
    site = evaluate_site({"tp": 0.06, "do": 4.5, "nh3_n": 0.4}, "lake", 3)
    # Lake TP limits 0.01/0.025/0.05/0.1/0.2: 0.06 is above III (0.05), within IV (0.1).
    assert site.items["tp"].water_class == 4
    # DO is a minimum, 7.5/6/5/3/2: 4.5 is below III (5), at least IV (3).
    assert site.items["do"].water_class == 4
    # NH3-N 0.15/0.5/...: 0.4 is within II.
    assert site.items["nh3_n"].water_class == 2
    assert site.water_class == 4 and not site.meets_target
    # Multiples against Class III: TP (0.06 - 0.05)/0.05 = 0.2; DO (5 - 4.5)/5 = 0.1.
    assert site.items["tp"].multiple == pytest.approx(0.2)
    assert site.items["do"].multiple == pytest.approx(0.1)
    assert site.items["nh3_n"].multiple == 0
    assert [c.item for c in site.exceeding] == ["tp", "do"]  # worst multiple first
    assert site.quality.name_zh == "轻度污染"


def test_the_same_tp_in_a_river_is_class_ii() -> None:
    # River TP limits 0.02/0.1/...: 0.06 is within II.
    site = evaluate_site({"tp": 0.06}, "river", 3)
    assert site.water_class == 2 and site.meets_target and site.exceeding == ()
    assert site.quality.name_en == "excellent"


def test_multiples_follow_the_target() -> None:
    # Target II: lake TP limit 0.025, (0.06 - 0.025)/0.025 = 1.4.
    site = evaluate_site({"tp": 0.06}, "lake", 2)
    assert site.items["tp"].target_limit == 0.025
    assert site.items["tp"].multiple == pytest.approx(1.4)


def test_worse_than_v_makes_the_site_worse_than_v() -> None:
    # NH3-N 2.5 > 2.0 (Class V): 劣V; multiple against III (1.0): (2.5 - 1.0)/1.0 = 1.5.
    site = evaluate_site({"nh3_n": 2.5, "do": 8.0}, "river", 3)
    assert site.water_class == gb3838.WORSE_THAN_V
    assert gb3838.class_name(site.water_class) == "劣V"
    assert site.items["nh3_n"].multiple == pytest.approx(1.5)
    assert site.quality.name_zh == "重度污染"


def test_ph_outside_6_to_9_is_worse_than_v() -> None:
    assert evaluate_site({"ph": 9.5}, "lake", 3).water_class == 6
    assert evaluate_site({"ph": 5.5}, "lake", 3).water_class == 6
    assert evaluate_site({"ph": 7.2}, "lake", 3).water_class == 1


def test_tn_only_for_lakes() -> None:
    # TN 1.2: within IV (1.5) for a lake; not evaluated for a river.
    assert evaluate_site({"tn": 1.2}, "lake", 3).water_class == 4
    river = evaluate_site({"tn": 1.2, "codmn": 3.0}, "river", 3)
    assert river.not_evaluated == ("tn",) and "tn" not in river.items
    assert river.water_class == 2  # CODMn 3.0 is within II (4)


def test_equal_limits_give_the_better_class() -> None:
    # CODMn 4.0 is exactly the Class II limit: it meets II.
    assert evaluate_site({"codmn": 4.0}, "river", 2).water_class == 2


def test_site_class_is_the_worst_item() -> None:
    site = evaluate_site({"do": 7.8, "codmn": 5.0, "nh3_n": 1.2, "tp": 0.15}, "lake", 3)
    # DO I, CODMn III, NH3-N IV, lake TP V (0.15 <= 0.2): worst is V.
    assert [c.water_class for c in site.items.values()] == [1, 3, 4, 5]
    assert site.water_class == 5


@pytest.mark.parametrize("target", [0, 6, -1])
def test_target_outside_i_to_v_is_refused(target: int) -> None:
    with pytest.raises(TargetClassError):
        evaluate_site({"tp": 0.01}, "lake", target)


@pytest.mark.parametrize("value", [-0.1, math.nan, math.inf])
def test_bad_values_are_refused(value: float) -> None:
    with pytest.raises(WaterValueError):
        evaluate_site({"tp": value}, "lake", 3)


def test_nothing_to_evaluate_is_refused() -> None:
    with pytest.raises(NoWaterItemsError):
        evaluate_site({}, "lake", 3)
    with pytest.raises(NoWaterItemsError):
        evaluate_site({"tn": 1.0}, "river", 3)


@given(
    st.dictionaries(
        st.sampled_from(("do", "codmn", "nh3_n", "tp", "tn", "ph")),
        st.floats(0, 50),
        min_size=1,
    ),
    st.sampled_from(("lake", "river")),
    st.integers(1, 5),
)
def test_site_class_is_max_and_multiples_match_classes(
    values: dict[gb3838.WaterItem, float], body: gb3838.WaterBody, target: int
) -> None:
    if body == "river" and set(values) == {"tn"}:
        return
    site = evaluate_site(values, body, target)
    assert site.water_class == max(c.water_class for c in site.items.values())
    assert site.meets_target == (site.water_class <= target)
    for c in site.items.values():
        # A positive multiple exactly when the item is worse than the target.
        assert (c.multiple > 0) == (c.water_class > target), c


# ------------------------------------------------------------------------------------ TLI


def test_tli_all_five_parameters_hand_worked() -> None:
    values: dict[tli.TliParameter, float] = {
        "chl_a": 10,
        "tp": 0.06,
        "tn": 1.2,
        "sd": 0.5,
        "codmn": 5,
    }
    result = tli.trophic_index(values)
    # TLI(chl-a) = 10 (2.5 + 1.086 ln 10)    = 50.006
    # TLI(TP)    = 10 (9.436 + 1.624 ln 0.06) = 48.670
    # TLI(TN)    = 10 (5.453 + 1.694 ln 1.2)  = 57.619
    # TLI(SD)    = 10 (5.118 - 1.94 ln 0.5)   = 64.627
    # TLI(CODMn) = 10 (0.109 + 2.661 ln 5)    = 43.917
    expected: dict[tli.TliParameter, float] = {
        "chl_a": 50.006,
        "tp": 48.670,
        "tn": 57.619,
        "sd": 64.627,
        "codmn": 43.917,
    }
    for p, value in expected.items():
        assert result.partial[p] == pytest.approx(value, abs=0.001), p
    # W = r² / Σ r², Σ r² = 1 + 0.7056 + 0.6724 + 0.6889 + 0.6889 = 3.7558; the §6.3 table:
    weights: dict[tli.TliParameter, float] = {
        "chl_a": 0.2663,
        "tp": 0.1879,
        "tn": 0.1790,
        "sd": 0.1834,
        "codmn": 0.1834,
    }
    for p, w in weights.items():
        assert result.weights[p] == pytest.approx(w, abs=0.00005), p
    # (50.006 + 0.7056*48.670 + 0.6724*57.619 + 0.6889*64.627 + 0.6889*43.917) / 3.7558
    # = 197.867 / 3.7558 = 52.683: light eutrophic.
    assert result.tli == pytest.approx(52.683, abs=0.001)
    assert result.state.name_zh == "轻度富营养" and result.state.eutrophic
    assert result.missing == ()


def test_tli_renormalises_over_the_parameters_present() -> None:
    # chl-a 30 and TP 0.1: weights 1/1.7056 = 0.5863 and 0.7056/1.7056 = 0.4137.
    result = tli.trophic_index({"chl_a": 30, "tp": 0.1})
    assert result.weights["chl_a"] == pytest.approx(0.5863, abs=0.0001)
    assert result.weights["tp"] == pytest.approx(0.4137, abs=0.0001)
    # TLI(chl-a) = 10 (2.5 + 1.086 ln 30) = 61.937; TLI(TP) = 10 (9.436 + 1.624 ln 0.1) = 56.966
    # 0.5863*61.937 + 0.4137*56.966 = 59.88: light eutrophic.
    assert result.tli == pytest.approx(59.88, abs=0.01)
    assert result.state is tli.LIGHT_EUTROPHIC
    assert result.missing == ("tn", "sd", "codmn")


@pytest.mark.parametrize(
    ("value", "state"),
    [
        (29.99, tli.OLIGOTROPHIC),
        (30.0, tli.MESOTROPHIC),
        (50.0, tli.MESOTROPHIC),  # boundary side MEDIUM
        (50.01, tli.LIGHT_EUTROPHIC),
        (60.0, tli.LIGHT_EUTROPHIC),
        (60.01, tli.MODERATE_EUTROPHIC),
        (70.0, tli.MODERATE_EUTROPHIC),
        (70.01, tli.HYPEREUTROPHIC),
    ],
)
def test_trophic_classes(value: float, state: tli.TrophicState) -> None:
    assert tli.trophic_state(value) is state


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan])
def test_tli_refuses_values_without_a_logarithm(bad: float) -> None:
    with pytest.raises(tli.TliValueError):
        tli.trophic_index({"tp": bad})


def test_tli_needs_a_parameter() -> None:
    with pytest.raises(tli.NoTliParametersError):
        tli.trophic_index({})


@given(
    st.dictionaries(
        st.sampled_from(tli.TLI_PARAMETERS), st.floats(0.001, 1000), min_size=1, max_size=5
    )
)
def test_tli_is_a_weighted_mean_of_the_partial_indices(
    values: dict[tli.TliParameter, float],
) -> None:
    result = tli.trophic_index(values)
    assert sum(result.weights.values()) == pytest.approx(1.0)
    parts = result.partial.values()
    assert min(parts) - 1e-9 <= result.tli <= max(parts) + 1e-9
    assert result.state is tli.trophic_state(result.tli)

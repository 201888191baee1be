"""Regression tests for the tricky rules of the laboratory formulas (table-driven)."""

from __future__ import annotations

from typing import Any

import pytest

from medagent.errors import InputError
from medagent.scales import evaluate, get_scale

MELD_BASE: dict[str, Any] = {
    "creatinine": 1.0,
    "bilirubin": 1.0,
    "inr": 1.0,
    "sodium": 137,
    "dialysis_twice_week": False,
    "cvvhd_24h": False,
}
AKI_BASE: dict[str, Any] = {
    "creatinine": 1.0,
    "baseline_creatinine": 1.0,
    "creatinine_rise_48h": 0.0,
    "uo_below_0_5_6h": False,
    "uo_below_0_5_12h": False,
    "uo_below_0_3_24h": False,
    "anuria_12h": False,
    "kidney_replacement_therapy": False,
    "age": 60,
}


def _value(scale_id: str, inputs: dict[str, Any]) -> float:
    result = evaluate(get_scale(scale_id), inputs)
    assert result.complete, result.missing
    assert isinstance(result.value, float)
    return result.value


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # Dialysis sets creatinine to 4.0 even when the measured value is below 1.0.
        ({"creatinine": 0.8, "bilirubin": 2.0, "inr": 1.5, "sodium": 130, "cvvhd_24h": True}, 30),
        # MELD(i) is rounded to the tenth before × 10 (0.682 -> 7, not 10).
        ({"bilirubin": 1.11, "inr": 0.9, "sodium": 141}, 7),
        # MELD(i) <= 11: no sodium term even with hyponatraemia.
        ({"creatinine": 1.3, "sodium": 120}, 9),
        # Sodium is bounded at 125 when the sodium term applies.
        ({"creatinine": 1.9, "bilirubin": 3.0, "inr": 1.8, "sodium": 110}, 30),
        # Creatinine above 4.0 is capped at 4.0.
        ({"creatinine": 10.48, "bilirubin": 1.14, "inr": 1.1, "sodium": 134}, 23),
    ],
)
def test_meld_na_rules(changes: dict[str, Any], expected: float) -> None:
    assert _value("meld_na", {**MELD_BASE, **changes}) == expected


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"sex": "male"}, 6),
        ({"sex": "female"}, 7),
        # Creatinine capped at 3.0 for MELD 3.0 (4.0 gives the same as 3.0).
        ({"sex": "male", "creatinine": 4.0, "bilirubin": 2.0, "inr": 1.5, "albumin": 2.8}, None),
    ],
)
def test_meld_3_bounds(changes: dict[str, Any], expected: float | None) -> None:
    base = {**MELD_BASE, "albumin": 3.5, **changes}
    value = _value("meld_3", base)
    if expected is None:
        assert value == _value("meld_3", {**base, "creatinine": 3.0})
    else:
        assert value == expected


@pytest.mark.parametrize(
    ("weight", "height", "basis", "expected"),
    [
        # BMI 18.07: underweight, actual weight.
        (48, 163, "by_bmi", 25.2381),
        # BMI 19.5: normal, min(IBW 52.38, actual 50) = 50.
        (50, 160, "by_bmi", 80 * 50 / 72),
        # BMI 34.7: obese, adjusted weight 87.909 kg.
        (110, 178, "by_bmi", 80 * 87.90866 / 72),
        (110, 178, "actual", 80 * 110 / 72),
    ],
)
def test_cockcroft_gault_weight_basis(
    weight: float, height: float, basis: str, expected: float
) -> None:
    age = 87 if weight == 48 else 60
    creatinine = 1.4 if weight == 48 else 1.0
    value = _value(
        "cockcroft_gault",
        {
            "age": age,
            "sex": "male",
            "weight": weight,
            "height": height,
            "creatinine": creatinine,
            "weight_basis": basis,
        },
    )
    assert value == pytest.approx(expected, abs=1e-3)


def test_ckd_epi_2021_male_low_creatinine_uses_kappa_0_9() -> None:
    value = _value("ckd_epi_2021", {"age": 80, "sex": "male", "creatinine": 0.87})
    assert value == pytest.approx(142 * (0.87 / 0.9) ** -0.302 * 0.9938**80, rel=1e-9)


def test_delta_ratio_undefined_at_bicarbonate_24() -> None:
    with pytest.raises(InputError):
        evaluate(get_scale("delta_ratio"), {"sodium": 140, "chloride": 100, "bicarbonate": 24})


def test_friedewald_refuses_triglycerides_above_400() -> None:
    with pytest.raises(InputError):
        evaluate(
            get_scale("ldl_friedewald"),
            {"total_cholesterol": 250, "hdl_cholesterol": 40, "triglycerides": 450},
        )


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"creatinine": 1.49}, 0),
        ({"creatinine": 1.5}, 1),
        ({"creatinine_rise_48h": 0.3}, 1),
        ({"creatinine": 2.99}, 2),
        ({"creatinine": 3.0}, 3),
        # 4.0 mg/dL counts only with an AKI creatinine criterion.
        ({"creatinine": 4.5, "baseline_creatinine": 4.4, "creatinine_rise_48h": 0.1}, 0),
        ({"creatinine": 4.5, "baseline_creatinine": 4.0, "creatinine_rise_48h": 0.5}, 3),
        ({"uo_below_0_5_6h": True}, 1),
        ({"uo_below_0_3_24h": True}, 3),
        ({"kidney_replacement_therapy": True}, 3),
        ({"age": 10, "pediatric_egfr_below_35": False}, 0),
    ],
)
def test_kdigo_aki_stage(changes: dict[str, Any], expected: float) -> None:
    assert _value("kdigo_aki_stage", {**AKI_BASE, **changes}) == expected


@pytest.mark.parametrize(
    ("age", "sex", "fraction"),
    [
        (17, "male", 0.6),
        (18, "female", 0.5),
        (64, "male", 0.6),
        (65, "female", 0.45),
        (65, "male", 0.5),
    ],
)
def test_free_water_deficit_fractions(age: float, sex: str, fraction: float) -> None:
    value = _value("free_water_deficit", {"age": age, "sex": sex, "weight": 100, "sodium": 154})
    assert value == pytest.approx(fraction * 100 * 0.1)

"""Regression tests for the cardiovascular scales: rules that are easy to get subtly wrong."""

from __future__ import annotations

import pytest

from medagent.scales import evaluate, get_scale

WELLS_DVT_NONE = {
    "active_cancer": False,
    "bedridden": False,
    "major_surgery": False,
    "calf_swelling": False,
    "collateral_veins": False,
    "entire_leg_swollen": False,
    "localized_tenderness": False,
    "pitting_edema": False,
    "paralysis_immobilization": False,
    "previous_dvt": False,
    "alternative_diagnosis": False,
}

HEART_BASE = {
    "history": "slightly",
    "ecg": "normal",
    "age": 40,
    "hypertension": False,
    "hypercholesterolemia": False,
    "diabetes": False,
    "obesity": False,
    "smoking": False,
    "family_history": False,
    "atherosclerotic_disease": False,
    "troponin": "normal",
}


def _value(scale_id: str, inputs: dict[str, object]) -> float:
    result = evaluate(get_scale(scale_id), inputs)
    assert result.complete, result.missing
    assert isinstance(result.value, float)
    return result.value


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, 0),
        ({"bedridden": True}, 1),
        ({"major_surgery": True}, 1),
        ({"bedridden": True, "major_surgery": True}, 1),  # one item, 1 point once
        ({"alternative_diagnosis": True}, -2),
        ({"bedridden": True, "alternative_diagnosis": True}, -1),
    ],
)
def test_wells_dvt_bedridden_or_surgery_once(changes: dict[str, bool], expected: int) -> None:
    assert _value("wells_dvt", {**WELLS_DVT_NONE, **changes}) == expected


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"hypertension": True, "diabetes": True}, 1),  # 1–2 risk factors
        ({"hypertension": True, "diabetes": True, "smoking": True}, 2),  # 3 or more
        ({"atherosclerotic_disease": True}, 2),  # atherosclerosis alone: 2
        ({"atherosclerotic_disease": True, "smoking": True}, 2),  # not 3
        ({"age": 44.9}, 0),
        ({"age": 45}, 1),
        ({"age": 65}, 2),
    ],
)
def test_heart_risk_factors_and_age(changes: dict[str, object], expected: int) -> None:
    assert _value("heart_score", {**HEART_BASE, **changes}) == expected


@pytest.mark.parametrize(
    ("creatinine", "points"), [(2.0, 0), (2.01, 1), ("176 umol/L", 0), ("178 umol/L", 1)]
)
def test_rcri_creatinine_must_exceed_2(creatinine: object, points: int) -> None:
    inputs = {
        "high_risk_surgery": False,
        "ischemic_heart_disease": False,
        "heart_failure": False,
        "cerebrovascular_disease": False,
        "insulin": False,
        "creatinine": creatinine,
    }
    assert _value("rcri", inputs) == points


@pytest.mark.parametrize(
    ("sex", "race", "expected"),
    [  # Goff 2013 Table A: 55 y, TC 213, HDL 50, untreated SBP 120, non-smoker, no diabetes
        ("female", "white", 2.1),
        ("female", "african_american", 3.0),
        ("male", "white", 5.38),  # the table prints 5.3 from a sum rounded to 60.69
        ("male", "african_american", 6.1),
    ],
)
def test_pooled_cohort_equations_table_a(sex: str, race: str, expected: float) -> None:
    inputs = {
        "sex": sex,
        "race": race,
        "age": 55,
        "total_cholesterol": 213,
        "hdl_cholesterol": 50,
        "systolic_bp": 120,
        "bp_treated": False,
        "smoker": False,
        "diabetes": False,
    }
    assert _value("ascvd_pce", inputs) == pytest.approx(expected, abs=0.05)


def test_framingham_uses_mg_per_dl() -> None:
    """Cholesterol in mmol/L is converted to mg/dL before the ATP III coefficients apply."""
    base = {
        "sex": "male",
        "age": 54,
        "systolic_bp": 139,
        "bp_treated": False,
        "smoker": True,
    }
    mg = _value("framingham_hard_chd", {**base, "total_cholesterol": 235, "hdl_cholesterol": 26})
    si = _value(
        "framingham_hard_chd",
        {**base, "total_cholesterol": "6.0778 mmol/L", "hdl_cholesterol": "0.67244 mmol/L"},
    )
    assert mg == pytest.approx(29.02, abs=0.01)
    assert si == pytest.approx(mg, abs=0.01)


def test_framingham_smoking_age_cap() -> None:
    """Above 70 (men) the ln(age) × smoker term uses 70."""
    inputs = {
        "sex": "male",
        "total_cholesterol": 220,
        "hdl_cholesterol": 40,
        "systolic_bp": 140,
        "bp_treated": False,
        "smoker": True,
    }
    assert _value("framingham_hard_chd", {**inputs, "age": 75}) == pytest.approx(22.32, abs=0.01)


def test_caprini_history_of_dvt_and_pe_counts_once() -> None:
    scale = get_scale("caprini_2005")
    example = next(e for e in scale.examples if e.id == "caprini2005-edge-0")
    inputs = {**example.inputs, "previous_dvt": True, "previous_pe": True}
    assert _value("caprini_2005", inputs) == 3


def test_caprini_women_items_do_not_apply_to_men() -> None:
    scale = get_scale("caprini_2005")
    example = next(e for e in scale.examples if e.id == "caprini2005-edge-0")
    result = evaluate(scale, {**example.inputs, "sex": "male"})
    assert result.complete and result.value == 0  # no pregnancy/hormone answers needed
    woman = evaluate(scale, {**example.inputs, "sex": "female"})
    assert not woman.complete
    assert {m.id for m in woman.missing} == {
        "pregnancy_postpartum",
        "hormones",
        "pregnancy_loss_history",
    }

"""Regression tests for the tricky rules of the severity/risk scales (boundaries, groups, units)."""

from __future__ import annotations

from typing import Any

import pytest

from medagent.scales import evaluate, get_scale

GBS_BASE: dict[str, Any] = {
    "urea": 5.0,
    "sbp": 130,
    "heart_rate": 80,
    "melena": False,
    "syncope": False,
    "hepatic_disease": False,
    "cardiac_failure": False,
}
CURB_BASE: dict[str, Any] = {
    "confusion": False,
    "urea": 5,
    "respiratory_rate": 18,
    "sbp": 120,
    "dbp": 80,
    "age": 40,
}
ROCKALL_BASE: dict[str, Any] = {
    "age": 40,
    "comorbidity": "none",
    "diagnosis": "mallory_weiss_or_none",
    "stigmata": "none_or_dark_spot",
}
CHARLSON_NONE: dict[str, Any] = {
    i.id: False for i in get_scale("charlson").inputs if i.id != "age"
} | {"age": 40}
CHILD_PUGH_BASE: dict[str, Any] = {
    "bilirubin": 1.0,
    "albumin": 4.0,
    "inr": 1.0,
    "ascites": "none",
    "encephalopathy": "none",
}


def _score(scale_id: str, inputs: dict[str, Any]) -> float:
    result = evaluate(get_scale(scale_id), inputs)
    assert result.complete, result.missing
    assert isinstance(result.value, float)
    return result.value


@pytest.mark.parametrize(
    ("sex", "hb", "points"),
    [
        ("male", 13.0, 0),
        ("male", 12.9, 1),
        ("male", 12.0, 1),
        ("male", 11.9, 3),
        ("male", 10.0, 3),
        ("male", 9.9, 6),
        ("female", 12.0, 0),
        ("female", 11.9, 1),
        ("female", 10.0, 1),
        ("female", 9.9, 6),
    ],
)
def test_glasgow_blatchford_haemoglobin_by_sex(sex: str, hb: float, points: int) -> None:
    assert _score("glasgow_blatchford", {**GBS_BASE, "sex": sex, "hemoglobin": hb}) == points


@pytest.mark.parametrize(
    ("urea", "points"),
    [
        ((18.2, "mg/dL"), 0),  # 6.497 mmol/L: just below the 6.5 mmol/L band
        ((18.3, "mg/dL"), 2),
        ((6.5, "mmol/L"), 2),
        ((8.0, "mmol/L"), 3),
        ((10.0, "mmol/L"), 4),
        ((25.0, "mmol/L"), 6),
        ((70.1, "mg/dL"), 6),
    ],
)
def test_glasgow_blatchford_urea_bands(urea: tuple[float, str], points: int) -> None:
    inputs = {**GBS_BASE, "urea": urea, "sex": "male", "hemoglobin": 15}
    assert _score("glasgow_blatchford", inputs) == points


@pytest.mark.parametrize(
    ("sbp", "dbp", "points"),
    [(89, 80, 1), (90, 61, 0), (120, 60, 1), (85, 50, 1)],
)
def test_curb65_low_blood_pressure_counts_once(sbp: int, dbp: int, points: int) -> None:
    assert _score("curb65", {**CURB_BASE, "sbp": sbp, "dbp": dbp}) == points


@pytest.mark.parametrize(
    ("bun", "points"),
    [((19.6, "mg/dL"), 0), ((19.7, "mg/dL"), 1), ((7.0, "mmol/L"), 0), ((7.01, "mmol/L"), 1)],
)
def test_curb65_urea_above_7(bun: tuple[float, str], points: int) -> None:
    assert _score("curb65", {**CURB_BASE, "urea": bun}) == points


@pytest.mark.parametrize(
    ("sbp", "pulse", "points"),
    [(100, 99, 0), (100, 100, 1), (99, 99, 2), (80, 130, 2)],
)
def test_rockall_shock(sbp: int, pulse: int, points: int) -> None:
    assert _score("rockall", {**ROCKALL_BASE, "sbp": sbp, "heart_rate": pulse}) == points


@pytest.mark.parametrize(
    ("present", "points"),
    [
        ({"liver_disease_mild": True}, 1),
        ({"liver_disease_mild": True, "liver_disease_moderate_severe": True}, 3),
        ({"diabetes": True, "diabetes_end_organ_damage": True}, 2),
        ({"solid_tumor": True, "metastatic_solid_tumor": True}, 6),
        ({"cerebrovascular_accident": True, "tia": True}, 1),
    ],
)
def test_charlson_paired_items_count_the_higher_once(present: dict[str, bool], points: int) -> None:
    assert _score("charlson", {**CHARLSON_NONE, **present}) == points


@pytest.mark.parametrize(("age", "points"), [(49, 0), (50, 1), (59, 1), (60, 2), (79, 3), (80, 4)])
def test_charlson_age_points(age: int, points: int) -> None:
    assert _score("charlson", {**CHARLSON_NONE, "age": age}) == points


@pytest.mark.parametrize(
    ("changes", "total"),
    [
        ({"bilirubin": 2.0}, 6),
        ({"bilirubin": 3.0}, 6),
        ({"bilirubin": 3.01}, 7),
        ({"albumin": 3.5}, 6),
        ({"albumin": 2.8}, 6),
        ({"albumin": 2.79}, 7),
        ({"inr": 1.7}, 6),
        ({"inr": 2.3}, 6),
        ({"inr": 2.31}, 7),
        ({"bilirubin": (34.2, "umol/L")}, 5),  # 1.9995 mg/dL by exact conversion
        ({"bilirubin": (34.3, "umol/L")}, 6),
    ],
)
def test_child_pugh_inclusive_middle_bands(changes: dict[str, Any], total: int) -> None:
    assert _score("child_pugh", {**CHILD_PUGH_BASE, **changes}) == total


@pytest.mark.parametrize(
    ("age", "points"), [((14, "mo"), 0), (3, 1), (14, 1), (15, 0), (44, 0), (45, -1)]
)
def test_mcisaac_age_points(age: Any, points: int) -> None:
    inputs = {
        "age": age,
        "temperature": 37,
        "cough_absent": False,
        "tender_anterior_nodes": False,
        "tonsillar_swelling_or_exudate": False,
    }
    assert _score("centor_mcisaac", inputs) == points

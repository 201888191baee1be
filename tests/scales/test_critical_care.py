"""Regression tests for the tricky rules of the critical care scales (table-driven)."""

from __future__ import annotations

from typing import Any

import pytest

from medagent.scales import evaluate, get_scale

SOFA_BASE: dict[str, Any] = {
    "pao2": 90,
    "fio2": 60,
    "mechanical_ventilation": False,
    "cpap": False,
    "platelets": 200,
    "bilirubin": 0.5,
    "sbp": 120,
    "dbp": 80,
    "dopamine": 0,
    "dobutamine": 0,
    "epinephrine": 0,
    "norepinephrine": 0,
    "gcs": 15,
    "creatinine": 0.8,
    "urine_output": 1500,
}
APACHE_BASE: dict[str, Any] = {
    "age": 40,
    "temperature": 37,
    "sbp": 120,
    "dbp": 80,
    "heart_rate": 80,
    "respiratory_rate": 16,
    "fio2": 21,
    "pao2": 90,
    "ph": 7.4,
    "sodium": 140,
    "potassium": 4.0,
    "creatinine": 1.0,
    "acute_renal_failure": False,
    "hematocrit": 40,
    "wbc": 8,
    "gcs": 15,
    "severe_organ_insufficiency": False,
}
NEWS2_BASE: dict[str, Any] = {
    "respiratory_rate": 16,
    "spo2_scale": "scale_1",
    "spo2": 97,
    "supplemental_oxygen": False,
    "sbp": 120,
    "pulse": 70,
    "consciousness": "alert",
    "temperature": 37.0,
}
SIRS_BASE: dict[str, Any] = {
    "temperature": 37,
    "heart_rate": 80,
    "respiratory_rate": 16,
    "paco2_measured": False,
    "wbc": 8000,
    "band_forms_measured": False,
}

CASES: list[tuple[str, dict[str, Any], dict[str, Any], float]] = [
    # SOFA respiration: P/F 150 scores 2 without support, 3 with ventilation or CPAP.
    ("sofa", SOFA_BASE, {}, 2),
    ("sofa", SOFA_BASE, {"mechanical_ventilation": True}, 3),
    ("sofa", SOFA_BASE, {"cpap": True}, 3),
    # SOFA circulation: the highest-scoring criterion counts, not the sum.
    ("sofa", SOFA_BASE, {"dopamine": 4, "norepinephrine": 0.05, "sbp": 80, "dbp": 50}, 5),
    ("sofa", SOFA_BASE, {"dopamine": 16}, 6),
    # SOFA renal: the worse of creatinine and urine output.
    ("sofa", SOFA_BASE, {"creatinine": 2.5, "urine_output": 150}, 6),
    # APACHE II oxygenation: PaO2 below FiO2 50 %, A-a gradient at 50 % or more.
    ("apache_ii", APACHE_BASE, {"fio2": 49, "pao2": 60}, 3),
    ("apache_ii", APACHE_BASE, {"fio2": 50, "pao2": 60, "aa_gradient": 150}, 0),
    ("apache_ii", APACHE_BASE, {"fio2": 50, "aa_gradient": 500}, 4),
    # APACHE II creatinine doubled in acute renal failure only.
    ("apache_ii", APACHE_BASE, {"creatinine": 2.0}, 3),
    ("apache_ii", APACHE_BASE, {"creatinine": 2.0, "acute_renal_failure": True}, 6),
    # APACHE II chronic health: 5 nonoperative or emergency, 2 elective, 0 without history.
    ("apache_ii", APACHE_BASE, {"admission_type": "elective_postoperative"}, 0),
    (
        "apache_ii",
        APACHE_BASE,
        {"severe_organ_insufficiency": True, "admission_type": "emergency_postoperative"},
        5,
    ),
    (
        "apache_ii",
        APACHE_BASE,
        {"severe_organ_insufficiency": True, "admission_type": "elective_postoperative"},
        2,
    ),
    # APACHE II GCS item is 15 - GCS.
    ("apache_ii", APACHE_BASE, {"gcs": 3}, 12),
    # NEWS2 scale 2: 88-92 % scores 0; >= 93 % scores 0 on air, 1-3 on oxygen.
    ("news2", NEWS2_BASE, {"spo2_scale": "scale_2", "spo2": 88}, 0),
    ("news2", NEWS2_BASE, {"spo2_scale": "scale_2", "spo2": 96}, 0),
    ("news2", NEWS2_BASE, {"spo2_scale": "scale_2", "spo2": 93, "supplemental_oxygen": True}, 3),
    ("news2", NEWS2_BASE, {"spo2_scale": "scale_2", "spo2": 84, "supplemental_oxygen": True}, 4),
    ("news2", NEWS2_BASE, {"spo2_scale": "scale_1", "spo2": 88}, 3),
    # NEWS2 temperature boundaries.
    ("news2", NEWS2_BASE, {"temperature": 35.0}, 3),
    ("news2", NEWS2_BASE, {"temperature": 39.1}, 2),
    # SIRS thresholds are strict; PaCO2 or bands alone can meet a criterion.
    ("sirs", SIRS_BASE, {"temperature": 38.0, "heart_rate": 90, "respiratory_rate": 20}, 0),
    ("sirs", SIRS_BASE, {"paco2": 31}, 1),
    ("sirs", SIRS_BASE, {"band_forms": 11}, 1),
    ("sirs", SIRS_BASE, {"wbc": 12001, "band_forms_measured": True}, 1),
]


@pytest.mark.parametrize(("scale_id", "base", "changes", "expected"), CASES)
def test_rule(
    scale_id: str, base: dict[str, Any], changes: dict[str, Any], expected: float
) -> None:
    result = evaluate(get_scale(scale_id), {**base, **changes})
    assert result.complete, [m.id for m in result.missing]
    assert result.value == expected


def test_sirs_met_criterion_needs_no_other_part() -> None:
    # A rate above 20 settles the respiratory criterion: PaCO2 is not asked for.
    inputs = {**SIRS_BASE, "respiratory_rate": 24}
    del inputs["paco2_measured"]
    result = evaluate(get_scale("sirs"), inputs)
    assert result.complete and result.value == 1


def test_gcs_not_testable_component_gives_a_range() -> None:
    result = evaluate(get_scale("glasgow_coma_scale"), {"eye": "none", "motor": "none"})
    assert not result.complete
    assert (result.minimum, result.maximum) == (3, 7)

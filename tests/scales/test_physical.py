"""Regression tests for the rules of the physical, dosage and pregnancy-dating scales."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from medagent.errors import InputError
from medagent.scales import evaluate, get_scale


@pytest.mark.parametrize(
    ("lmp", "cycle", "due"),
    [
        ("2017-01-01", 28, date(2017, 10, 8)),  # 280 days
        ("2006-03-31", 24, date(2007, 1, 1)),  # a short cycle moves the date earlier
        ("2002-11-20", 30, date(2003, 8, 29)),  # a long cycle moves it later
        ("2001-04-26", 20, date(2002, 1, 23)),
    ],
)
def test_due_date_cycle_adjustment_has_the_sign_of_cycle_minus_28(
    lmp: str, cycle: int, due: date
) -> None:
    result = evaluate(get_scale("estimated_due_date"), {"lmp": lmp, "cycle_length": cycle})
    assert result.value == due


@pytest.mark.parametrize(
    ("inputs", "mme"),
    [
        ({"fentanyl_patch_rate": 25, "fentanyl_patch_count": 1}, 60.0),
        ({"fentanyl_patch_rate": 50, "fentanyl_patch_count": 2}, 240.0),
        ({"fentanyl_buccal_dose": "20 ug", "fentanyl_buccal_doses_per_day": 2}, 5.2),
        ({"fentanyl_buccal_dose": "0.2 mg", "fentanyl_buccal_doses_per_day": 1}, 26.0),
        ({"methadone_dose": 60, "methadone_doses_per_day": 1}, 282.0),
        ({"hydromorphone_dose": 2, "hydromorphone_doses_per_day": 3}, 30.0),
        ({"tramadol_dose": 50, "tramadol_doses_per_day": 2}, 20.0),
    ],
)
def test_mme_factors(inputs: dict[str, Any], mme: float) -> None:
    result = evaluate(get_scale("morphine_milligram_equivalents"), inputs)
    assert result.complete
    assert result.value == pytest.approx(mme)


def test_mme_needs_at_least_one_opioid() -> None:
    with pytest.raises(InputError):
        evaluate(get_scale("morphine_milligram_equivalents"), {})


def test_mme_dose_without_frequency_is_incomplete() -> None:
    result = evaluate(get_scale("morphine_milligram_equivalents"), {"oxycodone_dose": 10})
    assert not result.complete
    assert [m.id for m in result.missing] == ["oxycodone_doses_per_day"]


@pytest.mark.parametrize(
    ("source", "dose", "target", "expected"),
    [
        ("Dexamethasone PO", 7.96, "PrednisoLONE PO", 53.0667),
        ("Betamethasone IV", 6.33, "Cortisone PO", 211.0),
        ("MethylPrednisoLONE IV", 9.599, "MethylPrednisoLONE PO", 9.599),
        ("Triamcinolone IV", 4, "Hydrocortisone IV", 20.0),
    ],
)
def test_steroid_equivalents_accept_benchmark_spellings(
    source: str, dose: float, target: str, expected: float
) -> None:
    result = evaluate(
        get_scale("steroid_conversion"),
        {"source_steroid": source, "dose": dose, "target_steroid": target},
    )
    assert result.value == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize(
    ("weight", "rate"),
    [
        (0.5, 2.0),
        (9.99, 39.96),
        (10, 40.0),
        (15, 50.0),
        (20, 60.0),
        (21, 61.0),
        ("30 [lb_av]", 47.2155),
    ],
)
def test_holliday_segar_pieces_join_at_10_and_20_kg(weight: Any, rate: float) -> None:
    result = evaluate(get_scale("maintenance_fluids"), {"weight": weight})
    assert result.value == pytest.approx(rate, abs=1e-3)


def test_hodges_and_rautaharju_use_heart_rate_not_rr() -> None:
    hodges = evaluate(get_scale("qtc_hodges"), {"heart_rate": 76, "qt_interval": 330})
    rautaharju = evaluate(get_scale("qtc_rautaharju"), {"heart_rate": 178, "qt_interval": 330})
    assert hodges.value == pytest.approx(358.0)
    assert rautaharju.value == pytest.approx(546.3333, abs=1e-3)


def test_impossible_inputs_are_rejected() -> None:
    with pytest.raises(InputError):
        evaluate(get_scale("mean_arterial_pressure"), {"sbp": 80, "dbp": 90})
    with pytest.raises(InputError):
        evaluate(get_scale("gestational_age"), {"lmp": "2020-03-23", "current_date": "2020-03-01"})


def test_gestational_age_displays_weeks_and_days() -> None:
    result = evaluate(
        get_scale("gestational_age"), {"lmp": "2024-06-29", "current_date": "2025-01-15"}
    )
    assert result.value == 200
    assert result.display.startswith("28 weeks 4 days")

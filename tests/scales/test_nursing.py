"""Regression tests for the rules of the nursing, mental-health and screening scales."""

from __future__ import annotations

from typing import Any

import pytest

from medagent.scales import evaluate, get_scale

_AUDIT_3 = {
    "drinking_frequency": "2_3_per_week",
    "typical_quantity": "1_or_2",
    "heavy_episode_frequency": "never",
}


@pytest.mark.parametrize(
    ("sex", "verdict"),
    [("female", "Screen positive"), ("male", "Screen negative")],
)
def test_audit_c_reads_a_score_of_3_at_the_cut_off_for_the_sex_given(
    sex: str, verdict: str
) -> None:
    result = evaluate(get_scale("audit_c"), {**_AUDIT_3, "sex": sex})
    assert result.complete
    assert result.value == 3
    rules = [str(s.value) for s in result.steps if s.label == "rule"]
    assert len(rules) == 1
    assert rules[0].startswith(verdict)


def test_audit_c_needs_sex_even_when_the_items_are_known() -> None:
    result = evaluate(get_scale("audit_c"), _AUDIT_3)
    assert not result.complete
    assert [m.id for m in result.missing] == ["sex"]
    assert (result.minimum, result.maximum) == (3, 3)


_FINDRISC_BASE: dict[str, Any] = {
    "age": 40,
    "bmi": 22,
    "physical_activity": "yes",
    "vegetables_fruit": "every_day",
    "antihypertensive_drugs": False,
    "high_glucose_history": False,
    "family_history": "none",
}


@pytest.mark.parametrize(
    ("sex", "waist", "points"),
    [
        ("male", 93.9, 0),
        ("male", 94, 3),
        ("male", 102, 3),
        ("male", 102.1, 4),
        ("female", 79.9, 0),
        ("female", 80, 3),
        ("female", 88, 3),
        ("female", 88.1, 4),
        ("female", 93, 4),  # a woman's 93 cm is in her top class, a man's is not
        ("male", 93, 0),
    ],
)
def test_findrisc_waist_classes_depend_on_sex(sex: str, waist: float, points: int) -> None:
    result = evaluate(get_scale("findrisc"), {**_FINDRISC_BASE, "sex": sex, "waist": waist})
    assert result.complete
    assert result.value == points


@pytest.mark.parametrize(("bmi", "points"), [(24.9, 0), (25, 1), (30, 1), (30.1, 3)])
def test_findrisc_bmi_classes(bmi: float, points: int) -> None:
    inputs = {**_FINDRISC_BASE, "bmi": bmi, "sex": "male", "waist": 80}
    assert evaluate(get_scale("findrisc"), inputs).value == points


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (20, "total_dependence"),
        (25, "severe_dependence"),
        (60, "severe_dependence"),
        (65, "moderate_dependence"),
        (90, "moderate_dependence"),
        (95, "slight_dependence"),
        (100, "independent"),
    ],
)
def test_barthel_reachable_scores_fall_in_shah_bands(score: int, band: str) -> None:
    found = get_scale("barthel").band_for(score)
    assert found is not None
    assert found.id == band


def test_phq9_item9_is_flagged_in_every_band() -> None:
    # Item 9 stands apart from the total: a positive answer raises the alert at every band
    # (it used to be a sentence repeated in each band's text; it is now the scale's alert).
    from medagent.scales import evaluate

    scale = get_scale("phq9")
    codes = ["not_at_all", "several_days", "more_than_half_the_days", "nearly_every_day"]
    others = [i.id for i in scale.inputs if i.id != "self_harm_thoughts"]
    for band in scale.bands:
        left = int(max(band.ge or 0, 1)) - 1  # item 9 gives 1 ("several days")
        answers = {"self_harm_thoughts": "several_days"}
        for item in others:
            answers[item] = codes[min(3, left)]
            left -= min(3, left)
        result = evaluate(scale, answers)
        assert result.band is not None and result.band.id == band.id
        assert [a.id for a in result.alerts] == ["item9_suicide_risk"], band.id
        calm = evaluate(scale, {**answers, "self_harm_thoughts": "not_at_all"})
        assert calm.alerts == ()

"""The points encodings of the decision rules equal the published boolean logic, for every input.

CAM-ICU, the Ottawa ankle rules, the Canadian CT Head Rule and the GOLD ABE groups are algorithms,
encoded in the scale format as points with groups and conditions. These tests enumerate every
combination of the inputs and compare the band the engine gives with the rule as published.
"""

from __future__ import annotations

import itertools

import pytest

from medagent.errors import InputError
from medagent.scales import evaluate, get_scale

BOOLS = (False, True)


def _band(scale_id: str, inputs: dict[str, object]) -> str | None:
    result = evaluate(get_scale(scale_id), inputs)
    assert result.complete, result.missing
    return result.band.id if result.band else None


@pytest.mark.parametrize(
    ("f1", "f2", "rass", "f4"),
    list(itertools.product(BOOLS, BOOLS, ["+4", "+1", "0", "-1", "-3"], BOOLS)),
)
def test_cam_icu_is_f1_and_f2_and_f3_or_f4(f1: bool, f2: bool, rass: str, f4: bool) -> None:
    inputs = {
        "acute_change_or_fluctuation": f1,
        "inattention": f2,
        "rass": rass,
        "disorganized_thinking": f4,
    }
    positive = f1 and f2 and (rass != "0" or f4)
    assert _band("cam_icu", inputs) == ("positive" if positive else "negative")


@pytest.mark.parametrize("rass", ["-4", "-5"])
def test_cam_icu_refuses_rass_too_deep_to_assess(rass: str) -> None:
    with pytest.raises(InputError):
        evaluate(get_scale("cam_icu"), {"rass": rass})


@pytest.mark.parametrize("flags", list(itertools.product(BOOLS, repeat=7)))
def test_ottawa_ankle_and_foot_rules(flags: tuple[bool, ...]) -> None:
    names = (
        "malleolar_zone_pain",
        "lateral_malleolus_tenderness",
        "medial_malleolus_tenderness",
        "midfoot_zone_pain",
        "fifth_metatarsal_tenderness",
        "navicular_tenderness",
        "unable_to_bear_weight",
    )
    f = dict(zip(names, flags, strict=True))
    weight = f["unable_to_bear_weight"]
    ankle = f["malleolar_zone_pain"] and (
        f["lateral_malleolus_tenderness"] or f["medial_malleolus_tenderness"] or weight
    )
    foot = f["midfoot_zone_pain"] and (
        f["fifth_metatarsal_tenderness"] or f["navicular_tenderness"] or weight
    )
    expected = {
        (False, False): "no_radiography",
        (True, False): "ankle_series",
        (False, True): "foot_series",
        (True, True): "ankle_and_foot_series",
    }[(bool(ankle), bool(foot))]
    assert _band("ottawa_ankle", dict(f)) == expected


@pytest.mark.parametrize(
    ("gcs", "age", "flags"),
    [
        (gcs, age, flags)
        for gcs in (13, 14, 15)
        for age in (16, 64, 64.9, 65, 90)
        for flags in itertools.product(BOOLS, repeat=5)
    ],
)
def test_canadian_ct_head_categories(gcs: int, age: float, flags: tuple[bool, ...]) -> None:
    fracture, basal, vomiting, amnesia, mechanism = flags
    inputs = {
        "gcs_2h": gcs,
        "age": age,
        "suspected_open_or_depressed_fracture": fracture,
        "basal_skull_fracture_signs": basal,
        "vomiting_two_or_more": vomiting,
        "retrograde_amnesia_over_30min": amnesia,
        "dangerous_mechanism": mechanism,
    }
    high = gcs < 15 or fracture or basal or vomiting or age >= 65
    medium = amnesia or mechanism
    expected = "high_risk" if high else "medium_risk" if medium else "not_needed"
    assert _band("canadian_ct_head", inputs) == expected


@pytest.mark.parametrize(
    ("moderate", "admitted", "tool", "value"),
    [
        (moderate, admitted, tool, value)
        for moderate in (0, 1, 2, 5)
        for admitted in (0, 1, 3)
        for tool, value in (
            ("cat", 0),
            ("cat", 9),
            ("cat", 10),
            ("cat", 40),
            ("mmrc", 0),
            ("mmrc", 1),
            ("mmrc", 2),
            ("mmrc", 4),
        )
    ],
)
def test_gold_abe_groups(moderate: int, admitted: int, tool: str, value: int) -> None:
    inputs: dict[str, object] = {
        "moderate_exacerbations": moderate,
        "hospitalised_exacerbations": admitted,
        "symptom_tool": tool,
        ("cat_score" if tool == "cat" else "mmrc_grade"): value,
    }
    more_symptoms = value >= 10 if tool == "cat" else value >= 2
    if moderate >= 2 or admitted >= 1:
        expected = "group_e"
    else:
        expected = "group_b" if more_symptoms else "group_a"
    assert _band("gold_abe", inputs) == expected


def test_abcd2_blood_pressure_counts_once() -> None:
    base = {"age": 50, "clinical_features": "other", "duration": 5, "diabetes": False}
    scale = get_scale("abcd2")
    assert evaluate(scale, {**base, "sbp": 150, "dbp": 95}).value == 1
    assert evaluate(scale, {**base, "sbp": 139, "dbp": 90}).value == 1
    assert evaluate(scale, {**base, "sbp": 139, "dbp": 89}).value == 0

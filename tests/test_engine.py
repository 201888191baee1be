"""The engine: inputs with units, all problems at once, incomplete results, groups, conditions."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from medagent.errors import InputError
from medagent.scales import evaluate, get_scale
from medagent.scales.loader import scale_from_dict
from medagent.units import Quantity


def test_complete_points_result_carries_id_version_references_and_items() -> None:
    scale = get_scale("cha2ds2_vasc")
    result = evaluate(
        scale,
        {
            "age": 72,
            "sex": "female",
            "chf": False,
            "hypertension": True,
            "diabetes": False,
            "stroke": False,
            "tia": False,
            "thromboembolism": False,
            "vascular_disease": False,
        },
    )
    assert result.complete
    assert result.value == 3
    assert (result.scale_id, result.scale_version) == ("cha2ds2_vasc", "1.1.1")
    assert result.band is not None and result.band.id == "moderate_high"
    assert {i.id: i.points for i in result.items}["age"] == 1
    assert result.references[0].doi == "10.1378/chest.09-1584"
    assert "Total = 1 + 1 + 1 = 3" in result.explanation


def test_missing_inputs_give_exact_bounds_and_who_can_answer() -> None:
    result = evaluate(get_scale("cha2ds2_vasc"), {"age": 70, "sex": "male"})
    assert not result.complete
    assert result.value is None
    assert (result.minimum, result.maximum) == (1, 7)  # 7 = 1 + chf, htn, dm, 2 (group), vasc
    assert result.bounds_exact
    assert [m.id for m in result.missing][:2] == ["chf", "hypertension"]
    assert "clinician" in result.missing[0].answerable_by
    assert {b.id for b in result.possible_bands} == {"low_moderate", "moderate_high"}


def test_group_counts_once_in_total_and_in_bounds() -> None:
    scale = get_scale("cha2ds2_vasc")
    base = {
        "age": 50,
        "sex": "male",
        "chf": False,
        "hypertension": False,
        "diabetes": False,
        "vascular_disease": False,
    }
    both = evaluate(scale, {**base, "stroke": True, "tia": True, "thromboembolism": True})
    assert both.value == 2
    unknown = evaluate(scale, base)
    assert (unknown.minimum, unknown.maximum) == (0, 2)


def test_every_input_problem_is_reported_at_once_by_id() -> None:
    with pytest.raises(InputError) as info:
        evaluate(
            get_scale("cha2ds2_vasc"),
            {"age": "300 a", "sex": "unknown", "chf": "maybe", "height": 3},
        )
    paths = {p.path for p in info.value.problems}
    assert paths == {"age", "sex", "chf", "height"}


@pytest.mark.parametrize(
    ("weight", "height"),
    [
        (70, 175),  # declared units: kg, cm
        ("70 kg", "1.75 m"),
        (Quantity(70000, "g"), Quantity(1750, "mm")),
        ((154.3236, "lbs"), (68.8976, "in")),
        ("70kg", "175 cm"),
    ],
)
def test_units_are_converted_through_the_registry(weight: object, height: object) -> None:
    result = evaluate(get_scale("bmi"), {"weight": weight, "height": height})
    assert result.value == pytest.approx(70 / 1.75**2, rel=1e-5)


def test_conversion_is_recorded_for_the_explanation() -> None:
    result = evaluate(get_scale("bmi"), {"weight": "150 lb", "height": "65 in"})
    assert [c.input_id for c in result.conversions] == ["weight", "height"]
    assert "150 [lb_av] = 68.0389 kg" in result.explanation


def test_incompatible_unit_is_an_input_problem() -> None:
    with pytest.raises(InputError, match="weight: cannot convert mg/dL to kg"):
        evaluate(get_scale("bmi"), {"weight": "70 mg/dL", "height": 170})


def test_result_serialises_to_json() -> None:
    result = evaluate(get_scale("bmi"), {"weight": 70})
    data = json.loads(json.dumps(result.to_dict()))
    assert data["complete"] is False
    assert data["missing"] == [
        {"id": "height", "label": "Body height", "answerable_by": ["record", "clinician"]}
    ]


def _scale_with(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "cond_score",
        "version": "1.0.0",
        "title": "Conditional score",
        "purpose": "Exercise conditions and derived values.",
        "population": "Nobody.",
        "category": "risk",
        "licence": {"status": "public-domain"},
        "inputs": [
            {
                "id": "weight",
                "label": "Weight",
                "type": "quantity",
                "unit": "kg",
                "range": [1, 300],
            },
            {
                "id": "height",
                "label": "Height",
                "type": "quantity",
                "unit": "cm",
                "range": [50, 250],
            },
            {"id": "ventilated", "label": "Ventilated", "type": "boolean"},
        ],
        "derived": [
            {
                "id": "bmi",
                "label": "BMI",
                "formula": "bmi",
                "unit": "kg/m2",
                "inputs": ["weight", "height"],
            }
        ],
        "scoring": {
            "method": "sum",
            "items": [
                {
                    "id": "obese",
                    "label": "BMI ≥ 30 while ventilated",
                    "source": "bmi",
                    "when": [{"input": "ventilated", "eq": True}],
                    "brackets": [{"lt": 30, "points": 0}, {"ge": 30, "points": 2}],
                }
            ],
        },
        "output": {"type": "integer", "range": [0, 2]},
        "bands_note": "test scale",
        "references": [{"key": "r", "citation": "x", "pmid": "1"}],
        "examples": [
            {
                "id": f"e{i}",
                "source": "r",
                "inputs": {},
                "expect": {"complete": False, "missing": ["x"]},
            }
            for i in range(3)
        ],
    }
    base.update(changes)
    return base


def test_condition_that_does_not_hold_needs_nothing_more() -> None:
    scale = scale_from_dict(_scale_with())
    result = evaluate(scale, {"ventilated": False})
    assert result.complete and result.value == 0


def test_condition_that_holds_needs_the_derived_inputs() -> None:
    scale = scale_from_dict(_scale_with())
    result = evaluate(scale, {"ventilated": True, "weight": 120})
    assert not result.complete
    assert [m.id for m in result.missing] == ["height"]
    assert (result.minimum, result.maximum) == (0, 2)
    done = evaluate(scale, {"ventilated": True, "weight": 120, "height": 190})
    assert done.value == 2


def test_date_inputs_accept_iso_and_us_forms() -> None:
    from medagent.scales.model import parse_date

    assert parse_date("2024-03-02") == date(2024, 3, 2)
    assert parse_date("03/02/2024") == date(2024, 3, 2)
    with pytest.raises(ValueError, match="not a date"):
        parse_date("2 March")


@pytest.mark.parametrize("text", ["true", "Yes", "1", "present", "positive"])
def test_boolean_spellings_true(text: str) -> None:
    scale = get_scale("cha2ds2_vasc")
    result = evaluate(scale, {"chf": text})
    assert {i.id: i.value for i in result.items}["chf"] is True


def test_choice_accepts_label_and_alias_case_insensitively() -> None:
    scale = get_scale("cha2ds2_vasc")
    for spelling in ("female", "Female", "F", "woman"):
        assert evaluate(scale, {"sex": spelling}).inputs["sex"] == "female"


# Regression: 59.94 kg / (1.8 m)² is 18.4999999... in binary; the band edge must hold.
def test_band_edge_is_not_lost_to_binary_noise() -> None:
    result = evaluate(get_scale("bmi"), {"weight": 59.94, "height": 180})
    assert result.band is not None and result.band.id == "normal"


# Regression: 10*9/L lost its 10^9 factor when pint parsed it (`.units` dropped the magnitude).
def test_power_of_ten_units_keep_their_factor() -> None:
    from medagent.units import convert

    assert convert(150, "10*3/uL", "10*9/L") == pytest.approx(150)
    assert convert(150000, "/uL", "10*9/L") == pytest.approx(150)


# Regression: the BMI of 150 lb / 65 in was shown as "25.0 — Normal range" because the band
# was read on the unrounded 24.96; bands are now read on the displayed value.
def test_band_is_read_on_the_displayed_value() -> None:
    result = evaluate(get_scale("bmi"), {"weight": "150 lb", "height": "65 in"})
    assert result.display == "25.0"
    assert result.band is not None and result.band.id == "overweight"


def test_reachable_totals_of_a_points_scale() -> None:
    from medagent.scales.engine import reachable_totals

    totals = reachable_totals(get_scale("cha2ds2_vasc"))
    assert totals == frozenset(float(x) for x in range(10))
    assert reachable_totals(get_scale("bmi")) is None


# Regression: a Barthel band 91-99 could never have an example "within 1 of an edge" because
# items move in steps of 5; edges are now the lowest and highest totals the scale can reach.
def test_band_edges_use_reachable_totals(minimal_scale: dict[str, Any]) -> None:
    from medagent.scales.verify import band_edges_without_example

    minimal_scale["inputs"][2]["options"][1]["points"] = 5  # totals 0,1,2,3,5,6,7,8
    minimal_scale["bands"] = [
        {"id": "low", "ge": 0, "le": 3, "label": "Low"},
        {"id": "high", "ge": 4, "le": 8, "label": "High"},
    ]
    minimal_scale["examples"][2]["inputs"]["grade"] = "high"
    minimal_scale["examples"][2]["expect"] = {"value": 8, "band": "high"}
    scale = scale_from_dict(minimal_scale)
    assert band_edges_without_example(scale) == []  # 3 is low's top; 8 is high's top


# Regression: a group of several numeric inputs whose probe values multiplied past the
# enumeration budget gave no bounds at all (and a scale with bands failed to load); items that
# share no missing input are now bounded one by one, which is exact and cheap.
def test_large_component_is_bounded_item_by_item(minimal_scale: dict[str, Any]) -> None:
    for n in range(4):
        minimal_scale["inputs"].append(
            {
                "id": f"count{n}",
                "label": f"Count {n}",
                "type": "integer",
                "range": [0, 40],
                "group": "counts",
                "brackets": [{"lt": 20, "points": 0}, {"ge": 20, "points": 1}],
            }
        )
    minimal_scale["scoring"]["groups"] = [{"id": "counts", "label": "Counts", "combine": "max"}]
    minimal_scale["bands"][1]["le"] = 7
    scale = scale_from_dict(minimal_scale)
    result = evaluate(scale, {"age": 50, "smoker": False, "grade": "low"})
    assert (result.minimum, result.maximum) == (0, 1)
    assert result.bounds_exact


# Regression: a result's inputs listed the derived values (MAP, P/F ratio) as if they had been
# given; they belong to the steps of the computation, not to the inputs.
def test_result_inputs_are_only_the_given_inputs() -> None:
    scale = get_scale("sofa")
    given = {"sbp": 100, "dbp": 60, "pao2": 80, "fio2": 40}
    result = evaluate(scale, given)
    assert set(result.inputs) <= set(scale.input_ids)
    assert not {d.id for d in scale.derived} & set(result.inputs)


# Regression: a choice given as its LOINC answer code (LA6569-3, as a QuestionnaireResponse
# carries it) was refused; it is one more name of the option, like a label or an alias.
@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("LA6568-5", "not_at_all"),  # LOINC answer code
        ("la6569-3", "several_days"),  # case does not matter
        ("Several days", "several_days"),  # the label
        ("2", "more_than_half_the_days"),  # an alias
        (3, "nearly_every_day"),  # a number given for its alias
    ],
)
def test_choice_accepts_its_loinc_answer_code(given: object, code: str) -> None:
    result = evaluate(get_scale("phq9"), {"self_harm_thoughts": given})
    assert result.inputs["self_harm_thoughts"] == code

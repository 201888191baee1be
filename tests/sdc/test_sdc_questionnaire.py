"""Every scale exports as a valid R4 Questionnaire that says what the engine does, item by item."""

from __future__ import annotations

from typing import Any

import pytest

from medagent.scales import all_scales, get_scale
from medagent.scales.model import InputType, Scale
from medagent.sdc import TOTAL_LINK_ID, problems, questionnaire, total_expression
from medagent.sdc.codes import (
    CALCULATED_EXPRESSION,
    ITEM_WEIGHT,
    LOINC,
    ORDINAL_VALUE,
    QUESTIONNAIRE_HIDDEN,
    QUESTIONNAIRE_UNIT,
    UCUM,
    score_not_calculated_url,
)

SCALES = all_scales()
POINTS = [s for s in SCALES if s.scoring.method == "sum"]
FORMULAS = [s for s in SCALES if s.scoring.method == "formula"]
# Points scales that score a derived value computed by a Python formula (MAP, P/F ratio): no
# calculatedExpression, so that none can disagree with the engine at a threshold.
NOT_CALCULATED = {"apache_ii", "saps_ii", "sofa"}


def _items(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            found[item["linkId"]] = item
            walk(item.get("item", []))

    walk(resource["item"])
    return found


def _ext(element: dict[str, Any], url: str) -> dict[str, Any] | None:
    return next((e for e in element.get("extension", []) if e["url"] == url), None)


@pytest.mark.parametrize("scale", SCALES, ids=lambda s: s.id)
def test_questionnaire_validates_against_r4b_model(scale: Scale) -> None:
    assert problems(questionnaire(scale)) == []


@pytest.mark.parametrize("scale", SCALES, ids=lambda s: s.id)
def test_questionnaire_mirrors_the_scale(scale: Scale) -> None:
    q = questionnaire(scale)
    assert q["url"].endswith(f"/Questionnaire/{scale.id}")
    assert q["version"] == scale.version
    assert q["title"] == scale.title
    if scale.loinc:
        assert q["code"] == [{"system": LOINC, "code": scale.loinc, "display": scale.title}]
    else:
        assert "code" not in q
    items = _items(q)
    for spec in scale.inputs:
        item = items[spec.id]
        assert item["text"] == spec.label
        assert "initial" not in item  # nothing is assumed
        if spec.loinc:
            assert item["code"][0] == {"system": LOINC, "code": spec.loinc}
        expected_type = {
            InputType.BOOLEAN: "boolean",
            InputType.CHOICE: "choice",
            InputType.INTEGER: "integer",
            InputType.QUANTITY: "decimal",
            InputType.DATE: "date",
        }[spec.type]
        assert item["type"] == expected_type
        if spec.unit and spec.type in (InputType.QUANTITY, InputType.INTEGER):
            unit = _ext(item, QUESTIONNAIRE_UNIT)
            assert unit is not None
            assert unit["valueCoding"]["system"] == UCUM
            assert unit["valueCoding"]["code"] == spec.unit
        for option, answer in zip(spec.options, item.get("answerOption", []), strict=True):
            coding = answer["valueCoding"]
            if option.loinc:
                assert (coding["system"], coding["code"]) == (LOINC, option.loinc)
            else:
                assert coding["code"] == option.code
            weight = _ext(answer, ITEM_WEIGHT)
            ordinal = _ext(answer, ORDINAL_VALUE)
            if option.points is None:
                assert weight is None and ordinal is None
            else:
                assert weight is not None and ordinal is not None
                assert weight["valueDecimal"] == ordinal["valueDecimal"] == option.points
    # every linkId is unique, and every input has one item
    assert len(items) == len({*items})
    assert {s.id for s in scale.inputs} <= set(items)


@pytest.mark.parametrize("scale", POINTS, ids=lambda s: s.id)
def test_points_scale_has_hidden_total(scale: Scale) -> None:
    q = questionnaire(scale)
    total = _items(q)[TOTAL_LINK_ID]
    assert total["readOnly"] is True
    assert _ext(total, QUESTIONNAIRE_HIDDEN) == {"url": QUESTIONNAIRE_HIDDEN, "valueBoolean": True}
    calc = _ext(total, CALCULATED_EXPRESSION)
    reason = _ext(q, score_not_calculated_url())
    if scale.id in NOT_CALCULATED:
        assert calc is None
        assert reason is not None and "derived value" in reason["valueString"]
        assert "no calculatedExpression" in q["description"]
    else:
        assert calc is not None and reason is None
        assert calc["valueExpression"]["language"] == "text/fhirpath"
        assert calc["valueExpression"]["expression"] == total_expression(scale).expression


def test_calculated_expression_count() -> None:
    calculated = {s.id for s in POINTS if total_expression(s).expression is not None}
    assert len(POINTS) == 62
    assert {s.id for s in POINTS} - calculated == NOT_CALCULATED
    # derived counts of booleans are translated exactly
    assert {"heart_score", "timi_ua_nstemi"} <= calculated


@pytest.mark.parametrize("scale", FORMULAS, ids=lambda s: s.id)
def test_formula_scale_has_items_only(scale: Scale) -> None:
    q = questionnaire(scale)
    assert TOTAL_LINK_ID not in _items(q)
    assert "computed by medagent" in q["description"]
    assert total_expression(scale).expression is None


def test_references_are_related_artifacts() -> None:
    scale = get_scale("cha2ds2_vasc")
    q = questionnaire(scale)
    artifacts = [e["valueRelatedArtifact"] for e in q["extension"] if "valueRelatedArtifact" in e]
    assert len(artifacts) == len(scale.references)
    primary = next(a for a in artifacts if a["type"] == "derived-from")
    assert primary["url"] == scale.primary_reference.link


def test_paraphrased_items_say_so() -> None:
    paraphrased = next(s for s in SCALES if not s.licence.item_wording)
    assert "paraphrases" in questionnaire(paraphrased)["description"]
    verbatim = next(s for s in SCALES if s.licence.item_wording)
    assert "paraphrases" not in questionnaire(verbatim)["description"]


def test_enable_when_for_items_that_matter_under_a_condition() -> None:
    # gold_abe: the CAT score only counts when the CAT is the symptom measure used
    items = _items(questionnaire(get_scale("gold_abe")))
    assert items["cat_score"]["enableWhen"] == [
        {
            "question": "symptom_tool",
            "operator": "=",
            "answerCoding": items["symptom_tool"]["answerOption"][0]["valueCoding"],
        }
    ]
    assert "enableWhen" not in items["symptom_tool"]
    # caprini: pregnancy items only for women
    caprini = _items(questionnaire(get_scale("caprini_2005")))
    assert caprini["pregnancy_postpartum"]["enableWhen"][0]["question"] == "sex"


def test_enable_when_targets_exist() -> None:
    for scale in SCALES:
        items = _items(questionnaire(scale))
        for item in items.values():
            for cond in item.get("enableWhen", []):
                assert cond["question"] in items, (scale.id, item["linkId"])


def test_custom_canonical_base() -> None:
    q = questionnaire(get_scale("phq9"), base="https://fhir.example.hospital/medagent")
    assert q["url"] == "https://fhir.example.hospital/medagent/Questionnaire/phq9"

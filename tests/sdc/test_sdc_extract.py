"""A finished assessment becomes a QuestionnaireResponse, an Observation and a Provenance."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from medagent.scales import all_scales, evaluate, get_scale
from medagent.scales.model import Scale
from medagent.sdc import SdcError, extract, problems, questionnaire_response, validate
from medagent.sdc.codes import LOINC, UCUM, scale_code_system
from medagent.sdc.errors import FhirValidationError
from medagent.sdc.questionnaire import TOTAL_LINK_ID

SCALES = all_scales()
WHEN = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
CHA2DS2_VASC = {
    "age": 72,
    "sex": "female",
    "hypertension": True,
    "diabetes": False,
    "chf": False,
    "stroke": False,
    "tia": False,
    "thromboembolism": False,
    "vascular_disease": False,
}


@pytest.mark.parametrize("scale", SCALES, ids=lambda s: s.id)
def test_every_example_extracts_to_valid_resources(scale: Scale) -> None:
    for example in scale.examples:
        result = evaluate(scale, example.inputs)
        qr = questionnaire_response(result, subject="Patient/p1", authored=WHEN)
        assert problems(qr) == [], example.id
        answered = {i["linkId"] for i in qr["item"]} - {TOTAL_LINK_ID}
        given = {k for k, v in result.inputs.items() if v is not None and k in scale.input_ids}
        assert answered == given, example.id  # every given input, nothing for missing ones
        assert qr["status"] == ("completed" if result.complete else "in-progress")
        if not result.complete:
            with pytest.raises(SdcError, match="incomplete"):
                extract(result, subject="Patient/p1", effective=WHEN)
            continue
        out = extract(
            result,
            subject="Patient/p1",
            effective=WHEN,
            author="Practitioner/dr1",
            recorded=WHEN,
            questionnaire_response=f"QuestionnaireResponse/{qr['id']}",
        )
        assert problems(out.observation) == [], example.id
        assert problems(out.provenance) == [], example.id


def test_observation_of_a_loinc_coded_scale() -> None:
    scale = get_scale("phq9")
    example = next(e for e in scale.examples if e.expect.complete)
    result = evaluate(scale, example.inputs)
    obs = extract(result, subject="Patient/p1", effective=WHEN).observation
    assert obs["code"]["coding"][0] == {"system": LOINC, "code": "44261-6", "display": scale.title}
    assert obs["valueInteger"] == round(float(result.value))  # type: ignore[arg-type]
    assert result.band is not None
    assert obs["interpretation"][0]["text"] == result.band.label
    method = obs["method"]["coding"][0]
    assert (method["code"], method["version"]) == ("phq9", scale.version)
    assert "phq9 version" in obs["note"][0]["text"]


def test_observation_without_loinc_uses_medagent_codes() -> None:
    result = evaluate(get_scale("cha2ds2_vasc"), CHA2DS2_VASC)
    out = extract(
        result,
        subject="Patient/p1",
        effective=WHEN,
        author="Practitioner/dr1",
        recorded=WHEN,
        questionnaire_response="QuestionnaireResponse/qr1",
    )
    obs = out.observation
    assert obs["code"]["coding"] == [
        {"system": scale_code_system(), "code": "cha2ds2_vasc", "display": result.scale.title}
    ]
    assert obs["valueInteger"] == 3
    assert obs["derivedFrom"] == [{"reference": "QuestionnaireResponse/qr1"}]
    assert obs["subject"] == {"reference": "Patient/p1"}
    prov = out.provenance
    assert prov["target"] == [{"reference": f"Observation/{obs['id']}"}]
    assert prov["recorded"] == WHEN.isoformat()
    assert prov["agent"][0]["who"] == {"reference": "Practitioner/dr1"}
    assert prov["entity"] == [
        {"role": "source", "what": {"reference": "QuestionnaireResponse/qr1"}}
    ]


def test_decimal_score_is_a_ucum_quantity_at_display_precision() -> None:
    result = evaluate(get_scale("bmi"), {"weight": "150 lb", "height": "65 in"})
    obs = extract(result, subject="Patient/p1", effective=WHEN).observation
    assert obs["valueQuantity"] == {"value": 25.0, "unit": "kg/m2", "system": UCUM, "code": "kg/m2"}
    assert obs["interpretation"][0]["text"] == result.band.label  # type: ignore[union-attr]


def test_response_answers_in_the_declared_unit() -> None:
    # 150 lb is answered as the kg the Questionnaire's questionnaire-unit declares
    result = evaluate(get_scale("bmi"), {"weight": "150 lb", "height": "65 in"})
    qr = questionnaire_response(result)
    answers = {i["linkId"]: i["answer"][0] for i in qr["item"]}
    assert answers["weight"] == {"valueDecimal": pytest.approx(68.0389, abs=1e-4)}


def test_response_leaves_missing_inputs_unanswered() -> None:
    result = evaluate(get_scale("cha2ds2_vasc"), {"age": 80, "sex": "male"})
    qr = questionnaire_response(result)
    assert [i["linkId"] for i in qr["item"]] == ["age", "sex"]
    assert qr["status"] == "in-progress"
    sex = qr["item"][1]["answer"][0]["valueCoding"]
    assert sex["code"] in {"male", "LA2-8"}


def test_complete_response_carries_the_total() -> None:
    result = evaluate(get_scale("cha2ds2_vasc"), CHA2DS2_VASC)
    qr = questionnaire_response(result)
    assert qr["item"][-1] == {
        "linkId": TOTAL_LINK_ID,
        "text": result.scale.output.label,
        "answer": [{"valueInteger": 3}],
    }


def test_naive_times_are_refused() -> None:
    result = evaluate(get_scale("cha2ds2_vasc"), CHA2DS2_VASC)
    with pytest.raises(SdcError, match="time zone"):
        extract(result, subject="Patient/p1", effective=datetime(2026, 1, 1))


def test_validation_reports_every_problem_with_its_path() -> None:
    broken = {"resourceType": "Observation", "id": "x", "status": "final", "bogus": 1}
    found = problems(broken)
    assert found and {p.path for p in found} >= {"bogus"}
    with pytest.raises(FhirValidationError):
        validate(broken)

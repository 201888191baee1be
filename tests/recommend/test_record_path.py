"""The record path: a patient in a FHIR store as of a time (committed Synthea fixture bundles)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from medagent.recommend import from_record, recommend
from medagent.record import RecordStore

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fhir"
RUBEN = "552d4ca4-9b30-4982-a4b2-d3aa746358d2"  # died aged 1, seizure disorder


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordStore]:
    db = tmp_path_factory.mktemp("rec") / "record.db"
    with RecordStore.open(f"sqlite:///{db}") as s:
        s.import_paths([FIXTURES])
        s.put(_adult_with_af())
        yield s


def _adult_with_af() -> list[dict[str, object]]:
    """An adult added to the fixture store: AF (SNOMED) since 2020, creatinine in 2025."""
    ref = {"reference": "Patient/adult-af"}
    return [
        {
            "resourceType": "Patient",
            "id": "adult-af",
            "gender": "female",
            "birthDate": "1950-03-01",
            "name": [{"given": ["Test"], "family": "Adult"}],
        },
        {
            "resourceType": "Condition",
            "id": "af-1",
            "subject": ref,
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": "active",
                    }
                ]
            },
            "code": {
                "coding": [
                    {
                        "system": "http://snomed.info/sct",
                        "code": "49436004",
                        "display": "Atrial fibrillation (disorder)",
                    }
                ]
            },
            "onsetDateTime": "2020-05-01T10:00:00Z",
        },
        {
            "resourceType": "Observation",
            "id": "cr-1",
            "status": "final",
            "subject": ref,
            "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
            "effectiveDateTime": "2025-06-01T08:00:00Z",
            "valueQuantity": {
                "value": 2.4,
                "unit": "mg/dL",
                "system": "http://unitsofmeasure.org",
                "code": "mg/dL",
            },
        },
    ]


def test_fixture_patient_context(store: RecordStore) -> None:
    ctx = from_record(store, RUBEN)
    # deceased: "now" is the time of death
    assert ctx.as_of.year == 1943 and ctx.age is not None and ctx.age < 2
    assert ctx.sex == "male" and ctx.pregnant is False
    assert any("Seizure" in (c.display or "") for c in ctx.conditions)


def test_fixture_child_gets_no_adult_scale(store: RecordStore) -> None:
    rec = recommend(from_record(store, RUBEN))
    for entry in rec.entries:
        ind = entry.best.scale.indications
        assert ind is None or ind.age.min is None or ind.age.min <= 1


def test_condition_in_the_record_recommends_with_its_display(store: RecordStore) -> None:
    rec = recommend(from_record(store, "adult-af", at=datetime(2025, 6, 2), setting="clinic"))
    entry = next(e for e in rec.entries if "cha2ds2_vasc" in e.members)
    text = " ".join(r.text for r in entry.best.reasons)
    assert "Atrial fibrillation" in text and "49436004" in text
    vasc = next(m for m in (entry.best, *entry.variants) if m.scale.id == "cha2ds2_vasc")
    assert "age" in vasc.filled and "sex" in vasc.filled


def test_before_the_onset_nothing_about_it(store: RecordStore) -> None:
    rec = recommend(from_record(store, "adult-af", at=datetime(2019, 1, 1)))
    assert "cha2ds2_vasc" not in rec.ranked_members()


def test_lab_trigger_within_the_lookback(store: RecordStore) -> None:
    inside = from_record(store, "adult-af", at=datetime(2025, 6, 10))
    assert any(o.loinc == "2160-0" and o.value == pytest.approx(2.4) for o in inside.observations)
    outside = from_record(store, "adult-af", at=datetime(2026, 6, 10))
    assert not any(o.loinc == "2160-0" for o in outside.observations)


def test_setting_excludes_with_the_reason(store: RecordStore) -> None:
    rec = recommend(from_record(store, "adult-af", at=datetime(2025, 6, 2), setting="icu"))
    ids = {x.scale_id: x for x in rec.excluded}
    if "cha2ds2_vasc" in ids:  # the library says where CHA2DS2-VASc is used
        assert ids["cha2ds2_vasc"].kind == "setting"
        assert "cha2ds2_vasc" not in rec.ranked_members()


def test_previous_result_in_the_record_path(store: RecordStore) -> None:
    from medagent.recommend import PreviousResult
    from medagent.scales import evaluate, get_scale

    values = {
        "age": 75,
        "sex": "female",
        "chf": False,
        "hypertension": True,
        "diabetes": False,
        "stroke": False,
        "tia": False,
        "thromboembolism": False,
        "vascular_disease": False,
    }
    old = PreviousResult(
        "cha2ds2_vasc",
        datetime(2023, 1, 1),
        inputs=values,
        result=evaluate(get_scale("cha2ds2_vasc"), values),
    )
    at = datetime(2025, 6, 2)
    stale = recommend(from_record(store, "adult-af", at=at, previous=[old], setting="clinic"))
    entry = next(e for e in stale.entries if "cha2ds2_vasc" in e.members)
    match = next(m for m in (entry.best, *entry.variants) if m.scale.id == "cha2ds2_vasc")
    assert match.previous is old and match.guidance()
    recent = PreviousResult("cha2ds2_vasc", datetime(2025, 5, 1), inputs={"age": 75})
    fresh = recommend(from_record(store, "adult-af", at=at, previous=[recent], setting="clinic"))
    assert any(x.scale_id == "cha2ds2_vasc" and x.kind == "recent" for x in fresh.excluded)

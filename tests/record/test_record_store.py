"""Record store: import (Bundles, NDJSON), upsert, all-or-nothing errors, and the query API."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from medagent.record import RecordImportError, RecordStore, ResourceNotFoundError
from medagent.record.db import VERSION_TABLE
from medagent.record.models import ICD10_SYSTEMS, SNOMED

PID = "p1"


def _bundle(*resources: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {
                "fullUrl": f"urn:uuid:{r['id']}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r.get('resourceType')}/{r['id']}"},
            }
            for r in resources
        ],
    }


def _patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": PID,
        "name": [{"use": "official", "given": ["Ada"], "family": "Example"}],
        "gender": "female",
        "birthDate": "1950-06-15",
    }


def _condition(rid: str, code: str, **fields: Any) -> dict[str, Any]:
    clinical = fields.pop("clinical", "active")
    verification = fields.pop("verification", "confirmed")
    return {
        "resourceType": "Condition",
        "id": rid,
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": clinical,
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": verification,
                }
            ]
        },
        "code": {"coding": [{"system": ICD10_SYSTEMS[0], "code": code}]},
        "subject": {"reference": f"urn:uuid:{PID}"},
        **fields,
    }


def _creatinine(rid: str, when: str, value: float, unit: str = "mg/dL") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
        "subject": {"reference": f"urn:uuid:{PID}"},
        "effectiveDateTime": when,
        "valueQuantity": {
            "value": value,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        },
    }


def _write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_import_synthea_bundle_rewrites_references(store: RecordStore, precious: Path) -> None:
    result = store.import_file(precious)
    bundle = json.loads(precious.read_text())
    assert result.resources == len(bundle["entry"])
    (pid,) = result.patients
    counts = store.counts()
    assert counts["Observation"] == 150
    assert counts["Patient"] == 1
    condition = store.search("Condition", patient=pid, count=1)[0][0]
    assert condition["subject"]["reference"] == f"Patient/{pid}"  # urn:uuid → Type/id
    assert store.counts(pid)["Condition"] == 21


def test_reimport_updates_and_never_duplicates(
    store: RecordStore, precious: Path, tmp_path: Path
) -> None:
    store.import_file(precious)
    before = store.counts()
    bundle = json.loads(precious.read_text())
    patient = bundle["entry"][0]["resource"]
    patient["gender"] = "other"
    store.import_file(_write(tmp_path, "again.json", bundle))
    assert store.counts() == before
    again = store.get("Patient", patient["id"])
    assert again["gender"] == "other"
    assert again["meta"]["versionId"] == "2"
    assert again["meta"]["lastUpdated"].endswith("Z")


def test_bad_bundle_reports_every_problem_and_imports_nothing(
    store: RecordStore, tmp_path: Path
) -> None:
    bad_obs = _creatinine("o1", "2024-01-01T00:00:00Z", 1.0)
    bad_obs["status"] = "not-a-status"
    no_type = {"id": "x1", "code": {}}
    bad_date = _condition("c1", "I48.0", onsetDateTime="yesterday")
    path = _write(tmp_path, "bad.json", _bundle(_patient(), bad_obs, no_type, bad_date))
    with pytest.raises(RecordImportError) as caught:
        store.import_file(path)
    paths = [p.path for p in caught.value.problems]
    assert f"{path}:entry[1].resource.status" in paths
    assert f"{path}:entry[2].resource" in paths
    assert any(p.startswith(f"{path}:entry[3].resource.onsetDateTime") for p in paths)
    assert isinstance(caught.value, ValueError)
    assert store.counts() == {}  # nothing half-imported


def test_not_json_and_wrong_bundle_type(sqlite_store: RecordStore, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"resourceType": "Bundle", ')
    with pytest.raises(RecordImportError, match="not JSON"):
        sqlite_store.import_file(broken)
    history = _write(tmp_path, "h.json", _bundle(_patient(), kind="history"))
    with pytest.raises(RecordImportError, match="cannot be imported"):
        sqlite_store.import_file(history)


def test_import_paths_keeps_good_files_and_reports_bad(
    sqlite_store: RecordStore, ruben: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"resourceType": "Patient", "id": "a", "gender": 5}\nnot json\n')
    report = sqlite_store.import_paths([ruben, bad])
    assert len(report.imported) == 1
    assert report.resources > 100
    (failure,) = report.failed
    assert [p.path for p in failure.problems] == [f"{bad}:line 1.gender", f"{bad}:line 2"]


def test_ndjson_bulk_export_round_trip(store: RecordStore, ruben: Path, tmp_path: Path) -> None:
    source = RecordStore.open(str(tmp_path / "source.db"))
    result = source.import_file(ruben)
    folder = tmp_path / "export"
    folder.mkdir()
    for rtype in source.resource_types():
        rows, _ = source.search(rtype, count=10_000)
        lines = [json.dumps(r) for r in rows]
        (folder / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n")
    source.close()
    report = store.import_paths([folder])
    assert not report.failed
    assert report.resources == result.resources
    assert store.patient(result.patients[0]).name == "Ruben Labadie"


def test_collection_and_searchset_bundles(sqlite_store: RecordStore, tmp_path: Path) -> None:
    searchset = _bundle(_patient(), kind="searchset")
    searchset["entry"].append(
        {
            "resource": {"resourceType": "OperationOutcome", "id": "oo", "issue": []},
            "search": {"mode": "outcome"},
        }
    )
    sqlite_store.import_file(_write(tmp_path, "s.json", searchset))
    collection = _bundle(_creatinine("o1", "2024-01-01", 1.1), kind="collection")
    collection["entry"][0]["resource"]["subject"] = {"reference": f"Patient/{PID}"}
    sqlite_store.import_file(_write(tmp_path, "c.json", collection))
    assert sqlite_store.counts() == {"Patient": 1, "Observation": 1}
    assert [o.value for o in sqlite_store.observations(PID, codes=["2160-0"])] == [1.1]


def test_transaction_delete(sqlite_store: RecordStore, tmp_path: Path) -> None:
    sqlite_store.import_file(_write(tmp_path, "a.json", _bundle(_patient())))
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "DELETE", "url": f"Patient/{PID}"}}],
    }
    result = sqlite_store.import_file(_write(tmp_path, "d.json", bundle))
    assert result.deleted == 1
    with pytest.raises(ResourceNotFoundError):
        sqlite_store.get("Patient", PID)


def test_patients_and_demographics(store: RecordStore, ruben: Path, precious: Path) -> None:
    store.import_paths([ruben, precious])
    patients = store.patients()
    assert [p.name for p in patients] == ["Precious Stark", "Ruben Labadie"]
    ruben_p = patients[1]
    assert ruben_p.gender == "male"
    assert ruben_p.birth_date is not None and ruben_p.birth_date.isoformat() == "1942-05-14"
    assert isinstance(ruben_p.deceased, datetime)
    assert ruben_p.age_at(datetime(1943, 5, 13)) == 0
    assert ruben_p.age_at(datetime(1943, 5, 14)) == 1
    assert ruben_p.resource_count > 100
    demographics = store.patient(ruben_p.id)
    assert (demographics.name, demographics.birth_date) == (ruben_p.name, ruben_p.birth_date)
    with pytest.raises(ResourceNotFoundError):
        store.patient("nobody")


def test_observations_by_loinc_in_window_with_units(store: RecordStore, precious: Path) -> None:
    (pid,) = store.import_file(precious).patients
    systolic = store.observations(pid, codes=["8480-6"])
    assert len(systolic) == 15  # 8 stand-alone + 7 blood-pressure panel components
    assert sum(o.component for o in systolic) == 7
    assert all(o.unit_code == "mm[Hg]" and isinstance(o.value, float) for o in systolic)
    times = [o.effective for o in systolic]
    assert times == sorted(times)
    window = store.observations(pid, codes=["8480-6", "8302-2"], since=times[3], until=times[6])
    assert window and all(times[3] <= o.effective <= times[6] for o in window if o.effective)
    assert {o.code.code for o in window} <= {"8480-6", "8302-2"}
    # an aware datetime is taken in its own zone
    shifted = times[3].replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=5)))
    assert store.observations(pid, codes=["8480-6"], since=shifted)[0].effective == times[3]
    assert store.observations(pid, codes=["8480-6"], statuses=["amended"]) == []


def test_conditions_by_prefix_active_at(store: RecordStore, tmp_path: Path) -> None:
    bundle = _bundle(
        _patient(),
        _condition("af", "I48.91", onsetDateTime="2020-01-01"),
        _condition(
            "pneu",
            "J18.9",
            clinical="resolved",
            onsetDateTime="2021-03-01",
            abatementDateTime="2021-03-20",
        ),
        _condition("err", "I48.0", verification="entered-in-error", onsetDateTime="2019-01-01"),
        _condition("old", "I10", clinical="resolved", onsetDateTime="2000-01-01"),
    )
    store.import_file(_write(tmp_path, "c.json", bundle))
    ids = lambda conds: sorted(c.resource_id for c in conds)  # noqa: E731
    assert ids(store.conditions(PID, prefixes=["I48"])) == ["af", "err"]
    assert ids(store.conditions(PID, prefixes=["I48"], active_at=datetime(2022, 1, 1))) == ["af"]
    assert ids(store.conditions(PID, prefixes=["I48"], active_at=datetime(2019, 6, 1))) == []
    at_pneumonia = datetime(2021, 3, 10, tzinfo=UTC)
    assert ids(store.conditions(PID, active_at=at_pneumonia)) == ["af", "pneu"]
    assert ids(store.conditions(PID, active_at=datetime(2021, 4, 1))) == ["af"]
    assert ids(store.conditions(PID, prefixes=["I10"], active_at=datetime(2001, 1, 1))) == []
    assert store.conditions(PID, prefixes=["I48"], system="snomed") == []
    assert ids(store.conditions(PID, prefixes=["I"], system=ICD10_SYSTEMS[0])) == [
        "af",
        "err",
        "old",
    ]
    assert ids(store.conditions(PID, prefixes=["I4%"])) == []  # LIKE wildcards are escaped


def test_snomed_conditions_medications_procedures_notes(store: RecordStore, precious: Path) -> None:
    (pid,) = store.import_file(precious).patients
    otitis = store.conditions(pid, prefixes=["65363002"], system="snomed")
    assert len(otitis) == 4 and otitis[0].codes[0].system == SNOMED
    active = store.conditions(
        pid, prefixes=["65363002"], system="snomed", active_at=datetime(1987, 12, 1)
    )
    assert [c.onset.year for c in active if c.onset] == [1987]
    meds = store.medications(pid)
    assert len(meds) == 9 and meds[0].codes[0].code == "309045" and meds[0].status == "stopped"
    assert len(store.medications(pid, codes=["313820"])) == 4
    recent = store.medications(pid, since=datetime(1989, 1, 1))
    assert [m.codes[0].code for m in recent] == ["313820", "313782"]
    procedures = store.procedures(pid)
    assert len(procedures) == 12 and all(p.start for p in procedures)
    notes = store.notes(pid)
    assert len(notes) == 3 and "Chief Complaint" in notes[0].text
    assert notes[0].type[0].code == "34117-2"


def test_open_migrates_once(tmp_path: Path) -> None:
    url = str(tmp_path / "m.db")
    RecordStore.open(url).close()
    store = RecordStore.open(url)
    with store.engine.connect() as conn:
        versions = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    assert versions == ["0002_at_rest"]
    store.close()


def test_default_url_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from medagent.record.db import default_url

    monkeypatch.setenv("MEDAGENT_DB", "sqlite:///x.db")
    assert default_url() == "sqlite:///x.db"
    monkeypatch.delenv("MEDAGENT_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_url() == f"sqlite:///{tmp_path}/medagent/medagent.db"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        # no resourceType
        ('{"id": "a"}', "line 1.resourceType"),
        # an id longer than FHIR allows (would not fit the indexed column)
        ('{"resourceType": "Patient", "id": "' + "x" * 65 + '"}', "line 1.id"),
        # not an object
        ("[1, 2]", "line 1"),
    ],
)
def test_structural_checks_without_validation(
    sqlite_store: RecordStore, tmp_path: Path, line: str, problem: str
) -> None:
    path = tmp_path / "x.ndjson"
    path.write_text(line + "\n" + '{"resourceType": "Patient", "id": "ok"}\n')
    with pytest.raises(RecordImportError) as caught:
        sqlite_store.import_file(path, validate=False)
    assert [p.path for p in caught.value.problems] == [f"{path}:{problem}"]
    assert sqlite_store.counts() == {}

"""A note as a record source: suggestions with their span, below structured data, unconfirmed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from medagent.populate import populate, with_note_suggestions
from medagent.populate.model import NOTE_SPAN
from medagent.record import RecordStore

NOTE = (
    "Outpatient review. 67-year-old man with paroxysmal atrial fibrillation. "
    "He takes aspirin 75 mg daily and drinks about 10 units of alcohol a week. "
    "Blood pressure 172/95 mm Hg. No prior stroke."
)


def _bundle(note: str) -> dict[str, object]:
    import base64

    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "p-note",
                    "gender": "male",
                    "birthDate": "1958-03-01",
                },
                "request": {"method": "PUT", "url": "Patient/p-note"},
            },
            {
                "resource": {
                    "resourceType": "Condition",
                    "id": "c-af",
                    "subject": {"reference": "Patient/p-note"},
                    "clinicalStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                "code": "active",
                            }
                        ]
                    },
                    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "49436004"}]},
                    "onsetDateTime": "2024-01-01T00:00:00Z",
                },
                "request": {"method": "PUT", "url": "Condition/c-af"},
            },
            {
                "resource": {
                    "resourceType": "DocumentReference",
                    "id": "n-1",
                    "status": "current",
                    "subject": {"reference": "Patient/p-note"},
                    "date": "2025-06-01T09:00:00Z",
                    "content": [
                        {
                            "attachment": {
                                "contentType": "text/plain",
                                "data": base64.b64encode(note.encode()).decode(),
                            }
                        }
                    ],
                },
                "request": {"method": "PUT", "url": "DocumentReference/n-1"},
            },
        ],
    }


@pytest.fixture
def store(tmp_path: object) -> Iterator[RecordStore]:
    import json
    from pathlib import Path

    base = Path(str(tmp_path))
    record = RecordStore.open(f"sqlite:///{base / 'n.db'}")
    path = base / "bundle.json"
    path.write_text(json.dumps(_bundle(NOTE)))
    record.import_paths([path])
    yield record
    record.close()


def test_note_values_are_suggested_for_unfilled_inputs_only(store: RecordStore) -> None:
    at = datetime(2025, 6, 2, tzinfo=UTC).replace(tzinfo=None)
    population = populate("has_bled", "p-note", store=store, at=at)
    offered = with_note_suggestions(population, store=store)
    assert offered.suggestions, "the note states values the record does not have"
    for input_id, suggestion in offered.suggestions.items():
        assert input_id in population.unfilled  # structured data always wins
        prov = suggestion.provenance
        assert prov.source == NOTE_SPAN
        assert prov.reference == "DocumentReference/n-1"
        assert prov.quote and NOTE[prov.span_start : prov.span_end] == prov.quote
    # Suggestions are never used without a clinician's confirmation.
    assert offered.inputs == population.inputs

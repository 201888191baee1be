"""Indexed columns of a resource, and FHIR time parsing (table-driven and Hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medagent.record.extract import index_fields, reference_id
from medagent.record.fhirtime import format_instant, parse_fhir_time

SUBJECT = {"subject": {"reference": "Patient/p"}}


@pytest.mark.parametrize(
    ("resource", "start", "end"),
    [
        # Observation: effectiveDateTime, with an offset converted to UTC
        (
            {"resourceType": "Observation", "effectiveDateTime": "2024-01-01T10:00:00+02:00"},
            datetime(2024, 1, 1, 8),
            None,
        ),
        # Observation without effective time falls back to issued
        (
            {"resourceType": "Observation", "issued": "2024-01-02T00:00:00Z"},
            datetime(2024, 1, 2),
            None,
        ),
        # Condition: onset and abatement
        (
            {
                "resourceType": "Condition",
                "onsetDateTime": "2020",
                "abatementDateTime": "2021-06",
            },
            datetime(2020, 1, 1),
            datetime(2021, 6, 1),
        ),
        # Condition with only a recorded date
        ({"resourceType": "Condition", "recordedDate": "2019-03-04"}, datetime(2019, 3, 4), None),
        # Procedure: performedPeriod
        (
            {
                "resourceType": "Procedure",
                "performedPeriod": {"start": "2022-01-01T00:00:00Z", "end": "2022-01-01T01:00:00Z"},
            },
            datetime(2022, 1, 1),
            datetime(2022, 1, 1, 1),
        ),
        # MedicationRequest: authoredOn
        (
            {"resourceType": "MedicationRequest", "authoredOn": "2023-05-05"},
            datetime(2023, 5, 5),
            None,
        ),
        # DocumentReference: date
        (
            {"resourceType": "DocumentReference", "date": "2023-05-05T12:00:00Z"},
            datetime(2023, 5, 5, 12),
            None,
        ),
    ],
    ids=[
        "obs-offset",
        "obs-issued",
        "cond-partial",
        "cond-recorded",
        "proc-period",
        "medreq",
        "docref",
    ],
)
def test_index_times(resource: dict[str, Any], start: datetime, end: datetime | None) -> None:
    fields = index_fields({"id": "x", **SUBJECT, **resource})
    assert (fields.time_start, fields.time_end) == (start, end)
    assert fields.patient_id == "p"


def test_codes_include_components_and_statuses() -> None:
    fields = index_fields(
        {
            "resourceType": "Observation",
            "id": "bp",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "component": [
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}},
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]}},
            ],
            **SUBJECT,
        }
    )
    assert fields.codes == (
        ("http://loinc.org", "85354-9", False),
        ("http://loinc.org", "8480-6", True),
        ("http://loinc.org", "8462-4", True),
    )
    assert fields.status == "final"


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ({"reference": "Patient/1"}, "1"),
        ({"reference": "https://server/fhir/Patient/1"}, "1"),  # absolute URL
        ({"reference": "Group/1"}, None),  # another type
        ({"display": "no reference"}, None),
    ],
)
def test_reference_id(reference: dict[str, str], expected: str | None) -> None:
    assert reference_id(reference, "Patient") == expected


@pytest.mark.parametrize("text", ["", "yesterday", "2024-13-45", None, 5])
def test_unreadable_times_are_none(text: object) -> None:
    assert parse_fhir_time(text) is None


@given(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)),
    st.integers(min_value=-12 * 60, max_value=14 * 60),
)
def test_any_offset_parses_to_the_same_utc_instant(moment: datetime, minutes: int) -> None:
    aware = moment.replace(tzinfo=UTC).astimezone(timezone(timedelta(minutes=minutes)))
    assert parse_fhir_time(aware.isoformat()) == moment
    assert parse_fhir_time(format_instant(moment)) == moment

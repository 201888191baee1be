"""What the store indexes from a FHIR resource: patient, times, statuses and codes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from medagent.record.fhirtime import parse_fhir_time

# Where each resource type keeps its patient reference (first present wins).
_PATIENT_FIELDS = ("subject", "patient", "beneficiary")
# Resource types whose `code` (and Observation components) are indexed for look-ups.
CODED_TYPES = frozenset(
    {
        "Observation",
        "Condition",
        "MedicationRequest",
        "MedicationStatement",
        "MedicationAdministration",
        "Procedure",
        "AllergyIntolerance",
        "DiagnosticReport",
        "Immunization",
        "DocumentReference",
        "Encounter",
    }
)


@dataclass(frozen=True, slots=True)
class IndexFields:
    """The indexed columns of one resource."""

    patient_id: str | None
    time_start: datetime | None
    time_end: datetime | None
    status: str | None
    clinical_status: str | None
    verification_status: str | None
    codes: tuple[tuple[str, str, bool], ...]  # (system, code, is_component)


def _start_end(resource: dict[str, Any], prefix: str) -> tuple[datetime | None, datetime | None]:
    """Read `<prefix>DateTime`, `<prefix>Period`, `<prefix>Instant` or `<prefix>Date`."""
    for suffix in ("DateTime", "Instant", "Date"):
        if prefix + suffix in resource:
            when = parse_fhir_time(resource[prefix + suffix])
            return when, None
    period = resource.get(prefix + "Period")
    if isinstance(period, dict):
        return parse_fhir_time(period.get("start")), parse_fhir_time(period.get("end"))
    return None, None


def _times(rtype: str, r: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    if rtype in ("Observation", "DiagnosticReport"):
        start, end = _start_end(r, "effective")
        return (start or parse_fhir_time(r.get("issued"))), end
    if rtype in ("Condition", "AllergyIntolerance"):
        start, _ = _start_end(r, "onset")
        end, _ = _start_end(r, "abatement")
        return (start or parse_fhir_time(r.get("recordedDate"))), end
    if rtype == "MedicationRequest":
        return parse_fhir_time(r.get("authoredOn")), None
    if rtype in ("MedicationStatement", "MedicationAdministration"):
        start, end = _start_end(r, "effective")
        return (start or parse_fhir_time(r.get("dateAsserted"))), end
    if rtype == "Procedure":
        return _start_end(r, "performed")
    if rtype in ("Encounter", "CarePlan", "CareTeam", "Coverage"):
        period = r.get("period") or {}
        return parse_fhir_time(period.get("start")), parse_fhir_time(period.get("end"))
    if rtype == "Immunization":
        return _start_end(r, "occurrence")
    if rtype == "DocumentReference":
        context_period = (r.get("context") or {}).get("period") or {}
        return parse_fhir_time(r.get("date") or context_period.get("start")), None
    if rtype in ("Claim", "ExplanationOfBenefit"):
        return parse_fhir_time(r.get("created")), None
    return None, None


def _status_code(concept: object) -> str | None:
    if isinstance(concept, dict):
        for coding in concept.get("coding") or ():
            if isinstance(coding, dict) and coding.get("code"):
                return str(coding["code"])
    return None


def _codings(concept: object) -> list[tuple[str, str]]:
    if not isinstance(concept, dict):
        return []
    return [
        (str(c.get("system") or ""), str(c["code"]))
        for c in concept.get("coding") or ()
        if isinstance(c, dict) and c.get("code")
    ]


def reference_id(reference: object, resource_type: str) -> str | None:
    """The id in a reference `Type/id` (or an absolute URL ending so) to a resource of that type."""
    if not isinstance(reference, dict):
        return None
    ref = reference.get("reference")
    if not isinstance(ref, str):
        return None
    parts = ref.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == resource_type:
        return parts[-1]
    return None


def index_fields(resource: dict[str, Any]) -> IndexFields:
    """Compute the indexed columns of a resource whose references are already `Type/id`."""
    rtype = str(resource["resourceType"])
    if rtype == "Patient":
        patient_id: str | None = str(resource["id"])
    else:
        patient_id = None
        for field in _PATIENT_FIELDS:
            patient_id = reference_id(resource.get(field), "Patient")
            if patient_id:
                break
    start, end = _times(rtype, resource)
    codes: list[tuple[str, str, bool]] = []
    if rtype in CODED_TYPES:
        concept_field = {
            "MedicationRequest": "medicationCodeableConcept",
            "MedicationStatement": "medicationCodeableConcept",
            "MedicationAdministration": "medicationCodeableConcept",
            "Immunization": "vaccineCode",
            "DocumentReference": "type",
        }.get(rtype, "code")
        codes.extend((s, c, False) for s, c in _codings(resource.get(concept_field)))
        if rtype == "Encounter":
            for concept in resource.get("type") or ():
                codes.extend((s, c, False) for s, c in _codings(concept))
        for component in resource.get("component") or ():
            if isinstance(component, dict):
                codes.extend((s, c, True) for s, c in _codings(component.get("code")))
    status = resource.get("status")
    return IndexFields(
        patient_id=patient_id,
        time_start=start,
        time_end=end,
        status=str(status) if isinstance(status, str) else None,
        clinical_status=_status_code(resource.get("clinicalStatus")),
        verification_status=_status_code(resource.get("verificationStatus")),
        codes=tuple(dict.fromkeys(codes)),
    )

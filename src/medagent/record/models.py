"""What the record's query API returns: small frozen views over FHIR resources."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10_SYSTEMS = ("http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10")
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"

# Short names accepted wherever a code system is asked for.
SYSTEM_ALIASES: dict[str, tuple[str, ...]] = {
    "loinc": (LOINC,),
    "snomed": (SNOMED,),
    "sct": (SNOMED,),
    "icd10": ICD10_SYSTEMS,
    "icd-10": ICD10_SYSTEMS,
    "icd10cm": (ICD10_SYSTEMS[0],),
    "rxnorm": (RXNORM,),
}


def systems_for(system: str) -> tuple[str, ...]:
    """The code-system URIs a short name (`loinc`, `snomed`, `icd10`, …) or a URI stands for."""
    return SYSTEM_ALIASES.get(system.lower(), (system,))


@dataclass(frozen=True, slots=True)
class Coding:
    """One code with its system and display text."""

    system: str
    code: str
    display: str | None = None


@dataclass(frozen=True, slots=True)
class PatientSummary:
    """A patient in the store, with the demographics later steps need."""

    id: str
    name: str
    gender: str | None
    birth_date: date | None
    deceased: datetime | bool | None
    resource_count: int = 0

    def age_at(self, when: datetime) -> int | None:
        """Age in whole years at a time (None when the birth date is unknown)."""
        if self.birth_date is None:
            return None
        b = self.birth_date
        return when.year - b.year - ((when.month, when.day) < (b.month, b.day))


@dataclass(frozen=True, slots=True)
class ObservationValue:
    """One observed value (an Observation, or one of its components) with its unit and time."""

    resource_id: str
    code: Coding
    effective: datetime | None
    status: str | None
    value: float | str | bool | None
    unit: str | None
    unit_code: str | None
    unit_system: str | None
    component: bool


@dataclass(frozen=True, slots=True)
class ConditionRecord:
    """A Condition with its codes, times and statuses."""

    resource_id: str
    codes: tuple[Coding, ...]
    onset: datetime | None
    abatement: datetime | None
    clinical_status: str | None
    verification_status: str | None
    text: str | None


@dataclass(frozen=True, slots=True)
class MedicationRecord:
    """A MedicationRequest, MedicationStatement or MedicationAdministration."""

    resource_type: str
    resource_id: str
    codes: tuple[Coding, ...]
    status: str | None
    start: datetime | None
    end: datetime | None
    text: str | None


@dataclass(frozen=True, slots=True)
class ProcedureRecord:
    """A Procedure with its codes and when it was performed."""

    resource_id: str
    codes: tuple[Coding, ...]
    status: str | None
    start: datetime | None
    end: datetime | None
    text: str | None


@dataclass(frozen=True, slots=True)
class Note:
    """The text of a DocumentReference (decoded from its attachment)."""

    resource_id: str
    date: datetime | None
    type: tuple[Coding, ...]
    content_type: str | None
    text: str


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What importing one file did."""

    source: str
    resources: int
    deleted: int
    patients: tuple[str, ...]

"""What the recommender knows about a patient: from the record at a time, or from free text."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, cast

from medagent.errors import MedAgentError
from medagent.recommend import text as textmod
from medagent.record.models import ICD10_SYSTEMS, LOINC, RXNORM, SNOMED
from medagent.scales.model import InputType, Scale, Setting

if TYPE_CHECKING:
    from medagent.record.store import RecordStore
    from medagent.scales.engine import Result

SETTINGS: tuple[str, ...] = ("ed", "icu", "ward", "clinic", "preop")
AGE_LOINC = "30525-0"
PREGNANCY_SPAN = timedelta(weeks=43)
ATC = "http://www.whocc.no/atc"
_SYSTEM_NAMES = {SNOMED: "snomed", RXNORM: "rxnorm", LOINC: "loinc", ATC: "atc"}
_SYSTEM_NAMES.update({s: "icd10" for s in ICD10_SYSTEMS})


class RecommendError(MedAgentError, ValueError):
    """A patient context or a recommendation request cannot be used."""


@dataclass(frozen=True, slots=True)
class Code:
    """A coded condition or medication of the patient (system short name, code, display)."""

    system: str  # icd10 | snomed | rxnorm | atc
    code: str
    display: str | None = None
    source: str = ""  # resource id, or "text"


@dataclass(frozen=True, slots=True)
class Obs:
    """A recent observation: LOINC code, value, unit (UCUM where known) and time."""

    loinc: str
    value: float | str | bool | None
    unit: str | None
    time: datetime | None = None
    display: str | None = None
    source: str = ""  # resource id, or the quoted text


@dataclass(frozen=True, slots=True)
class PreviousResult:
    """A scale result computed earlier, given so that it is not recommended again needlessly."""

    scale_id: str
    computed_at: datetime
    inputs: Mapping[str, Any] = field(default_factory=dict)
    result: Result | None = None


@dataclass(frozen=True, slots=True)
class PatientContext:
    """Everything the recommender uses about one patient at one time."""

    as_of: datetime
    patient_id: str | None = None
    age: float | None = None
    sex: Literal["female", "male"] | None = None
    pregnant: bool | None = None
    setting: Setting | None = None
    setting_inferred: bool = False  # read from the text, so a hint, never a reason to exclude
    department: str | None = None
    conditions: tuple[Code, ...] = ()
    medications: tuple[Code, ...] = ()
    observations: tuple[Obs, ...] = ()
    text: str = ""  # chief complaint and history as written
    previous: tuple[PreviousResult, ...] = ()
    # Inputs the free text answers, per scale id: {input id: value} (from the notes extractor).
    text_values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: Literal["record", "text"] = "text"

    def latest(self, loinc: str) -> Obs | None:
        """The most recent observation with this LOINC code."""
        found = [o for o in self.observations if o.loinc == loinc]
        if not found:
            return None
        return max(found, key=lambda o: o.time or datetime.min)


def _naive_utc(when: datetime) -> datetime:
    if when.tzinfo is not None:
        return when.astimezone(UTC).replace(tzinfo=None)
    return when


def check_setting(setting: str | None) -> Setting | None:
    """Validate a setting name (ed, icu, ward, clinic, preop)."""
    if setting is None:
        return None
    if setting not in SETTINGS:
        raise RecommendError(f"unknown setting {setting!r}; use one of {', '.join(SETTINGS)}")
    return cast(Setting, setting)


def _record_loincs(scales: Iterable[Scale]) -> list[str]:
    codes: set[str] = set()
    for scale in scales:
        for spec in scale.inputs:
            codes.update(spec.codes.loinc)
        if scale.indications is not None:
            for trigger in scale.indications.triggers:
                codes.update(trigger.loinc)
    return sorted(codes)


def from_record(
    store: RecordStore,
    patient_id: str,
    *,
    at: datetime | None = None,
    setting: str | None = None,
    department: str | None = None,
    lookback: timedelta = timedelta(days=90),
    previous: Iterable[PreviousResult] = (),
    scales: Iterable[Scale] | None = None,
) -> PatientContext:
    """The context of a patient in the record as of a time (default now; for a deceased
    patient, the time of death).

    Conditions active at that time, medications active then, the observations the scales and
    their triggers use within `lookback` before it, and the text of notes in that window.
    """
    from medagent.scales import all_scales

    chosen = list(scales) if scales is not None else all_scales()
    patient = store.patient(patient_id)
    if at is None and isinstance(patient.deceased, datetime):
        at = patient.deceased  # "now" is meaningless after death: the record as it ended
    as_of = _naive_utc(at or datetime.now(UTC))
    age = patient.age_at(as_of)
    sex = patient.gender if patient.gender in ("female", "male") else None
    conditions: list[Code] = []
    pregnant: bool | None = False if sex == "male" else None
    recent = as_of - PREGNANCY_SPAN
    for system in ("icd10", "snomed"):
        for cond in store.conditions(patient_id, system=system, active_at=as_of):
            for coding in cond.codes:
                name = _SYSTEM_NAMES.get(coding.system)
                if name != system:
                    continue
                display = coding.display or cond.text
                conditions.append(Code(name, coding.code, display, cond.resource_id))
                # A pregnancy condition counts only while a pregnancy could still be going on.
                is_pregnancy = (
                    name == "icd10" and coding.code.upper().startswith(("O", "Z33", "Z34"))
                ) or "pregnan" in (display or "").lower()
                if (
                    is_pregnancy
                    and pregnant is None
                    and (cond.onset is None or cond.onset >= recent)
                ):
                    pregnant = True
    medications: list[Code] = []
    for med in store.medications(patient_id, until=as_of):
        active = med.status in ("active", "on-hold", "intended") or (
            med.end is not None and med.end > as_of
        )
        if not active:
            continue
        for coding in med.codes:
            name = _SYSTEM_NAMES.get(coding.system)
            if name in ("rxnorm", "atc"):
                medications.append(
                    Code(name, coding.code, coding.display or med.text, med.resource_id)
                )
    since = as_of - lookback
    observations = [
        Obs(
            loinc=o.code.code,
            value=o.value,
            unit=o.unit_code or o.unit,
            time=o.effective,
            display=o.code.display,
            source=o.resource_id,
        )
        for o in store.observations(
            patient_id,
            codes=_record_loincs(chosen),
            since=since,
            until=as_of,
            statuses=("final", "amended", "corrected", "preliminary"),
        )
        if o.value is not None
    ]
    notes = store.notes(patient_id, since=since, until=as_of)
    text = notes[-1].text if notes else ""
    return PatientContext(
        as_of=as_of,
        patient_id=patient_id,
        age=float(age) if age is not None else None,
        sex=cast(Literal["female", "male"] | None, sex),
        pregnant=pregnant,
        setting=check_setting(setting),
        department=department,
        conditions=tuple(conditions),
        medications=tuple(medications),
        observations=tuple(observations),
        text=text,
        previous=tuple(previous),
        source="record",
    )


def _text_values(scales: Iterable[Scale], text: str) -> tuple[dict[str, dict[str, Any]], list[Obs]]:
    """What the notes extractor reads from the text for each scale, and the lab/vital values."""
    try:
        from medagent.notes.rules import candidates
    except ImportError:  # the notes extractor is optional
        return {}, []
    values: dict[str, dict[str, Any]] = {}
    observations: dict[str, Obs] = {}
    for scale in scales:
        try:
            found = candidates(scale, text)
        except MedAgentError:
            continue
        chosen: dict[str, Any] = {}
        for input_id, cands in found.items():
            if not cands:
                continue
            affirmed = [c for c in cands if c.assertion == "affirmed" and not c.historical]
            pick = (affirmed or cands)[0]
            chosen[input_id] = pick.value
            spec = scale.input(input_id)
            if spec.type is InputType.QUANTITY and spec.codes.loinc:
                number, unit = _number_unit(pick.value, spec.unit)
                if number is not None:
                    for loinc in spec.codes.loinc:
                        observations.setdefault(
                            loinc,
                            Obs(loinc, number, unit, None, spec.label, pick.span.text),
                        )
        if chosen:
            values[scale.id] = chosen
    return values, list(observations.values())


def _number_unit(value: Any, default_unit: str | None) -> tuple[float | None, str | None]:
    if isinstance(value, tuple) and len(value) == 2:
        try:
            return float(value[0]), str(value[1])
        except (TypeError, ValueError):
            return None, None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), default_unit
    return None, None


def from_text(
    text: str,
    *,
    setting: str | None = None,
    department: str | None = None,
    at: datetime | None = None,
    previous: Iterable[PreviousResult] = (),
    scales: Iterable[Scale] | None = None,
    extract: bool = True,
) -> PatientContext:
    """The context of a patient described in free text (English or Simplified Chinese).

    Age, sex and pregnancy are read from the text; lab and vital values (with units) and the
    inputs each scale needs are read by the notes extractor when it is installed (`extract`).
    Complaint and finding terms are matched later, by the recommender, with negation handled.
    """
    from medagent.scales import all_scales

    if not text.strip():
        raise RecommendError("the text is empty")
    from medagent.recommend.drugs import read_medications

    chosen = list(scales) if scales is not None else all_scales()
    values, observations = _text_values(chosen, text) if extract else ({}, [])
    sex = textmod.read_sex(text)
    pregnant = textmod.read_pregnancy(text)
    if sex == "male":
        pregnant = False
    explicit = check_setting(setting)
    inferred = None if explicit is not None else textmod.read_setting(text)
    return PatientContext(
        as_of=_naive_utc(at or datetime.now(UTC)),
        age=textmod.read_age(text),
        sex=cast(Literal["female", "male"] | None, sex),
        pregnant=pregnant,
        setting=explicit or cast(Setting | None, inferred),
        setting_inferred=explicit is None and inferred is not None,
        department=department,
        medications=read_medications(text),
        observations=tuple(observations),
        text=text,
        previous=tuple(previous),
        text_values=values,
        source="text",
    )

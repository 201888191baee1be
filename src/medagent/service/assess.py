"""Service-layer operations over the library: populate, score, recommend, store and re-explain."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from medagent.scales import Scale, evaluate, get_scale, parse_scale
from medagent.service import db
from medagent.service.problems import ProblemError, not_found

if TYPE_CHECKING:
    from medagent.populate import Override, Population
    from medagent.recommend import Recommendation
    from medagent.record.store import RecordStore
    from medagent.scales.engine import Result
    from medagent.service.state import ServiceState


def scale_or_404(scale_id: str) -> Scale:
    """The scale with this id, or 404 problem details."""
    from medagent.errors import UnknownScaleError

    try:
        return get_scale(scale_id)
    except UnknownScaleError as exc:
        raise not_found(f"no scale {scale_id!r} in the library") from exc


def patient_or_404(store: RecordStore, patient_id: str) -> None:
    """404 problem details unless the patient is in the record."""
    from medagent.record.errors import ResourceNotFoundError

    try:
        store.patient(patient_id)
    except (ResourceNotFoundError, KeyError) as exc:
        raise not_found(f"no patient {patient_id!r} in the record") from exc


def definition_of(scale: Scale) -> dict[str, Any]:
    """The scale definition as JSON-ready data that `parse_scale` reads back unchanged."""
    data: dict[str, Any] = scale.model_dump(mode="json", exclude_defaults=True, by_alias=True)
    return data


def numeric(value: float | date | None) -> float | None:
    """The value of a result as a number (dates have none)."""
    return float(value) if isinstance(value, (int, float)) else None


def populate_for(
    store: RecordStore,
    patient_id: str,
    *,
    scale: Scale,
    at: datetime | None = None,
    overrides: list[Override] | None = None,
) -> Population:
    """The scale's inputs for this patient from the record, with provenance and overrides."""
    from medagent.populate import PopulateError, populate

    try:
        return populate(scale, patient_id, store=store, at=at, overrides=overrides or [])
    except PopulateError as exc:
        raise ProblemError(422, "Cannot populate", detail=str(exc)) from exc


def recommend_for(
    store: RecordStore,
    patient_id: str,
    *,
    at: datetime | None = None,
    setting: str | None = None,
    limit: int = 5,
) -> Recommendation:
    """The recommended scales for a patient in the record."""
    from medagent.recommend import RecommendError, from_record, recommend

    try:
        context = from_record(store, patient_id, at=at, setting=setting)
        return recommend(context, limit=limit)
    except RecommendError as exc:
        raise ProblemError(422, "Cannot recommend", detail=str(exc)) from exc


@dataclass(frozen=True, slots=True)
class Assessment:
    """A stored assessment with the live result behind it."""

    id: str
    population: Population
    result: Result

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "population": self.population.to_dict(),
            "result": self.result.to_dict(),
        }


def assess_patient(
    state: ServiceState,
    *,
    patient_id: str,
    scale: Scale,
    user: str,
    source: str,
) -> Assessment:
    """Populate, score and store one assessment (stored overrides included)."""
    from medagent.populate import stored_overrides
    from medagent.record.audited import score_detail
    from medagent.service.security import audit_event, require_audit_context

    require_audit_context()
    population = populate_for(state.store, patient_id, scale=scale)
    evaluation = population.evaluate()
    result = evaluation.result
    overrides = stored_overrides(state.store, scale_id=scale.id, patient_id=patient_id)
    new_id = db.save_assessment(
        state.engine,
        patient_id=patient_id,
        scale_id=scale.id,
        scale_version=scale.version,
        scale_definition=definition_of(scale),
        inputs={k: _jsonable(v) for k, v in population.inputs.items()},
        provenance={k: p.to_dict() for k, p in evaluation.provenance.items()},
        overrides=[
            {
                "input": o.input_id,
                "value": o.value,
                "user": o.user,
                "entered_at": o.entered_at.isoformat() + "Z",
            }
            for o in overrides
        ],
        result=result.to_dict(),
        value=numeric(result.value),
        display=result.display,
        band=result.band.label if result.band else None,
        complete=result.complete,
        source=source,
        user=user,
    )
    audit_event(
        state,
        action="score",
        patient_id=patient_id,
        detail=f"{score_detail(result)}, stored as assessment {new_id} ({source})",
    )
    return Assessment(new_id, population, result)


def store_answers(
    state: ServiceState,
    *,
    patient_id: str,
    scale: Scale,
    answers: dict[str, Any],
    user: str,
    source: str,
) -> tuple[str, Result]:
    """Score answers given directly (API or patient link); stores a QuestionnaireResponse too."""
    from medagent.record.audited import score_detail
    from medagent.sdc import questionnaire_response
    from medagent.service.security import audit_event, require_audit_context

    require_audit_context()
    result = evaluate(scale, answers)  # InputError → 422 with every problem
    now = datetime.now(UTC)
    qr = questionnaire_response(result, subject=f"Patient/{patient_id}", authored=now)
    provenance = {
        k: {"source": source, "entered_by": user, "entered_at": now.isoformat()} for k in answers
    }
    new_id = db.save_assessment(
        state.engine,
        patient_id=patient_id,
        scale_id=scale.id,
        scale_version=scale.version,
        scale_definition=definition_of(scale),
        inputs={k: _jsonable(v) for k, v in result.inputs.items()},
        provenance=provenance,
        overrides=[],
        result=result.to_dict(),
        value=numeric(result.value),
        display=result.display,
        band=result.band.label if result.band else None,
        complete=result.complete,
        source=source,
        user=user,
        questionnaire_response=qr,
    )
    audit_event(
        state,
        action="score",
        patient_id=patient_id,
        detail=f"{score_detail(result)}, from answers ({', '.join(sorted(answers))}),"
        f" stored as assessment {new_id} ({source})",
    )
    return new_id, result


def reexplain(row: db.AssessmentRow) -> Result:
    """Recompute a stored assessment with the scale definition it was made with."""
    scale = parse_scale(json.dumps(row.scale_definition), source=f"assessment {row.id}")
    return evaluate(scale, row.inputs)


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)

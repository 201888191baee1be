"""Patient data: population, recommendation, assessments, overrides and self-assessment links."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from medagent.record.audited import score_detail
from medagent.service import db
from medagent.service.assess import (
    assess_patient,
    patient_or_404,
    populate_for,
    recommend_for,
    reexplain,
    scale_or_404,
    store_answers,
)
from medagent.service.problems import ProblemError, not_found
from medagent.service.schemas import (
    AssessmentRequest,
    LinkRequest,
    LinkResponse,
    OverrideRequest,
)
from medagent.service.security import GuardDep, audit_event, issue_link
from medagent.service.state import StateDep

router = APIRouter(prefix="/api/patients", tags=["patients"])


@router.get("")
def list_patients(state: StateDep, guard: GuardDep) -> list[dict[str, Any]]:
    """The patients in the record."""
    guard.check("Patient", "s", reason="list patients")
    return [
        {
            "id": p.id,
            "name": p.name,
            "gender": p.gender,
            "birth_date": p.birth_date.isoformat() if p.birth_date else None,
        }
        for p in state.store.patients()
    ]


@router.get("/{patient_id}/recommendations")
def recommendations(
    patient_id: str,
    state: StateDep,
    *,
    guard: GuardDep,
    setting: Annotated[str | None, Query(pattern=r"^(ed|icu|ward|clinic|preop)$")] = None,
    limit: Annotated[int, Query(ge=1, le=10)] = 5,
) -> dict[str, Any]:
    """The scales that fit the patient now, with reasons and exclusions."""
    guard.check("Patient", "r", patient_id=patient_id, reason="recommend scales")
    patient_or_404(state.store, patient_id)
    return recommend_for(state.store, patient_id, setting=setting, limit=limit).to_dict()


@router.get("/{patient_id}/scales/{scale_id}/population")
def population(
    patient_id: str, scale_id: str, *, state: StateDep, guard: GuardDep
) -> dict[str, Any]:
    """The scale's inputs filled from the record, each with provenance, and the result."""
    guard.check("Observation", "r", patient_id=patient_id, reason=f"populate {scale_id}")
    scale = scale_or_404(scale_id)
    patient_or_404(state.store, patient_id)
    pop = populate_for(state.store, patient_id, scale=scale)
    evaluation = pop.evaluate()
    audit_event(
        state, action="score", patient_id=patient_id, detail=score_detail(evaluation.result)
    )
    return {**pop.to_dict(), "evaluation": evaluation.to_dict()}


@router.post("/{patient_id}/scales/{scale_id}/assessments", status_code=201)
def create_assessment(
    patient_id: str,
    scale_id: str,
    *,
    body: AssessmentRequest,
    state: StateDep,
    guard: GuardDep,
) -> dict[str, Any]:
    """Store an assessment: from given answers, or populated from the record."""
    guard.check("QuestionnaireResponse", "c", patient_id=patient_id, reason=f"assess {scale_id}")
    scale = scale_or_404(scale_id)
    patient_or_404(state.store, patient_id)
    user = guard.principal.subject
    if body.answers is not None:
        new_id, result = store_answers(
            state, patient_id=patient_id, scale=scale, answers=body.answers, user=user, source="api"
        )
        return {"id": new_id, "result": result.to_dict()}
    done = assess_patient(state, patient_id=patient_id, scale=scale, user=user, source="api")
    return done.to_dict()


@router.post("/{patient_id}/scales/{scale_id}/overrides", status_code=201)
def create_override(
    patient_id: str,
    scale_id: str,
    *,
    body: OverrideRequest,
    state: StateDep,
    guard: GuardDep,
) -> dict[str, Any]:
    """Record a clinician's value for one input (who and when), then re-assess."""
    from medagent.populate import PopulateError, save_override

    guard.check("Observation", "c", patient_id=patient_id, reason=f"override {scale_id}")
    scale = scale_or_404(scale_id)
    patient_or_404(state.store, patient_id)
    user = guard.principal.subject
    try:
        override = save_override(
            state.store,
            scale_id=scale.id,
            patient_id=patient_id,
            input_id=body.input,
            value=body.value,
            user=user,
        )
    except PopulateError as exc:
        raise ProblemError(
            422,
            "Invalid override",
            detail=str(exc),
            extra={"errors": [{"input": body.input, "message": str(exc)}]},
        ) from exc
    audit_event(
        state,
        action="override",
        patient_id=patient_id,
        detail=f"{scale.id}.{override.input_id} entered by user {user}",
    )
    done = assess_patient(state, patient_id=patient_id, scale=scale, user=user, source="override")
    return {
        "override": {
            "input": override.input_id,
            "value": override.value,
            "user": override.user,
            "entered_at": override.entered_at.isoformat() + "Z",
        },
        "assessment": done.to_dict(),
    }


@router.get("/{patient_id}/assessments")
def list_assessments(
    patient_id: str,
    state: StateDep,
    *,
    guard: GuardDep,
    scale: Annotated[str | None, Query(max_length=64)] = None,
) -> list[dict[str, Any]]:
    """Stored assessments of the patient (of one scale with `scale=`), oldest first."""
    guard.check("QuestionnaireResponse", "s", patient_id=patient_id, reason="list assessments")
    rows = db.list_assessments(state.engine, patient_id=patient_id, scale_id=scale)
    audit_event(
        state,
        action="read",
        patient_id=patient_id,
        detail=f"stored assessments{f' of {scale}' if scale else ''} ({len(rows)})",
    )
    return [r.summary() for r in rows]


@router.get("/{patient_id}/assessments/{assessment_id}")
def show_assessment(
    patient_id: str, assessment_id: str, *, state: StateDep, guard: GuardDep
) -> dict[str, Any]:
    """One stored assessment, re-explained with the scale definition it was made with."""
    guard.check("QuestionnaireResponse", "r", patient_id=patient_id, reason="read assessment")
    row = db.get_assessment(state.engine, assessment_id)
    if row is None or row.patient_id != patient_id:
        raise not_found(f"no assessment {assessment_id!r} for this patient")
    audit_event(state, action="read", patient_id=patient_id, detail=f"assessment {row.id}")
    again = reexplain(row)
    return {
        **row.summary(),
        "inputs": row.inputs,
        "provenance": row.provenance,
        "overrides": row.overrides,
        "result": row.result,
        "questionnaire_response": row.questionnaire_response,
        "reexplained": {
            "scale_version": again.scale_version,
            "display": again.display,
            "explanation": again.explanation,
        },
    }


@router.post("/{patient_id}/links", status_code=201, response_model=LinkResponse)
def create_link(
    patient_id: str, body: LinkRequest, *, state: StateDep, guard: GuardDep
) -> LinkResponse:
    """A signed, expiring self-assessment link for one patient and patient-answerable scales."""
    guard.check("QuestionnaireResponse", "c", patient_id=patient_id, reason="self-assessment link")
    patient_or_404(state.store, patient_id)
    for scale_id in body.scales:
        scale = scale_or_404(scale_id)
        if not any("patient" in i.answerable_by for i in scale.inputs):
            raise ProblemError(
                422, "Not patient-answerable", detail=f"{scale_id} has no patient items"
            )
    minutes = min(body.minutes, state.settings.link_ttl_max_minutes)
    token, link_id, exp = issue_link(
        state,
        patient_id=patient_id,
        scales=body.scales,
        minutes=minutes,
        issuer=guard.principal.subject,
    )
    audit_event(
        state,
        action="link",
        patient_id=patient_id,
        detail=f"self-assessment link {link_id} for {', '.join(body.scales)}, valid {minutes} min",
    )
    return LinkResponse(
        url=f"{state.settings.base_url}/p/{token}",
        link_id=link_id,
        expires_at=exp,
        scales=body.scales,
    )

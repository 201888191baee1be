"""The clinician's pages: patients, recommendations, a scale with provenance, overrides, history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from medagent.errors import InputError
from medagent.record.audited import score_detail
from medagent.service import db
from medagent.service.assess import (
    assess_patient,
    patient_or_404,
    populate_for,
    recommend_for,
    scale_or_404,
)
from medagent.service.problems import ProblemError
from medagent.service.security import GuardDep, audit_event, issue_link
from medagent.service.state import StateDep
from medagent.service.views import render, trend_svg

router = APIRouter(prefix="/app", tags=["pages"], include_in_schema=False)

SELF_ASSESSMENT_SCALES = ("phq9", "gad7", "cat_copd", "esas_r")


@router.get("", response_class=HTMLResponse)
def patients_page(request: Request, state: StateDep, *, guard: GuardDep) -> Response:
    """Every patient in the record."""
    guard.check("Patient", "s", reason="patient list page")
    return render(request, "patients.html", patients=state.store.patients(), user=guard.principal)


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def patient_page(
    patient_id: str, request: Request, *, state: StateDep, guard: GuardDep
) -> Response:
    """One patient: recommended scales with reasons, assessments, self-assessment links."""
    guard.check("Patient", "r", patient_id=patient_id, reason="patient page")
    patient_or_404(state.store, patient_id)
    rec = recommend_for(state.store, patient_id)
    rows = db.list_assessments(state.engine, patient_id=patient_id)
    return render(
        request,
        "patient.html",
        patient=state.store.patient(patient_id),
        entries=rec.entries,
        assessments=rows[::-1],
        link_scales=SELF_ASSESSMENT_SCALES,
        user=guard.principal,
    )


def note_suggestions(store: Any, population: Any) -> dict[str, dict[str, Any]]:
    """Values the latest note states for inputs the record left unfilled, with the note span.

    They are offered, not applied: the clinician accepts one with a click, which records it as
    an override (who and when), so nothing read from free text is used unconfirmed.
    """
    from medagent.populate import with_note_suggestions

    offered = with_note_suggestions(population, store=store).suggestions
    if not offered:
        return {}
    out: dict[str, dict[str, Any]] = {}
    texts: dict[str, str] = {}
    for input_id, filled in offered.items():
        prov = filled.provenance
        note_id = prov.resource_id or ""
        if note_id not in texts:
            notes = store.notes(population.patient_id)
            texts[note_id] = next((n.text for n in notes if n.resource_id == note_id), "")
        text = texts[note_id]
        start, end = prov.span_start or 0, prov.span_end or 0
        value = filled.value
        shown = "true" if value is True else "false" if value is False else str(value)
        if isinstance(value, float):
            shown = f"{value:g} {filled.unit or ''}".strip()
        out[input_id] = {
            "value": shown,
            "span": prov.quote,
            "before": text[max(0, start - 80) : start],
            "after": text[end : end + 80],
            "reference": prov.reference,
            "date": prov.effective.isoformat(timespec="minutes") if prov.effective else None,
            "rule": prov.rule,
        }
    return out


def _provenance_view(prov: Any) -> dict[str, Any]:
    data: dict[str, Any] = prov.to_dict()
    return data


@router.get("/patients/{patient_id}/scales/{scale_id}", response_class=HTMLResponse)
def scale_page(
    patient_id: str, scale_id: str, *, request: Request, state: StateDep, guard: GuardDep
) -> Response:
    """A scale as a form: filled items with their source, overrides, score, guidance, history."""
    guard.check("Observation", "r", patient_id=patient_id, reason=f"scale page {scale_id}")
    scale = scale_or_404(scale_id)
    patient_or_404(state.store, patient_id)
    population = populate_for(state.store, patient_id, scale=scale)
    problems: list[str] = []
    try:
        result: Any = population.evaluate().result
        audit_event(state, action="score", patient_id=patient_id, detail=score_detail(result))
    except InputError as exc:  # a formula refuses these inputs together: show why, keep the form
        result = None
        problems = [str(p) for p in exc.problems]
    history = db.list_assessments(state.engine, patient_id=patient_id, scale_id=scale.id)
    from_note = note_suggestions(state.store, population)
    items = []
    for spec in scale.inputs:
        filled = population.filled.get(spec.id)
        unfilled = population.unfilled.get(spec.id)
        items.append(
            {
                "spec": spec,
                "value": None if filled is None else filled.value,
                "unit": filled.unit if filled else spec.unit,
                "provenance": _provenance_view(filled.provenance) if filled else None,
                "unfilled": unfilled,
                "note": from_note.get(spec.id),
            }
        )
    return render(
        request,
        "scale.html",
        patient=state.store.patient(patient_id),
        scale=scale,
        items=items,
        result=result,
        problems=problems,
        notes=population.notes,
        history=history,
        trend=trend_svg([r.value for r in history]),
        user=guard.principal,
    )


@router.post("/patients/{patient_id}/scales/{scale_id}/override")
def override_form(
    patient_id: str,
    scale_id: str,
    *,
    input_id: Annotated[str, Form(alias="input", max_length=64)],
    value: Annotated[str, Form(min_length=1, max_length=200)],
    state: StateDep,
    guard: GuardDep,
) -> Response:
    """Record the clinician's value (who and when), store the new assessment, show the page."""
    from medagent.populate import PopulateError, save_override

    guard.check("Observation", "c", patient_id=patient_id, reason=f"override {scale_id}")
    scale = scale_or_404(scale_id)
    patient_or_404(state.store, patient_id)
    user = guard.principal.subject
    try:
        saved = save_override(
            state.store,
            scale_id=scale.id,
            patient_id=patient_id,
            input_id=input_id,
            value=value,
            user=user,
        )
    except PopulateError as exc:
        raise ProblemError(422, "Invalid override", detail=str(exc)) from exc
    audit_event(
        state,
        action="override",
        patient_id=patient_id,
        detail=f"{scale.id}.{saved.input_id} entered by user {user}",
    )
    assess_patient(state, patient_id=patient_id, scale=scale, user=user, source="override")
    return RedirectResponse(f"/app/patients/{patient_id}/scales/{scale.id}", status_code=303)


@router.post("/patients/{patient_id}/scales/{scale_id}/assess")
def assess_form(patient_id: str, scale_id: str, *, state: StateDep, guard: GuardDep) -> Response:
    """Store the assessment as shown."""
    guard.check("QuestionnaireResponse", "c", patient_id=patient_id, reason=f"assess {scale_id}")
    scale = scale_or_404(scale_id)
    patient_or_404(state.store, patient_id)
    assess_patient(
        state, patient_id=patient_id, scale=scale, user=guard.principal.subject, source="clinician"
    )
    return RedirectResponse(f"/app/patients/{patient_id}/scales/{scale.id}", status_code=303)


@router.post("/patients/{patient_id}/links", response_class=HTMLResponse)
def link_form(
    patient_id: str,
    request: Request,
    *,
    scales: Annotated[list[str], Form(min_length=1, max_length=8)],
    state: StateDep,
    guard: GuardDep,
    minutes: Annotated[int, Form(ge=1, le=7 * 24 * 60)] = 24 * 60,
) -> Response:
    """Create a self-assessment link and show it."""
    guard.check("QuestionnaireResponse", "c", patient_id=patient_id, reason="self-assessment link")
    patient_or_404(state.store, patient_id)
    for scale_id in scales:
        scale_or_404(scale_id)
    valid = min(minutes, state.settings.link_ttl_max_minutes)
    token, link_id, exp = issue_link(
        state,
        patient_id=patient_id,
        scales=scales,
        minutes=valid,
        issuer=guard.principal.subject,
    )
    audit_event(
        state,
        action="link",
        patient_id=patient_id,
        detail=f"self-assessment link {link_id} for {', '.join(scales)}, valid {valid} min",
    )
    from datetime import UTC, datetime

    return render(
        request,
        "link.html",
        patient=state.store.patient(patient_id),
        url=f"{state.settings.base_url}/p/{token}",
        expires=datetime.fromtimestamp(exp, UTC).isoformat(timespec="minutes"),
        user=guard.principal,
    )

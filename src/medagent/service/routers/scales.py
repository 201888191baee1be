"""Scales of the library (public reference data) and scoring of given inputs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from medagent.scales import all_scales, evaluate
from medagent.service.assess import scale_or_404
from medagent.service.schemas import ScaleSummary, ScoreRequest
from medagent.service.security import CurrentPrincipal
from medagent.service.state import StateDep

router = APIRouter(prefix="/api/scales", tags=["scales"])


@router.get("", response_model=list[ScaleSummary])
def list_scales() -> list[ScaleSummary]:
    """Every scale of the library."""
    return [
        ScaleSummary(
            id=s.id,
            version=s.version,
            title=s.title,
            short_title=s.short_title,
            category=str(s.category),
            loinc=s.loinc,
            reference=s.primary_reference.link,
            patient_answerable=any("patient" in i.answerable_by for i in s.inputs),
        )
        for s in all_scales()
    ]


@router.get("/{scale_id}")
def show_scale(scale_id: str) -> dict[str, Any]:
    """The whole definition of one scale."""
    from medagent.service.assess import definition_of

    return definition_of(scale_or_404(scale_id))


@router.get("/{scale_id}/questionnaire")
def scale_questionnaire(scale_id: str, state: StateDep) -> dict[str, Any]:
    """The scale as a FHIR SDC Questionnaire."""
    from medagent.sdc import questionnaire

    return questionnaire(scale_or_404(scale_id), base=state.settings.base_url + "/fhir")


@router.post("/{scale_id}/score")
def score(scale_id: str, body: ScoreRequest, *, principal: CurrentPrincipal) -> dict[str, Any]:
    """Score given inputs (nothing stored); invalid inputs → 422 listing every problem."""
    del principal  # any authenticated caller may compute; nothing about a patient is read
    return evaluate(scale_or_404(scale_id), body.inputs).to_dict()

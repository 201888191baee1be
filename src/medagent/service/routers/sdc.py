"""FHIR SDC operations over the record: ``Questionnaire/$populate``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from medagent.errors import MedAgentError
from medagent.service.assess import patient_or_404, populate_for, scale_or_404
from medagent.service.problems import ProblemError
from medagent.service.security import GuardDep
from medagent.service.state import StateDep

router = APIRouter(prefix="/fhir/Questionnaire", tags=["sdc"])


def _scale_id(reference: str) -> str:
    """A scale id from a Questionnaire id or canonical URL (``…/Questionnaire/ID|version``)."""
    tail = reference.split("|", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return tail.replace("-", "_")


def _patient_id(subject: str) -> str:
    kind, _, ident = subject.partition("/")
    if kind != "Patient" or not ident:
        raise ProblemError(422, "Bad subject", detail=f"{subject!r} is not Patient/ID")
    return ident


def _populate(state: Any, guard: Any, *, scale_ref: str, subject: str) -> dict[str, Any]:
    from medagent.sdc.populate import populate_operation

    patient_id = _patient_id(subject)
    guard.check("Patient", "r", patient_id=patient_id, reason="SDC $populate")
    scale = scale_or_404(_scale_id(scale_ref))
    patient_or_404(state.store, patient_id)
    try:
        return populate_operation(
            populate_for(state.store, patient_id, scale=scale), base=state.settings.base_url
        )
    except MedAgentError as exc:
        raise ProblemError(422, "Cannot populate", detail=str(exc)) from exc


@router.get("/{questionnaire_id}/$populate")
def populate_instance(
    questionnaire_id: str,
    state: StateDep,
    guard: GuardDep,
    subject: Annotated[str, Query(description="Patient/ID")],
) -> dict[str, Any]:
    """A Parameters resource: the populated QuestionnaireResponse, its Provenance, the issues."""
    return _populate(state, guard, scale_ref=questionnaire_id, subject=subject)


@router.post("/$populate")
def populate_type(
    state: StateDep,
    guard: GuardDep,
    parameters: Annotated[dict[str, Any], Body(description="FHIR Parameters")],
) -> dict[str, Any]:
    """``$populate`` with Parameters naming the Questionnaire (canonical, or the resource) and
    the subject."""
    if parameters.get("resourceType") != "Parameters":
        raise ProblemError(422, "Not Parameters", detail="send a FHIR Parameters resource")
    scale_ref = subject = None
    for param in parameters.get("parameter") or []:
        if not isinstance(param, dict):
            continue
        name = param.get("name")
        if name == "subject":
            subject = (param.get("valueReference") or {}).get("reference")
        elif name == "canonical":
            scale_ref = param.get("valueCanonical") or param.get("valueUri")
        elif name == "questionnaire":
            resource = param.get("resource") or {}
            scale_ref = resource.get("url") or resource.get("id")
    if not isinstance(scale_ref, str) or not isinstance(subject, str):
        raise ProblemError(
            422,
            "Missing parameters",
            detail="$populate needs 'subject' and 'canonical' (or 'questionnaire')",
        )
    return _populate(state, guard, scale_ref=scale_ref, subject=subject)

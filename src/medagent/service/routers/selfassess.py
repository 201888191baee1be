"""The patient's self-assessment page: opened by a signed link, answered once, rate-limited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response

from medagent.errors import InputError
from medagent.record.audited import bind_audit_context
from medagent.scales import Scale, evaluate, get_scale
from medagent.scales.model import InputDef
from medagent.service import db
from medagent.service.assess import store_answers
from medagent.service.problems import ProblemError
from medagent.service.security import PatientLink, client_address, read_link
from medagent.service.state import ServiceState, StateDep
from medagent.service.views import render

router = APIRouter(prefix="/p", tags=["self-assessment"], include_in_schema=False)

Token = Annotated[str, Path(min_length=20, max_length=4096)]


def _open(state: ServiceState, request: Request, *, token: str) -> PatientLink:
    source = client_address(request)
    state.link_limiter.hit(f"link:{source}")  # 429 when a client tries too many links
    link = read_link(state, token, source=source)
    if db.link_used(state.engine, link.link_id):
        raise ProblemError(410, "Link used", detail="this link was already used; ask for a new one")
    return link


def _patient_items(scale: Scale) -> list[InputDef]:
    return [i for i in scale.inputs if "patient" in i.answerable_by]


@router.get("/{token}", response_class=HTMLResponse)
def form(token: Token, request: Request, *, state: StateDep) -> Response:
    """The questions of the link's scales that a patient can answer (nothing else is shown)."""
    link = _open(state, request, token=token)
    scales = [get_scale(s) for s in link.scales]
    state.audit.append(
        actor=link.principal.subject,
        action="open-link",
        resource=f"Patient/{link.patient_id}",
        source=client_address(request),
        reason="patient self-assessment",
        detail=f"link {link.link_id} issued by {link.issued_by}: {', '.join(link.scales)}",
    )
    return render(
        request,
        "selfassess.html",
        scales=[(s, _patient_items(s)) for s in scales],
        token=token,
    )


@router.post("/{token}", response_class=HTMLResponse)
async def submit(token: Token, request: Request, *, state: StateDep) -> Response:
    """Score and store the answers as QuestionnaireResponses; the link is used up."""
    link = _open(state, request, token=token)
    form_data = await request.form()
    answers: dict[str, dict[str, object]] = {}
    problems = []
    for scale_id in link.scales:
        scale = get_scale(scale_id)
        given: dict[str, object] = {}
        for spec in _patient_items(scale):
            raw = form_data.get(f"{scale.id}.{spec.id}")
            if isinstance(raw, str) and raw.strip():
                given[spec.id] = raw.strip()
        try:
            evaluate(scale, given)
        except InputError as exc:
            problems.append(exc)
        answers[scale.id] = given
    if problems:
        raise problems[0]
    source = client_address(request)
    state.authorizer.check(
        link.principal,
        resource="QuestionnaireResponse",
        action="c",
        patient_id=link.patient_id,
        source=source,
        reason="patient self-assessment",
    )
    bind_audit_context(
        actor=link.principal.subject, source=source, reason="patient self-assessment"
    )
    if not db.claim_link(state.engine, link_id=link.link_id, patient_id=link.patient_id):
        raise ProblemError(410, "Link used", detail="this link was already used; ask for a new one")
    for scale_id, given in answers.items():
        store_answers(
            state,
            patient_id=link.patient_id,
            scale=get_scale(scale_id),
            answers=given,
            user=link.principal.subject,
            source="patient",
        )
    return render(request, "selfassess_done.html")

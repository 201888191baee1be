"""CDS Hooks 2.0: discovery, the hook services and their feedback endpoints."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from medagent.record.audited import bind_audit_context
from medagent.secure.access import Principal, Role
from medagent.service import cds, db
from medagent.service.problems import ProblemError, not_found
from medagent.service.schemas import CdsRequest, CdsResponse, FeedbackRequest
from medagent.service.security import (
    audit_failed_authentication,
    client_address,
    unverified_subject,
)
from medagent.service.state import ServiceState, StateDep

router = APIRouter(prefix="/cds-services", tags=["cds-hooks"])

AuthHeader = Annotated[str | None, Header(alias="Authorization")]


def cds_client(
    service_id: str, request: Request, *, state: StateDep, authorization: AuthHeader = None
) -> Principal:
    """Verify the CDS client JWT (audience: this service's endpoint) before anything else."""
    auth = authorization
    base = state.settings.base_url
    audience = [f"{base}/cds-services/{service_id}", f"{base}/cds-services", base]
    try:
        claims = state.cds.verify(auth, audience=audience)
    except ProblemError as exc:
        token = (auth or "").partition(" ")[2].strip()
        audit_failed_authentication(
            state,
            actor=f"cds:{unverified_subject(token, 'iss')}" if token else "(no client JWT)",
            source=client_address(request),
            reason=f"CDS Hooks client JWT for {service_id}"[:200],
            why=str(exc.detail),
        )
        raise
    principal = Principal.grant(f"cds:{claims['iss']}", Role.CDS_CLIENT)
    request.state.principal = principal
    return principal


CdsClient = Annotated[Principal, Depends(cds_client)]


def _service(service_id: str) -> str:
    hook = cds.SERVICE_HOOKS.get(service_id)
    if hook is None:
        raise not_found(f"no CDS service {service_id!r}")
    return str(hook)


@router.get("")
def discovery() -> dict[str, Any]:
    """The CDS services this server offers, with their prefetch templates."""
    return {"services": cds.services()}


def _run_hook(
    state: ServiceState,
    request: Request,
    *,
    service_id: str,
    body: CdsRequest,
    principal: Principal,
) -> dict[str, Any]:
    hook = _service(service_id)
    if body.hook != hook:
        raise ProblemError(
            400, "Wrong hook", detail=f"{service_id} answers {hook}, not {body.hook}"
        )
    patient_id = body.context.get("patientId")
    if not isinstance(patient_id, str) or not patient_id:
        raise ProblemError(400, "Missing context", detail="context.patientId is required")
    source = client_address(request)
    state.authorizer.check(
        principal,
        resource="Patient",
        action="r",
        patient_id=patient_id,
        source=source,
        reason=f"CDS Hooks {hook}",
    )
    bind_audit_context(actor=principal.subject, source=source, reason=f"CDS Hooks {hook}")
    prefetched = body.prefetch or {}
    origin = "cds-prefetch"
    if all(k in prefetched and prefetched[k] is not None for k in cds.prefetch_templates()):
        resources = cds.resources_from_prefetch(prefetched)
    elif body.fhirServer:
        allowed = state.settings.cds_fhir_allow
        if body.fhirServer.rstrip("/") not in {a.rstrip("/") for a in allowed}:
            raise ProblemError(
                412,
                "Prefetch missing",
                detail="fhirServer is not one this service may read (MEDAGENT_CDS_FHIR); "
                "send the prefetch",
            )
        auth_data = body.fhirAuthorization.model_dump() if body.fhirAuthorization else None
        resources = cds.fetch_from_server(body.fhirServer, auth_data, patient_id=patient_id)
        origin = f"FHIR server {body.fhirServer}"
    else:
        raise ProblemError(
            412,
            "Prefetch missing",
            detail="send the prefetch or a fhirServer with fhirAuthorization",
        )
    if not any(r.get("resourceType") == "Patient" and r.get("id") == patient_id for r in resources):
        raise ProblemError(
            412, "Patient missing", detail="the prefetch holds no Patient of the context"
        )
    base = state.settings.base_url
    with cds.scratch_store(resources, audit=state.audit, source=origin) as store:
        if hook == "patient-view":
            cards = cds.patient_view_cards(base_url=base, patient_id=patient_id, store=store)
        else:
            cards = cds.order_cards(
                base_url=base,
                patient_id=patient_id,
                store=store,
                draft_orders=body.context.get("draftOrders"),
            )
    return {"cards": cards, "systemActions": []}


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its `$defs` inlined (for `openapi_extra`)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(dict(defs[ref.removeprefix("#/$defs/")]))
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    inlined: dict[str, Any] = walk(schema)
    return inlined


async def cds_request(request: Request) -> CdsRequest:
    """The hook request, parsed with orjson: prefetch bodies are megabytes of FHIR JSON."""
    try:
        data = orjson.loads(await request.body())
        return CdsRequest.model_validate(data)
    except orjson.JSONDecodeError as exc:
        raise RequestValidationError(
            [{"loc": ("body",), "msg": f"not JSON: {exc}", "type": "json_invalid"}]
        ) from exc
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from exc


_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": _inline(CdsRequest.model_json_schema())}},
    }
}


@router.post("/{service_id}", response_model=CdsResponse, openapi_extra=_BODY)
async def call_service(
    service_id: str,
    request: Request,
    *,
    state: StateDep,
    client: CdsClient,
    body: Annotated[CdsRequest, Depends(cds_request)],
) -> dict[str, Any]:
    """Answer one hook call with cards (JWT-authenticated client)."""
    return await run_in_threadpool(
        _run_hook, state, request, service_id=service_id, body=body, principal=client
    )


@router.post("/{service_id}/feedback")
def feedback(
    service_id: str,
    body: FeedbackRequest,
    *,
    request: Request,
    state: StateDep,
    client: CdsClient,
) -> dict[str, Any]:
    """Store the client's feedback on cards (accepted or overridden)."""
    del request
    _service(service_id)
    items = [f.model_dump(exclude_none=True) for f in body.feedback]
    stored = db.save_feedback(
        state.engine, service_id=service_id, items=items, client=client.subject
    )
    return {"stored": stored}

"""Read-only FHIR R4 REST API over the record store: metadata, read, and search by patient.

Every read runs in an audit context naming the client (what the token validator says it is, or a
pseudonym of its token: the first 12 hex digits of the token's SHA-256), the client's address and
the interaction, so an :class:`~medagent.record.audited.AuditedRecordStore` records each access;
a refused token is written to the store's audit log as a failed authentication.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from medagent.record.audited import AuditedRecordStore, audit_context
from medagent.record.errors import ResourceNotFoundError
from medagent.record.fhirtime import format_instant, parse_fhir_time
from medagent.record.store import RecordStore

FHIR_JSON = "application/fhir+json"
MAX_COUNT = 1000
_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_LAST_UPDATED = re.compile(r"^(ge|gt|eq)?(.+)$")

# Accepts a bearer token (True, or the name of the client it belongs to) or refuses it (False).
TokenValidator = Callable[[str], bool | str]
ANONYMOUS = "anonymous (no authentication configured)"


class FHIRResponse(JSONResponse):
    """JSON with the FHIR media type."""

    media_type = FHIR_JSON


def _outcome(status: int, code: str, text: str) -> FHIRResponse:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }
    return FHIRResponse(body, status_code=status)


def get_store(request: Request) -> RecordStore:
    """The store the app was created with."""
    store: RecordStore = request.app.state.record_store
    return store


StoreDep = Annotated[RecordStore, Depends(get_store)]


class _UnauthorizedError(Exception):
    """Raised by `check_token`; answered with a 401 OperationOutcome."""


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def check_token(request: Request) -> None:
    """Require a bearer token the app's validator accepts, when the app has one; remember who
    the client is for the audit trail."""
    validator: TokenValidator | None = getattr(request.app.state, "token_validator", None)
    if validator is None:
        request.state.fhir_client = ANONYMOUS
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    verdict = validator(token) if scheme.lower() == "bearer" and token else False
    if not verdict:
        store = request.app.state.record_store
        if isinstance(store, AuditedRecordStore):
            store.audit.append(
                actor=f"token:{_pseudonym(token)}" if token else "(no bearer token)",
                action="authenticate",
                resource="session",
                source=_client(request),
                reason="FHIR API",
                outcome="failed: bearer token refused",
            )
        raise _UnauthorizedError
    request.state.fhir_client = (
        verdict if isinstance(verdict, str) else f"token:{_pseudonym(token)}"
    )


def _pseudonym(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:12]


@contextmanager
def _audited(request: Request, reason: str) -> Iterator[None]:
    actor = getattr(request.state, "fhir_client", ANONYMOUS)
    with audit_context(actor=actor, source=_client(request), reason=reason):
        yield


router = APIRouter(prefix="/fhir", tags=["fhir"], dependencies=[Depends(check_token)])


@router.get("/metadata", response_class=FHIRResponse)
def metadata(store: StoreDep, request: Request) -> dict[str, Any]:
    """CapabilityStatement: read and search-type by patient for every stored resource type."""
    types = store.resource_types()
    search_params = [
        {"name": "patient", "type": "reference"},
        {"name": "_id", "type": "token"},
        {"name": "_lastUpdated", "type": "date"},
        {"name": "_since", "type": "date", "documentation": "lastUpdated ≥ this instant"},
        {"name": "_count", "type": "number"},
    ]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": format_instant(datetime.now(UTC).replace(tzinfo=None)),
        "kind": "instance",
        "software": {"name": "medagent"},
        "implementation": {
            "description": "medagent record store (read-only)",
            "url": str(request.url_for("metadata")).removesuffix("/metadata"),
        },
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "resource": [
                    {
                        "type": rtype,
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": search_params,
                    }
                    for rtype in types
                ],
            }
        ],
    }


@router.get("/{resource_type}/{resource_id}", response_class=FHIRResponse, response_model=None)
def read(resource_type: str, resource_id: str, *, request: Request, store: StoreDep) -> Any:
    """One resource by type and id."""
    if not _TYPE.match(resource_type):
        return _outcome(400, "invalid", f"not a resource type: {resource_type}")
    try:
        with _audited(request, f"FHIR API read {resource_type}/{resource_id}"[:200]):
            return store.get(resource_type, resource_id)
    except ResourceNotFoundError as exc:
        return _outcome(404, "not-found", str(exc))


def _since_value(since: str | None, last_updated: str | None) -> datetime | str | None:
    raw = since
    if last_updated is not None:
        match = _LAST_UPDATED.match(last_updated)
        raw = match.group(2) if match else last_updated
    if raw is None:
        return None
    parsed = parse_fhir_time(raw)
    return parsed if parsed is not None else f"not a FHIR instant: {raw}"


@router.get("/{resource_type}", response_class=FHIRResponse, response_model=None)
def search(
    resource_type: str,
    *,
    request: Request,
    store: StoreDep,
    patient: str | None = None,
    subject: str | None = None,
    id_: Annotated[str | None, Query(alias="_id")] = None,
    count: Annotated[int, Query(alias="_count", ge=0)] = 50,
    offset: Annotated[int, Query(alias="_offset", ge=0)] = 0,
    since: Annotated[str | None, Query(alias="_since")] = None,
    last_updated: Annotated[str | None, Query(alias="_lastUpdated")] = None,
) -> Any:
    """Search a type by patient (`patient`/`subject`), `_id`, `_since`/`_lastUpdated=ge…`."""
    if not _TYPE.match(resource_type):
        return _outcome(400, "invalid", f"not a resource type: {resource_type}")
    when = _since_value(since, last_updated)
    if isinstance(when, str):
        return _outcome(400, "invalid", when)
    patient_ref = patient or subject
    patient_id = patient_ref.rsplit("/", 1)[-1] if patient_ref else None
    ids = id_.split(",") if id_ else None
    if resource_type == "Patient" and patient_id is not None:
        ids, patient_id = [patient_id], None
    count = min(count, MAX_COUNT)
    with _audited(request, f"FHIR API search {resource_type}"):
        resources, total = store.search(
            resource_type, patient=patient_id, ids=ids, since=when, count=count, offset=offset
        )
    base = str(request.url_for("read", resource_type="X", resource_id="Y")).removesuffix("/X/Y")
    links = [{"relation": "self", "url": str(request.url)}]
    if offset + count < total and count > 0:
        links.append(
            {
                "relation": "next",
                "url": str(request.url.include_query_params(_offset=offset + count)),
            }
        )
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }


def create_app(
    store: RecordStore,
    *,
    token_validator: TokenValidator | None = None,
    token_endpoint: str | None = None,
    anonymous: bool = False,
) -> FastAPI:
    """A FastAPI app serving the store under `/fhir`.

    Every FHIR request needs a bearer token the `token_validator` accepts (returning
    True, or the client's name for the audit trail); with a
    `token_endpoint` (absolute, or a path on this server) the public
    `/fhir/.well-known/smart-configuration` advertises it for SMART backend services.
    """
    if token_validator is None and not anonymous:
        raise ValueError(
            "the FHIR API serves patient data: give a token_validator (anonymous=True is for "
            "tests and local experiments only)"
        )
    app = FastAPI(title="medagent FHIR API", version="0.1.0")
    app.state.record_store = store
    app.state.token_validator = token_validator

    if token_endpoint is not None:

        @app.get("/fhir/.well-known/smart-configuration", tags=["fhir"])
        def smart_configuration(request: Request) -> dict[str, Any]:
            endpoint = token_endpoint
            if "://" not in endpoint:
                endpoint = str(request.base_url).rstrip("/") + "/" + endpoint.lstrip("/")
            return {
                "token_endpoint": endpoint,
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
                "capabilities": ["client-confidential-asymmetric"],
            }

    @app.exception_handler(_UnauthorizedError)
    def _unauthorized(_request: Request, _exc: _UnauthorizedError) -> FHIRResponse:
        response = _outcome(401, "login", "a valid bearer token is required")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    app.include_router(router)
    return app

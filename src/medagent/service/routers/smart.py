"""SMART App Launch (EHR launch): discovery, authorization code with PKCE, token, the page."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
import jwt
from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from medagent.secure.access import Principal, Role
from medagent.service.problems import ProblemError, forbidden, unauthorized
from medagent.service.security import SESSION_COOKIE, client_address, issue_session
from medagent.service.state import ServiceState, StateDep

router = APIRouter(prefix="/smart", tags=["smart"])

SCOPES = (
    "launch openid fhirUser user/Patient.rs user/Observation.cruds user/QuestionnaireResponse.cruds"
)
PENDING_SECONDS = 600


def _discover(iss: str) -> dict[str, Any]:
    url = iss.rstrip("/") + "/.well-known/smart-configuration"
    try:
        response = httpx.get(
            url, timeout=10.0, headers={"Accept": "application/json"}, trust_env=False
        )
        response.raise_for_status()
        config: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ProblemError(502, "SMART discovery failed", detail=f"{url}: {exc}") from exc
    if "authorization_endpoint" not in config or "token_endpoint" not in config:
        raise ProblemError(
            502, "SMART discovery failed", detail="no authorization or token endpoint"
        )
    if "S256" not in config.get("code_challenge_methods_supported", ["S256"]):
        raise ProblemError(
            502, "SMART discovery failed", detail="the server does not support PKCE S256"
        )
    return config


@router.get("/launch", response_class=RedirectResponse, status_code=302)
def launch(
    request: Request,
    state: StateDep,
    iss: Annotated[str, Query(min_length=8, max_length=512)],
    *,
    launch: Annotated[str, Query(min_length=1, max_length=512)],
) -> Response:
    """EHR launch: discover the server's endpoints and send the browser to authorize (PKCE)."""
    if iss not in state.settings.smart_iss_allow:
        _audit_login(
            state,
            request,
            actor="(SMART launch)",
            outcome="refused: iss not allowed",
            detail=f"iss {iss}"[:300],
        )
        raise forbidden("this FHIR server may not launch medagent (MEDAGENT_SMART_ISS)")
    config = _discover(iss)
    verifier = secrets.token_urlsafe(64)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    key = secrets.token_urlsafe(24)
    now = time.time()
    pending = state.smart_sessions
    for old in [k for k, v in pending.items() if now - float(v["created"]) > PENDING_SECONDS]:
        pending.pop(old, None)
    pending[key] = {
        "iss": iss,
        "verifier": verifier,
        "token_endpoint": str(config["token_endpoint"]),
        "created": str(now),
    }
    query = urlencode(
        {
            "response_type": "code",
            "client_id": state.settings.smart_client_id,
            "redirect_uri": f"{state.settings.base_url}/smart/callback",
            "launch": launch,
            "scope": SCOPES,
            "state": key,
            "aud": iss,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    return RedirectResponse(f"{config['authorization_endpoint']}?{query}", status_code=302)


@router.get("/callback", response_class=RedirectResponse, status_code=303)
def callback(
    request: Request,
    state: StateDep,
    code: Annotated[str, Query(min_length=1, max_length=2048)],
    *,
    state_: Annotated[str, Query(alias="state", min_length=1, max_length=128)],
) -> Response:
    """Exchange the code (with the PKCE verifier) for a token and open the patient's page."""
    try:
        principal, patient, iss = _exchange(state, code=code, key=state_)
    except ProblemError as exc:
        _audit_login(state, request, actor="(SMART launch)", outcome=f"failed: {exc.detail}"[:300])
        raise
    _audit_login(
        state,
        request,
        actor=principal.subject,
        outcome="success",
        detail=f"SMART launch from {iss} in the context of Patient/{patient}"[:500],
    )
    session = issue_session(state, principal)
    redirect = RedirectResponse(f"/app/patients/{patient}", status_code=303)
    redirect.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="lax")
    return redirect


def _audit_login(
    state: ServiceState, request: Request, *, actor: str, outcome: str, detail: str = ""
) -> None:
    state.audit.append(
        actor=actor,
        action="login",
        resource="session",
        source=client_address(request),
        reason="SMART App Launch",
        outcome=outcome,
        detail=detail,
    )


def _exchange(state: ServiceState, *, code: str, key: str) -> tuple[Principal, str, str]:
    """The principal, patient id and FHIR server of a finished launch; 401/502 otherwise."""
    pending = state.smart_sessions.pop(key, None)
    if pending is None or time.time() - float(pending["created"]) > PENDING_SECONDS:
        raise unauthorized("unknown or expired launch state")
    try:
        response = httpx.post(
            pending["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": f"{state.settings.base_url}/smart/callback",
                "client_id": state.settings.smart_client_id,
                "code_verifier": pending["verifier"],
            },
            timeout=10.0,
            trust_env=False,
        )
    except httpx.HTTPError as exc:
        raise ProblemError(502, "SMART token request failed", detail=str(exc)) from exc
    if response.status_code != 200:
        raise unauthorized(f"the authorization server refused the code ({response.status_code})")
    body: dict[str, Any] = response.json()
    patient = body.get("patient")
    if not body.get("access_token") or not isinstance(patient, str):
        raise unauthorized("the token response has no access token or patient context")
    subject = "smart-user"
    if isinstance(body.get("id_token"), str):
        # Received directly from the token endpoint (OpenID Connect Core 3.1.3.7, item 6).
        claims = jwt.decode(body["id_token"], options={"verify_signature": False})
        subject = str(claims.get("fhirUser") or claims.get("sub") or subject)
    principal = Principal.grant(subject, Role.CLINICIAN, requested=str(body.get("scope", "")))
    return principal, patient, pending["iss"]

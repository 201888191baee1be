"""Who is calling: session tokens (login, SMART launch), patient links, and the scope checks."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from medagent.record.audited import (
    AuditContextError,
    bind_audit_context,
    current_audit_context,
)
from medagent.secure.access import (
    AccessDeniedError,
    Authorizer,
    Principal,
    Role,
    Scope,
    parse_scopes,
)
from medagent.service.problems import ProblemError, forbidden, unauthorized
from medagent.service.state import ServiceState, StateDep

SESSION_COOKIE = "medagent_session"
_ALG = "HS256"  # our own tokens, signed and checked by this service only


def issue_session(state: ServiceState, principal: Principal, *, minutes: int | None = None) -> str:
    """A signed session token for a principal (bearer header or cookie)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "typ": "session",
        "sub": principal.subject,
        "role": principal.role.value,
        "scope": " ".join(sorted(str(s) for s in principal.scopes)),
        "iat": now,
        "exp": now + 60 * (minutes or state.settings.session_minutes),
        "jti": secrets.token_hex(8),
    }
    if principal.patient_id:
        claims["patient"] = principal.patient_id
    return jwt.encode(claims, state.settings.secret, algorithm=_ALG)


def client_address(connection: HTTPConnection) -> str:
    """Where a request comes from: the client's address as the server sees it."""
    return connection.client.host if connection.client else "unknown"


def unverified_subject(token: str, claim: str = "sub") -> str:
    """Who a token that failed verification claims to be, marked as unverified (for the log)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return "(unreadable token)"
    value = claims.get(claim) if isinstance(claims, dict) else None
    return f"{str(value)[:128]} (unverified)" if value else "(no subject, unverified)"


def audit_failed_authentication(
    state: ServiceState, *, actor: str, source: str, reason: str, why: str
) -> None:
    """Write a failed authentication (a bad session, link or client token) to the audit log."""
    state.audit.append(
        actor=actor,
        action="authenticate",
        resource="session",
        source=source,
        reason=reason,
        outcome=f"failed: {why}"[:300],
    )


def audit_event(
    state: ServiceState, *, action: str, patient_id: str, detail: str, outcome: str = "success"
) -> None:
    """Write what a handler did to a patient's record (a score, an override, a link) under the
    request's audit context (bound by the guard); refuses without one, before anything is done
    that could not be recorded."""
    ctx = current_audit_context()
    if ctx is None:
        raise AuditContextError(f"{action} of Patient/{patient_id} outside any audit context")
    state.audit.append(
        actor=ctx.actor,
        action=action,
        resource=f"Patient/{patient_id}",
        source=ctx.source,
        reason=ctx.reason,
        outcome=outcome,
        detail=detail,
    )


def require_audit_context() -> None:
    """Refuse (AuditContextError) unless the request's audit context is bound."""
    if current_audit_context() is None:
        raise AuditContextError("a change to patient data outside any audit context")


def read_session(state: ServiceState, token: str, *, source: str) -> Principal:
    """The principal of a session token; raises 401 (and audits the failure) when not valid."""
    try:
        return _session_principal(state, token)
    except ProblemError as exc:
        audit_failed_authentication(
            state,
            actor=unverified_subject(token),
            source=source,
            reason="session token",
            why=str(exc.detail),
        )
        raise


def _session_principal(state: ServiceState, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            state.settings.secret,
            algorithms=[_ALG],
            options={"require": ["exp", "sub", "typ", "role"]},
        )
    except jwt.PyJWTError as exc:
        raise unauthorized(f"invalid session token: {exc}") from exc
    if claims.get("typ") != "session":
        raise unauthorized("not a session token")
    try:
        role = Role(claims["role"])
        scopes, _ = parse_scopes(str(claims.get("scope", "")))
    except (ValueError, AccessDeniedError) as exc:
        raise unauthorized("malformed session token") from exc
    return Principal(str(claims["sub"]), role, scopes, claims.get("patient"))


def issue_link(
    state: ServiceState, *, patient_id: str, scales: list[str], minutes: int, issuer: str
) -> tuple[str, str, int]:
    """A signed self-assessment link token: (token, link id, expiry as unix time)."""
    now = int(time.time())
    link_id = secrets.token_hex(16)
    exp = now + 60 * minutes
    claims = {
        "typ": "selfassess",
        "sub": f"patient-link:{link_id}",
        "patient": patient_id,
        "scales": scales,
        "iss_user": issuer,
        "iat": now,
        "exp": exp,
        "jti": link_id,
    }
    return jwt.encode(claims, state.settings.secret, algorithm=_ALG), link_id, exp


@dataclass(frozen=True, slots=True)
class PatientLink:
    """A verified self-assessment link."""

    link_id: str
    patient_id: str
    scales: tuple[str, ...]
    issued_by: str
    principal: Principal


def read_link(state: ServiceState, token: str, *, source: str) -> PatientLink:
    """Verify a link token (signature, expiry, purpose); raises 401 with the reason (audited)."""
    try:
        return _link(state, token)
    except ProblemError as exc:
        audit_failed_authentication(
            state,
            actor=unverified_subject(token),
            source=source,
            reason="self-assessment link",
            why=str(exc.detail),
        )
        raise


def _link(state: ServiceState, token: str) -> PatientLink:
    try:
        claims = jwt.decode(
            token,
            state.settings.secret,
            algorithms=[_ALG],
            options={"require": ["exp", "jti", "patient", "typ"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise unauthorized("this link has expired") from exc
    except jwt.PyJWTError as exc:
        raise unauthorized("this link is not valid") from exc
    if claims.get("typ") != "selfassess" or not isinstance(claims.get("scales"), list):
        raise unauthorized("this link is not valid")
    patient = str(claims["patient"])
    principal = Principal.grant(
        str(claims["sub"]),
        Role.PATIENT,
        requested="patient/Questionnaire.r patient/QuestionnaireResponse.c",
        patient_id=patient,
    )
    return PatientLink(
        link_id=str(claims["jti"]),
        patient_id=patient,
        scales=tuple(str(s) for s in claims["scales"]),
        issued_by=str(claims.get("iss_user", "")),
        principal=principal,
    )


def token_from(request: HTTPConnection) -> str | None:
    """The bearer token of the request, or its session cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    return request.cookies.get(SESSION_COOKIE)


def require_principal(request: Request, state: StateDep) -> Principal:
    """The caller's principal from a bearer token or the session cookie; 401 without one."""
    token = token_from(request)
    if not token:
        raise unauthorized()
    principal = read_session(state, token, source=client_address(request))
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(require_principal)]


class Guard:
    """Checks a principal's scopes for one request and writes the decision to the audit log.

    An allowed check also binds the request's audit context (who, from where, why), so that
    the record store attributes every read and write the handler then makes.
    """

    def __init__(self, authorizer: Authorizer, principal: Principal, *, source: str) -> None:
        self._authorizer = authorizer
        self.principal = principal
        self._source = source

    def check(
        self, resource: str, action: str, *, patient_id: str | None = None, reason: str
    ) -> Scope:
        """The allowing scope, or 403 problem details."""
        try:
            scope = self._authorizer.check(
                self.principal,
                resource=resource,
                action=action,
                patient_id=patient_id,
                source=self._source,
                reason=reason,
            )
        except AccessDeniedError as exc:
            raise forbidden(str(exc)) from exc
        bind_audit_context(actor=self.principal.subject, source=self._source, reason=reason)
        return scope

    @property
    def source(self) -> str:
        """The client address of the request."""
        return self._source


def get_guard(request: Request, state: StateDep, *, principal: CurrentPrincipal) -> Guard:
    """A guard for the authenticated caller of this request."""
    return Guard(state.authorizer, principal, source=client_address(request))


GuardDep = Annotated[Guard, Depends(get_guard)]

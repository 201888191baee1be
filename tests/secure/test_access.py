"""Tests of access control: SMART scopes, role ceilings, audited decisions, Argon2, rate limits."""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher

from medagent.errors import MedAgentError
from medagent.secure.access import (
    AccessDeniedError,
    AuthenticationError,
    Authorizer,
    LoginService,
    Passwords,
    Principal,
    RateLimitedError,
    RateLimiter,
    Role,
    Scope,
    ScopeError,
    authorize,
    parse_scopes,
)
from medagent.secure.audit import AuditLog

# cheap Argon2 parameters keep the tests fast; production uses the library defaults
FAST = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("patient/Observation.rs", "patient/Observation.rs"),  # SMART v2
        ("user/*.cruds", "user/*.cruds"),  # wildcard resource
        ("system/Patient.read", "system/Patient.rs"),  # SMART v1 read
        ("user/Observation.write", "user/Observation.cud"),  # SMART v1 write
        ("patient/*.*", "patient/*.cruds"),  # SMART v1 all
    ],
)
def test_scope_parsing(text: str, expected: str) -> None:
    assert str(Scope.parse(text)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "patient/Observation.",  # no permissions
        "patient/Observation.sr",  # v2 letters out of order
        "ward/Observation.r",  # unknown context
        "patient/observation.r",  # resource types are capitalised
        "patient/Observation.rs?category=laboratory",  # query restrictions unsupported
    ],
)
def test_bad_scopes_are_refused(text: str) -> None:
    with pytest.raises(ScopeError):
        Scope.parse(text)


def test_role_ceiling_limits_requested_scopes() -> None:
    nurse = Principal.grant(
        "n1", Role.NURSE, requested="user/Observation.cruds user/Patient.rs openid"
    )
    assert {str(s) for s in nurse.scopes} == {"user/Patient.rs"}
    full = Principal.grant("n1", Role.NURSE)
    authorize(full, resource="Observation", action="c")
    with pytest.raises(AccessDeniedError):
        authorize(full, resource="Observation", action="d")
    _, other = parse_scopes("openid fhirUser launch/patient")
    assert other == {"openid", "fhirUser", "launch/patient"}


@pytest.mark.parametrize(
    ("role", "resource", "action", "patient", "allowed"),
    [
        (Role.CLINICIAN, "Observation", "r", "p1", True),  # clinician reads
        (Role.CLINICIAN, "Condition", "u", "p1", True),  # clinician overrides
        (Role.NURSE, "Condition", "u", "p1", False),  # nurse may not edit conditions
        (Role.NURSE, "Observation", "c", "p1", True),  # nurse records vitals
        (Role.ADMIN, "Patient", "r", "p1", False),  # admin never reads patient records
        (Role.ADMIN, "AuditEvent", "s", None, True),  # admin reads the audit trail
        (Role.CDS_CLIENT, "Observation", "r", "p1", True),  # CDS client reads prefetch data
        (Role.CDS_CLIENT, "Observation", "c", "p1", False),  # but writes nothing
        (Role.PATIENT, "Observation", "r", "me", True),  # own record
        (Role.PATIENT, "Observation", "r", "someone-else", False),  # another patient's record
        (Role.PATIENT, "QuestionnaireResponse", "c", "me", True),  # self-assessment
        (Role.PATIENT, "Observation", "c", "me", False),  # cannot write observations
        (Role.PATIENT, "Observation", "r", None, False),  # no patient id: no patient scope
    ],
)
def test_role_matrix(
    role: Role, resource: str, action: str, patient: str | None, allowed: bool
) -> None:
    principal = Principal.grant("x", role, patient_id="me" if role is Role.PATIENT else None)
    if allowed:
        authorize(principal, resource=resource, action=action, patient_id=patient)
    else:
        with pytest.raises(AccessDeniedError, match="may not"):
            authorize(principal, resource=resource, action=action, patient_id=patient)


def test_system_scope_in_a_person_token_grants_nothing() -> None:
    forged = Principal("eve", Role.CLINICIAN, parse_scopes("system/*.cruds")[0])
    with pytest.raises(AccessDeniedError):
        authorize(forged, resource="Patient", action="r", patient_id="p1")


def test_patient_principal_needs_a_patient() -> None:
    with pytest.raises(AccessDeniedError, match="bound to one patient"):
        Principal.grant("link", Role.PATIENT)
    with pytest.raises(ValueError, match="action"):
        authorize(Principal.grant("d", Role.CLINICIAN), resource="Patient", action="x")


def test_decisions_are_audited(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite")
    auth = Authorizer(log)
    doctor = Principal.grant("dr.a", Role.CLINICIAN)
    admin = Principal.grant("root", Role.ADMIN)
    auth.check(
        doctor,
        resource="Patient",
        action="r",
        patient_id="p1",
        source="10.0.0.5",
        reason="treatment",
    )
    with pytest.raises(AccessDeniedError):
        auth.check(
            admin,
            resource="Patient",
            action="r",
            patient_id="p1",
            source="10.0.0.9",
            reason="curiosity",
        )
    entries = list(log.entries())
    assert [(e.actor, e.outcome) for e in entries] == [
        ("dr.a", "allowed by user/*.cruds"),
        ("root", "denied"),
    ]
    assert entries[1].resource == "Patient/p1" and entries[1].reason == "curiosity"


def test_passwords_argon2id() -> None:
    stored = FAST.hash("correct horse")
    assert stored.startswith("$argon2id$")
    assert FAST.verify(stored, "correct horse")
    assert not FAST.verify(stored, "wrong")
    assert not FAST.verify("not-a-hash", "x")
    assert Passwords().needs_rehash(stored)  # weaker than the defaults


def test_rate_limiter_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(capacity=3, per_second=0.5, clock=lambda: now[0])
    for _ in range(3):
        limiter.hit("alice")
    with pytest.raises(RateLimitedError) as info:
        limiter.hit("alice")
    assert info.value.retry_after == pytest.approx(2.0)
    limiter.hit("bob")  # other keys are unaffected
    now[0] = 2.0
    limiter.hit("alice")
    assert isinstance(info.value, MedAgentError)


def test_login_rate_limited_and_audited(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite")
    now = [0.0]
    service = LoginService(
        users={"dr.a": (FAST.hash("pw-a"), Role.CLINICIAN)},
        audit=log,
        passwords=FAST,
        limiter=RateLimiter(capacity=3, per_second=1 / 60, clock=lambda: now[0]),
    )
    assert service.login("dr.a", "pw-a", source="10.0.0.5").role is Role.CLINICIAN
    with pytest.raises(AuthenticationError, match="unknown user or wrong password"):
        service.login("dr.a", "guess", source="10.0.0.5")
    with pytest.raises(AuthenticationError, match="unknown user or wrong password"):
        service.login("nobody", "guess", source="10.0.0.6")
    with pytest.raises(AuthenticationError):
        service.login("dr.a", "guess-2", source="10.0.0.6")
    with pytest.raises(RateLimitedError):
        service.login("dr.a", "pw-a", source="10.0.0.7")  # 4th try for this user in a minute
    outcomes = [(e.actor, e.action, e.outcome) for e in log.entries()]
    assert outcomes == [
        ("dr.a", "login", "success"),
        ("dr.a", "login", "failed"),
        ("nobody", "login", "failed"),
        ("dr.a", "login", "failed"),
        ("dr.a", "login", "rate-limited"),
    ]

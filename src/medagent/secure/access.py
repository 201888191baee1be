"""Access control: roles, SMART App Launch scopes, Argon2 passwords and rate limiting.

The service layer turns a request into a :class:`Principal` (from a login, a SMART token or a
self-assessment link) and calls :meth:`Authorizer.check` before touching patient data; every
decision, allowed or denied, is written to the audit log. Scopes follow SMART App Launch v2
(``patient/Observation.rs``, ``user/*.cruds``, ``system/Patient.r``) and v1 (``.read``,
``.write``, ``.*``). A principal's scopes are always the intersection of what it asked for and
the ceiling of its role. ``user/`` scopes grant what the user may see in the EHR; modelling care
teams (which patients a clinician treats) is the EHR's job and is not repeated here.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from medagent.errors import MedAgentError
from medagent.secure.audit import AuditLog


class AccessDeniedError(MedAgentError, PermissionError):
    """The principal may not do this; the message says which scope was missing."""


class AuthenticationError(MedAgentError, PermissionError):
    """Login failed (unknown user or wrong password; the message never says which)."""


class RateLimitedError(MedAgentError, PermissionError):
    """Too many attempts; ``retry_after`` is in seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ScopeError(MedAgentError, ValueError):
    """A scope string is not a SMART scope."""


class Role(StrEnum):
    """Who is acting."""

    CLINICIAN = "clinician"
    NURSE = "nurse"
    ADMIN = "admin"
    CDS_CLIENT = "cds_client"
    PATIENT = "patient"


ACTIONS = "cruds"  # create, read, update, delete, search (SMART v2 order)
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE = re.compile(
    r"^(?P<context>patient|user|system)/(?P<resource>\*|[A-Z][A-Za-z]+)\."
    r"(?P<perms>c?r?u?d?s?|read|write|\*)(?:\?(?P<query>[^\s]+))?$"
)
_NON_RESOURCE = frozenset(
    {"openid", "fhirUser", "profile", "launch", "launch/patient", "offline_access", "online_access"}
)


@dataclass(frozen=True, slots=True)
class Scope:
    """One resource scope: context, resource type (or ``*``) and permitted actions."""

    context: str
    resource: str
    actions: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> Scope:
        """Parse one SMART v1 or v2 resource scope; query-restricted scopes are refused."""
        m = _SCOPE.match(text)
        if m is None or not m.group("perms"):
            raise ScopeError(f"not a SMART resource scope: {text!r}")
        if m.group("query"):
            raise ScopeError(f"query-restricted scopes are not supported: {text!r}")
        perms = _V1.get(m.group("perms"), m.group("perms"))
        return cls(m.group("context"), m.group("resource"), frozenset(perms))

    def covers(self, other: Scope) -> bool:
        """True if this scope grants everything ``other`` grants."""
        return (
            self.context == other.context
            and self.resource in ("*", other.resource)
            and other.actions <= self.actions
        )

    def __str__(self) -> str:
        perms = "".join(a for a in ACTIONS if a in self.actions)
        return f"{self.context}/{self.resource}.{perms}"


def parse_scopes(text: str | Iterable[str]) -> tuple[frozenset[Scope], frozenset[str]]:
    """Split a scope string into resource scopes and recognised non-resource scopes."""
    items = text.split() if isinstance(text, str) else list(text)
    resource: set[Scope] = set()
    other: set[str] = set()
    for item in items:
        if item in _NON_RESOURCE:
            other.add(item)
        else:
            resource.add(Scope.parse(item))
    return frozenset(resource), frozenset(other)


ROLE_CEILING: Mapping[Role, frozenset[Scope]] = {
    Role.CLINICIAN: parse_scopes("user/*.cruds")[0],
    Role.NURSE: parse_scopes("user/*.rs user/Observation.cu user/QuestionnaireResponse.cu")[0],
    # administrators run the system; they read the audit trail, not patient records
    Role.ADMIN: parse_scopes("system/AuditEvent.rs user/Practitioner.cruds")[0],
    Role.CDS_CLIENT: parse_scopes("system/*.rs")[0],
    Role.PATIENT: parse_scopes("patient/*.rs patient/QuestionnaireResponse.cu")[0],
}


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated actor with the scopes it holds (already limited by its role)."""

    subject: str
    role: Role
    scopes: frozenset[Scope]
    patient_id: str | None = None

    @classmethod
    def grant(
        cls,
        subject: str,
        role: Role,
        *,
        requested: str | Iterable[str] | None = None,
        patient_id: str | None = None,
    ) -> Principal:
        """A principal holding the requested scopes that its role allows (all, if none asked)."""
        ceiling = ROLE_CEILING[role]
        if requested is None:
            scopes = set(ceiling)
        else:
            asked, _ = parse_scopes(requested)
            scopes = {s for s in asked if any(c.covers(s) for c in ceiling)}
        if role is Role.PATIENT and not patient_id:
            raise AccessDeniedError("a patient principal must be bound to one patient id")
        return cls(subject=subject, role=role, scopes=frozenset(scopes), patient_id=patient_id)


def authorize(
    principal: Principal, *, resource: str, action: str, patient_id: str | None = None
) -> Scope:
    """Return the scope that allows ``action`` on ``resource``; raise AccessDeniedError if none."""
    if action not in ACTIONS or len(action) != 1:
        raise ValueError(f"action must be one of {ACTIONS!r} letters, not {action!r}")
    for scope in sorted(principal.scopes, key=str):
        if scope.resource not in ("*", resource) or action not in scope.actions:
            continue
        wrong_patient = principal.patient_id is None or patient_id != principal.patient_id
        if scope.context == "patient" and wrong_patient:
            continue  # a patient scope covers that patient's compartment only
        if scope.context == "system" and principal.role not in (Role.CDS_CLIENT, Role.ADMIN):
            continue  # system scopes belong to backend clients, never to a person's token
        return scope
    target = f"{resource} of patient {patient_id}" if patient_id else resource
    raise AccessDeniedError(
        f"{principal.role.value} {principal.subject!r} may not {action!r} {target}"
    )


class Authorizer:
    """Authorizes and records every decision in the audit log."""

    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit

    def check(
        self,
        principal: Principal,
        *,
        resource: str,
        action: str,
        patient_id: str | None = None,
        source: str,
        reason: str,
    ) -> Scope:
        """Like :func:`authorize`, plus an audit entry with outcome ``allowed`` or ``denied``."""
        target = f"{resource}/{patient_id}" if patient_id else resource
        try:
            scope = authorize(principal, resource=resource, action=action, patient_id=patient_id)
        except AccessDeniedError:
            self._audit.append(
                actor=principal.subject,
                action=f"{action}:{resource}",
                resource=target,
                source=source,
                reason=reason,
                outcome="denied",
            )
            raise
        self._audit.append(
            actor=principal.subject,
            action=f"{action}:{resource}",
            resource=target,
            source=source,
            reason=reason,
            outcome=f"allowed by {scope}",
        )
        return scope


class Passwords:
    """Argon2id password hashing (argon2-cffi defaults: RFC 9106 low-memory profile)."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()

    def hash(self, password: str) -> str:
        """A PHC-format Argon2id hash with its own salt."""
        return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        """True if the password matches; a malformed hash counts as no match."""
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """True if the hash was made with weaker parameters than the current ones."""
        return self._hasher.check_needs_rehash(stored_hash)


class RateLimiter:
    """A token bucket per key (e.g. user name or client address), safe across threads."""

    def __init__(
        self,
        *,
        capacity: int,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1 or per_second <= 0:
            raise ValueError("capacity must be ≥ 1 and per_second > 0")
        self._capacity = capacity
        self._rate = per_second
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> None:
        """Take one token for ``key`` or raise RateLimitedError with the wait needed."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self._capacity), now))
            tokens = min(self._capacity, tokens + (now - last) * self._rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                wait = (1 - tokens) / self._rate
                raise RateLimitedError(f"too many attempts for {key!r}", retry_after=wait)
            self._buckets[key] = (tokens - 1, now)


class LoginService:
    """Password login with rate limiting per user and per address, audited."""

    def __init__(
        self,
        *,
        users: Mapping[str, tuple[str, Role]],
        audit: AuditLog,
        passwords: Passwords | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._users = users
        self._audit = audit
        self._passwords = passwords or Passwords()
        self._limiter = limiter or RateLimiter(capacity=5, per_second=1 / 60)
        self._dummy = self._passwords.hash("timing-equaliser")

    def login(self, username: str, password: str, *, source: str) -> Principal:
        """Check the password; raise AuthenticationError or RateLimitedError, audited either way."""
        try:
            self._limiter.hit(f"user:{username}")
            self._limiter.hit(f"addr:{source}")
        except RateLimitedError:
            self._record(username, source, "rate-limited")
            raise
        record = self._users.get(username)
        # verify against a dummy hash for unknown users, so timing does not reveal who exists
        ok = self._passwords.verify(record[0] if record else self._dummy, password)
        if record is None or not ok:
            self._record(username, source, "failed")
            raise AuthenticationError("unknown user or wrong password")
        self._record(username, source, "success")
        return Principal.grant(username, record[1])

    def _record(self, username: str, source: str, outcome: str) -> None:
        self._audit.append(
            actor=username or "(empty)",
            action="login",
            resource="session",
            source=source,
            reason="authentication",
            outcome=outcome,
        )

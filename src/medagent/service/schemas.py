"""API schemas (request and response bodies), kept apart from the library's domain models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_ID = r"^[A-Za-z0-9_.-]{1,64}$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScaleSummary(BaseModel):
    """One scale of the library."""

    id: str
    version: str
    title: str
    short_title: str | None
    category: str
    loinc: str | None
    reference: str | None
    patient_answerable: bool


class ScoreRequest(_Body):
    """Inputs by input id; quantities as numbers (the scale's unit) or strings with a unit."""

    inputs: dict[str, bool | int | float | str] = Field(default_factory=dict)


class AssessmentRequest(_Body):
    """Answers given directly; without answers the inputs are populated from the record."""

    answers: dict[str, bool | int | float | str] | None = None


class OverrideRequest(_Body):
    """A clinician's value for one input, e.g. `true` or `1.4 mg/dL`."""

    input: str = Field(pattern=_ID)
    value: str = Field(min_length=1, max_length=200)


class LinkRequest(_Body):
    """A self-assessment link for one patient and one or more patient-answerable scales."""

    scales: list[str] = Field(min_length=1, max_length=8)
    minutes: int = Field(default=24 * 60, ge=1, le=7 * 24 * 60)


class LinkResponse(BaseModel):
    """The link to send to the patient."""

    url: str
    link_id: str
    expires_at: int
    scales: list[str]


class TokenRequest(_Body):
    """Password login."""

    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


class TokenResponse(BaseModel):
    """A session token for the Authorization header."""

    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    scope: str


class FhirAuthorization(BaseModel):
    """CDS Hooks `fhirAuthorization`."""

    model_config = ConfigDict(extra="allow")
    access_token: str
    token_type: str = "Bearer"
    expires_in: int | None = None
    scope: str | None = None
    subject: str | None = None


class CdsRequest(BaseModel):
    """A CDS Hooks 2.0 request."""

    model_config = ConfigDict(extra="allow")
    hook: str
    hookInstance: str  # noqa: N815 (the CDS Hooks field name)
    fhirServer: str | None = None  # noqa: N815
    fhirAuthorization: FhirAuthorization | None = None  # noqa: N815
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None


class CdsResponse(BaseModel):
    """Cards (and no system actions)."""

    cards: list[dict[str, Any]]
    systemActions: list[dict[str, Any]] = Field(default_factory=list)  # noqa: N815


class FeedbackItem(BaseModel):
    """One feedback entry."""

    model_config = ConfigDict(extra="allow")
    card: str = Field(min_length=1, max_length=128)
    outcome: str = Field(pattern=r"^(accepted|overridden)$")
    outcomeTimestamp: str  # noqa: N815
    acceptedSuggestions: list[dict[str, Any]] | None = None  # noqa: N815
    overrideReason: dict[str, Any] | None = None  # noqa: N815


class FeedbackRequest(BaseModel):
    """CDS Hooks feedback."""

    feedback: list[FeedbackItem] = Field(min_length=1, max_length=100)

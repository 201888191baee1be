"""Errors of the FHIR SDC export and extraction."""

from __future__ import annotations

from medagent.errors import MedAgentError, _ProblemsError


class SdcError(MedAgentError, ValueError):
    """A scale or result cannot be exported or extracted as asked (the message says why)."""


class FhirValidationError(_ProblemsError, ValueError):
    """A resource does not validate against the FHIR model; lists every problem with its path."""

    headline = "against the FHIR R4B model"

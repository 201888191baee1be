"""Validate FHIR resources against the maintained models of ``fhir.resources`` (R4B)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from medagent.errors import Problem
from medagent.sdc.errors import FhirValidationError

# fhir.resources 8 ships R5 as its default package and R4B (the R4 technical correction, with the
# same Questionnaire, QuestionnaireResponse, Observation and Provenance as R4) as a subpackage.
FHIR_MODEL_VERSION = "R4B"


def problems(resource: dict[str, Any]) -> list[Problem]:
    """Every problem the R4B model finds in a JSON resource, each with its dotted path."""
    from fhir.resources.R4B import get_fhir_model_class

    kind = resource.get("resourceType")
    if not isinstance(kind, str):
        return [Problem("resourceType", "missing")]
    try:
        model = get_fhir_model_class(kind)
    except (KeyError, ValueError) as exc:
        return [Problem("resourceType", f"unknown resource type {kind!r}: {exc}")]
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        return [
            Problem(".".join(str(p) for p in err["loc"]) or kind, err["msg"])
            for err in exc.errors()
        ]
    return []


def validate(resource: dict[str, Any]) -> None:
    """Raise :class:`FhirValidationError` listing every problem, or return quietly."""
    found = problems(resource)
    if found:
        name = f"{resource.get('resourceType')}/{resource.get('id', '?')}"
        raise FhirValidationError(name, found)

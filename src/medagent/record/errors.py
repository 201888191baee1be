"""Errors of the patient record: import problems with their paths, and missing resources."""

from __future__ import annotations

from medagent.errors import MedAgentError, _ProblemsError


class RecordImportError(_ProblemsError, ValueError):
    """A file could not be imported; lists every malformed resource with its path and reason."""

    headline = "found, nothing imported from it"


class ResourceNotFoundError(MedAgentError, KeyError):
    """No resource of that type and id is in the store."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "resource not found"


class RemoteFHIRError(MedAgentError, RuntimeError):
    """A remote FHIR server or its token endpoint answered with an error."""

"""The patient record: FHIR R4 resources in a local store, imported from files or servers."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medagent.record.errors import RecordImportError, RemoteFHIRError, ResourceNotFoundError
    from medagent.record.models import (
        Coding,
        ConditionRecord,
        ImportResult,
        MedicationRecord,
        Note,
        ObservationValue,
        PatientSummary,
        ProcedureRecord,
    )
    from medagent.record.store import ImportReport, RecordStore

# Exported names and their modules, imported on first use so that the CLI starts fast
# (SQLAlchemy and the FHIR models load only when the record is actually used).
_EXPORTS = {
    "RecordImportError": "errors",
    "RemoteFHIRError": "errors",
    "ResourceNotFoundError": "errors",
    "Coding": "models",
    "ConditionRecord": "models",
    "ImportResult": "models",
    "MedicationRecord": "models",
    "Note": "models",
    "ObservationValue": "models",
    "PatientSummary": "models",
    "ProcedureRecord": "models",
    "ImportReport": "store",
    "RecordStore": "store",
}

__all__ = [
    "Coding",
    "ConditionRecord",
    "ImportReport",
    "ImportResult",
    "MedicationRecord",
    "Note",
    "ObservationValue",
    "PatientSummary",
    "ProcedureRecord",
    "RecordImportError",
    "RecordStore",
    "RemoteFHIRError",
    "ResourceNotFoundError",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'medagent.record' has no attribute {name!r}")
    return getattr(importlib.import_module(f"medagent.record.{module}"), name)

"""Imports of FHIR data into the record (Bundles, single resources)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body

from medagent.service.problems import ProblemError
from medagent.service.security import GuardDep
from medagent.service.state import StateDep

router = APIRouter(prefix="/api/imports", tags=["imports"])


@router.post("", status_code=201)
def import_fhir(
    *,
    bundle: Annotated[Any, Body(media_type="application/json")],
    state: StateDep,
    guard: GuardDep,
) -> dict[str, Any]:
    """Import a FHIR Bundle or resource (validated; all or nothing)."""
    from medagent.record.errors import RecordImportError

    guard.check("Patient", "c", reason="import FHIR data")
    if not isinstance(bundle, dict) or "resourceType" not in bundle:
        raise ProblemError(422, "Not FHIR", detail="the body must be a FHIR resource or Bundle")
    with tempfile.TemporaryDirectory(prefix="medagent-import-") as tmp:
        path = Path(tmp) / "upload.json"
        path.write_text(json.dumps(bundle), encoding="utf-8")
        try:
            result = state.store.import_file(path)
        except RecordImportError as exc:
            raise ProblemError(
                422,
                "Import refused",
                detail=f"{len(exc.problems)} problem(s); nothing was imported",
                extra={
                    "errors": [
                        {"input": p.path.removeprefix("upload.json:"), "message": p.message}
                        for p in exc.problems
                    ]
                },
            ) from exc
    return {
        "resources": result.resources,
        "deleted": result.deleted,
        "patients": list(result.patients),
    }

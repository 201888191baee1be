"""Trim a full Synthea bundle into a small demo record (`python -m medagent.demo.trim IN OUT`).

Keeps the Patient, every active Condition and the newest resources of each clinical type (a
budget per type below), and drops billing, care-team and imaging resources, so that a record of
several thousand resources becomes one of a few hundred (under ~300 KB) that still fills scales.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# Newest resources kept per type; types not listed are dropped.
BUDGET = {
    "Patient": 1,
    "Observation": 110,
    "Condition": 25,  # plus every active one
    "Procedure": 25,
    "MedicationRequest": 30,
    "Encounter": 15,
    "AllergyIntolerance": 10,
    "DocumentReference": 2,
    "Organization": 3,
    "Practitioner": 3,
}
_TIME_KEYS = (
    "effectiveDateTime",
    "onsetDateTime",
    "recordedDate",
    "authoredOn",
    "performedDateTime",
    "date",
)


def _time(resource: dict[str, Any]) -> str:
    for key in _TIME_KEYS:
        if resource.get(key):
            return str(resource[key])
    for key in ("performedPeriod", "period"):
        if isinstance(resource.get(key), dict):
            return str(resource[key].get("start") or "")
    return ""


def _active(resource: dict[str, Any]) -> bool:
    codings = (resource.get("clinicalStatus") or {}).get("coding") or [{}]
    return bool(codings[0].get("code") == "active")


def trim(bundle: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``bundle`` with the newest resources of each type within :data:`BUDGET`."""
    entries = [e for e in bundle["entry"] if e["resource"]["resourceType"] in BUDGET]
    keep: set[str] = set()
    for rtype, limit in BUDGET.items():
        of_type = [e for e in entries if e["resource"]["resourceType"] == rtype]
        of_type.sort(key=lambda e: _time(e["resource"]))
        keep.update(e["fullUrl"] for e in of_type[-limit:])
        if rtype == "Condition":
            keep.update(e["fullUrl"] for e in of_type if _active(e["resource"]))
    return {**bundle, "entry": [e for e in entries if e["fullUrl"] in keep]}


def main(argv: list[str] | None = None) -> int:
    """Trim IN into OUT, written compactly."""
    args = sys.argv[1:] if argv is None else argv
    source, out = Path(args[0]), Path(args[1])
    trimmed = trim(json.loads(source.read_text(encoding="utf-8")))
    out.write_text(json.dumps(trimmed, separators=(",", ":"), ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

"""Read FHIR Bundles and bulk-export NDJSON into checked resources ready for the store."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medagent.errors import Problem
from medagent.record.errors import RecordImportError

BUNDLE_TYPES = frozenset({"transaction", "collection", "searchset", "batch"})


@dataclass(slots=True)
class Batch:
    """The resources of one file (or one Bundle), imported in one transaction."""

    source: str
    resources: list[dict[str, Any]] = field(default_factory=list)
    deletes: list[tuple[str, str]] = field(default_factory=list)


# Required bindings the FHIR models do not check but the record's queries depend on (R4).
_REQUIRED_CODES: dict[tuple[str, str], frozenset[str]] = {
    ("Observation", "status"): frozenset(
        [
            "registered",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "cancelled",
            "entered-in-error",
            "unknown",
        ]
    ),
    ("DiagnosticReport", "status"): frozenset(
        [
            "registered",
            "partial",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "appended",
            "cancelled",
            "entered-in-error",
            "unknown",
        ]
    ),
    ("MedicationRequest", "status"): frozenset(
        [
            "active",
            "on-hold",
            "cancelled",
            "completed",
            "entered-in-error",
            "stopped",
            "draft",
            "unknown",
        ]
    ),
    ("MedicationStatement", "status"): frozenset(
        [
            "active",
            "completed",
            "entered-in-error",
            "intended",
            "stopped",
            "on-hold",
            "unknown",
            "not-taken",
        ]
    ),
    ("MedicationAdministration", "status"): frozenset(
        [
            "in-progress",
            "not-done",
            "on-hold",
            "completed",
            "entered-in-error",
            "stopped",
            "unknown",
        ]
    ),
    ("Procedure", "status"): frozenset(
        [
            "preparation",
            "in-progress",
            "not-done",
            "on-hold",
            "stopped",
            "completed",
            "entered-in-error",
            "unknown",
        ]
    ),
    ("DocumentReference", "status"): frozenset(["current", "superseded", "entered-in-error"]),
}
_CONDITION_STATUS = {
    "clinicalStatus": (
        "http://terminology.hl7.org/CodeSystem/condition-clinical",
        frozenset(["active", "recurrence", "relapse", "inactive", "remission", "resolved"]),
    ),
    "verificationStatus": (
        "http://terminology.hl7.org/CodeSystem/condition-ver-status",
        frozenset(
            [
                "unconfirmed",
                "provisional",
                "differential",
                "confirmed",
                "refuted",
                "entered-in-error",
            ]
        ),
    ),
}


def _binding_problems(resource: dict[str, Any], rtype: str, path: str) -> list[Problem]:
    problems = []
    for (btype, field_name), allowed in _REQUIRED_CODES.items():
        value = resource.get(field_name)
        if btype == rtype and isinstance(value, str) and value not in allowed:
            problems.append(
                Problem(f"{path}.{field_name}", f"{value!r} is not in the required value set")
            )
    if rtype == "Condition":
        for field_name, (system, allowed) in _CONDITION_STATUS.items():
            concept = resource.get(field_name)
            codings = concept.get("coding") if isinstance(concept, dict) else None
            for i, coding in enumerate(codings or ()):
                if not isinstance(coding, dict) or coding.get("system") != system:
                    continue
                if coding.get("code") not in allowed:
                    problems.append(
                        Problem(
                            f"{path}.{field_name}.coding[{i}].code",
                            f"{coding.get('code')!r} is not in the required value set",
                        )
                    )
    return problems


_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")


def structural_problems(resource: object, path: str) -> list[Problem]:
    """The checks the store itself needs, made even without model validation."""
    if not isinstance(resource, dict):
        return [Problem(path, "not a JSON object")]
    problems = []
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not _TYPE.match(rtype):
        problems.append(Problem(f"{path}.resourceType", f"not a resource type: {rtype!r}"))
    rid = resource.get("id")
    if not isinstance(rid, str) or not _ID.match(rid):
        problems.append(Problem(f"{path}.id", f"not a FHIR id: {rid!r}"))
    return problems


def _validator(rtype: str) -> Any:
    from fhir.resources.R4B import get_fhir_model_class

    return get_fhir_model_class(rtype)


def validate_resource(resource: dict[str, Any], path: str) -> list[Problem]:
    """Check one resource against the FHIR R4B models; every error with its dotted path."""
    from pydantic import ValidationError

    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        return [Problem(path, "resourceType is missing")]
    try:
        model = _validator(rtype)
    except (KeyError, ValueError, AttributeError, ImportError):
        return [Problem(f"{path}.resourceType", f"unknown resource type {rtype!r}")]
    problems = _binding_problems(resource, rtype, path)
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        for err in exc.errors():
            loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
            problems.append(Problem(f"{path}{loc}", err["msg"]))
    return problems


def _rewrite_references(node: Any, mapping: dict[str, str]) -> None:
    """Replace `urn:uuid:` (fullUrl) references by `Type/id`, as a FHIR server does."""
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref in mapping:
            node["reference"] = mapping[ref]
        for value in node.values():
            if isinstance(value, (dict, list)):
                _rewrite_references(value, mapping)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, (dict, list)):
                _rewrite_references(item, mapping)


def _resource_id(resource: dict[str, Any], full_url: object) -> str | None:
    rid = resource.get("id")
    if isinstance(rid, str) and rid:
        return rid
    if isinstance(full_url, str) and full_url.startswith("urn:uuid:"):
        resource["id"] = full_url.removeprefix("urn:uuid:")
        return str(resource["id"])
    return None


def _bundle_batch(
    bundle: dict[str, Any], *, source: str, problems: list[Problem], validate: bool
) -> Batch:
    batch = Batch(source)
    btype = bundle.get("type")
    if btype not in BUNDLE_TYPES:
        problems.append(Problem(f"{source}:type", f"Bundle type {btype!r} cannot be imported"))
        return batch
    mapping: dict[str, str] = {}
    for i, entry in enumerate(bundle.get("entry") or ()):
        path = f"{source}:entry[{i}]"
        if not isinstance(entry, dict):
            problems.append(Problem(path, "entry is not an object"))
            continue
        request = entry.get("request") or {}
        if request.get("method") == "DELETE":
            parts = str(request.get("url", "")).split("/")
            if len(parts) == 2 and all(parts):
                batch.deletes.append((parts[0], parts[1]))
            else:
                problems.append(Problem(f"{path}.request.url", "DELETE needs a Type/id url"))
            continue
        if (entry.get("search") or {}).get("mode") == "outcome":
            continue
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            problems.append(Problem(f"{path}.resource", "entry has no resource"))
            continue
        rid = _resource_id(resource, entry.get("fullUrl"))
        rtype = resource.get("resourceType")
        if rid is None:
            problems.append(Problem(f"{path}.resource.id", "resource has no id and no urn:uuid"))
            continue
        full_url = entry.get("fullUrl")
        if isinstance(full_url, str) and isinstance(rtype, str):
            mapping[full_url] = f"{rtype}/{rid}"
        batch.resources.append(resource)
        if validate:
            problems.extend(validate_resource(resource, f"{path}.resource"))
        else:
            problems.extend(structural_problems(resource, f"{path}.resource"))
    for resource in batch.resources:
        _rewrite_references(resource, mapping)
    return batch


def read_file(path: Path, *, validate: bool = True) -> Batch:
    """Read one Bundle, resource or NDJSON file; RecordImportError lists every problem."""
    source = str(path)
    problems: list[Problem] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordImportError(source, [Problem(source, f"cannot read: {exc}")]) from exc
    if path.suffix in (".ndjson", ".jsonl") or _looks_ndjson(text):
        batch = Batch(source)
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{source}:line {lineno}"
            try:
                resource = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(Problem(where, f"not JSON: {exc.msg}"))
                continue
            shape = structural_problems(resource, where)
            if shape:
                problems.extend(shape)
                continue
            batch.resources.append(resource)
            if validate:
                problems.extend(validate_resource(resource, where))
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RecordImportError(
                source, [Problem(f"{source}:{exc.lineno}:{exc.colno}", f"not JSON: {exc.msg}")]
            ) from exc
        if not isinstance(data, dict):
            raise RecordImportError(source, [Problem(source, "not a FHIR resource or Bundle")])
        if data.get("resourceType") == "Bundle":
            batch = _bundle_batch(data, source=source, problems=problems, validate=validate)
        else:
            batch = Batch(source)
            where = f"{source}:{data.get('resourceType') or 'resource'}"
            shape = structural_problems(data, where)
            if shape:
                problems.extend(shape)
            else:
                batch.resources.append(data)
                if validate:
                    problems.extend(validate_resource(data, where))
    if problems:
        raise RecordImportError(source, problems)
    return batch


def _looks_ndjson(text: str) -> bool:
    first, _, rest = text.lstrip().partition("\n")
    return first.startswith("{") and first.rstrip().endswith("}") and rest.strip().startswith("{")


def expand_paths(paths: list[Path]) -> Iterator[Path]:
    """Files to import: each file given, and the .json/.ndjson files inside each folder given."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.suffix in (".json", ".ndjson", ".jsonl")
            )
        else:
            yield path

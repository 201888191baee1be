"""Synthea bundles as monitor input: the monitored Observations of a patient and their series."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medagent.monitor.config import MonitorConfig
from medagent.monitor.errors import IngestError
from medagent.monitor.readings import Reading, parse_fhir_observation


def iter_bundles(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, Bundle) from a ``.tar.xz`` of bundles, a folder of ``.json`` files, or one file."""
    if path.is_dir():
        for file in sorted(path.rglob("*.json")):
            yield file.stem, json.loads(file.read_text(encoding="utf-8"))
    elif path.name.endswith((".tar.xz", ".tar.gz", ".tar")):
        with tarfile.open(path) as tar:
            for member in tar:
                if member.isfile() and member.name.endswith(".json"):
                    handle = tar.extractfile(member)
                    if handle is not None:
                        yield Path(member.name).stem, json.load(handle)
    else:
        yield path.stem, json.loads(path.read_text(encoding="utf-8"))


def patient_id(bundle: dict[str, Any]) -> str:
    """The id of the bundle's Patient."""
    for entry in bundle.get("entry") or ():
        res = entry.get("resource") or {}
        if res.get("resourceType") == "Patient":
            return str(res["id"])
    raise IngestError("bundle has no Patient")


def monitored_observations(bundle: dict[str, Any], config: MonitorConfig) -> list[dict[str, Any]]:
    """The bundle's Observations the monitor reads (or panels holding them), oldest first, with
    ``urn:uuid:`` subjects rewritten to ``Patient/id`` as a FHIR server would."""
    codes = set(config.by_loinc) | set(config.panels)
    pid = patient_id(bundle)
    out = []
    for entry in bundle.get("entry") or ():
        res = entry.get("resource") or {}
        if res.get("resourceType") != "Observation":
            continue
        own = {c.get("code") for c in (res.get("code") or {}).get("coding") or ()}
        if not own & codes:
            continue
        out.append({**res, "subject": {"reference": f"Patient/{pid}"}})
    out.sort(key=lambda r: str(r.get("effectiveDateTime") or ""))
    return out


def readings(bundle: dict[str, Any], config: MonitorConfig) -> list[Reading]:
    """Every monitored reading of the bundle, oldest first (unreadable ones left out)."""
    out: list[Reading] = []
    for res in monitored_observations(bundle, config):
        try:
            out += parse_fhir_observation(config, res, source="synthea").readings
        except IngestError:
            continue
    return out


def series(
    bundle: dict[str, Any], config: MonitorConfig
) -> dict[str, tuple[list[Any], list[float]]]:
    """Per numeric signal, (times, values) oldest first."""
    out: dict[str, tuple[list[Any], list[float]]] = {}
    seen: set[tuple[str, Any, float]] = set()
    for r in readings(bundle, config):
        if isinstance(r.value, float):
            key = (r.signal, r.effective, r.value)
            if key in seen:
                continue  # Synthea repeats some vitals as two Observations at the same instant
            seen.add(key)
            times, values = out.setdefault(r.signal, ([], []))
            times.append(r.effective)
            values.append(r.value)
    return out

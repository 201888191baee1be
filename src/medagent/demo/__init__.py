"""Demo patients shipped with medagent: hand-built scenarios and trimmed Synthea records."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medagent.record.store import RecordStore

_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class DemoPatient:
    """One demo patient: who, the scenario, the scales it was built for, and its index time."""

    file: str
    patient_id: str
    name: str
    scenario: str
    scales: tuple[str, ...]
    index_time: datetime | None  # naive UTC; None for Synthea records (their own times)
    synthetic_source: str  # "hand-built" or "synthea"


def _files() -> list[str]:
    folder = resources.files("medagent.demo") / "patients"
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".json"))


def _read(name: str) -> dict[str, Any]:
    folder = resources.files("medagent.demo") / "patients"
    data: dict[str, Any] = json.loads((folder / name).read_text(encoding="utf-8"))
    return data


def _parse_instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _shift(node: Any, delta: timedelta) -> Any:
    """A copy of ``node`` with every date and dateTime moved by ``delta`` (dates by whole days)."""
    if isinstance(node, dict):
        return {k: _shift(v, delta) for k, v in node.items()}
    if isinstance(node, list):
        return [_shift(v, delta) for v in node]
    if isinstance(node, str):
        if _DATETIME.match(node):
            moved = _parse_instant(node) + delta
            return moved.isoformat().replace("+00:00", "Z")
        if _DATE.match(node):
            return (date.fromisoformat(node) + timedelta(days=delta.days)).isoformat()
    return node


def _describe(name: str, bundle: dict[str, Any], delta: timedelta | None) -> DemoPatient:
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    names = patient.get("name") or [{}]
    full = " ".join([*names[0].get("given", []), names[0].get("family", "")]).strip()
    tags = (bundle.get("meta") or {}).get("tag") or []
    scales = tuple(t["code"] for t in tags if t.get("system") == "urn:medagent:demo:scale")
    hand_built = any(t.get("system") == "urn:medagent:demo" for t in tags)
    index = None
    if hand_built and bundle.get("timestamp"):
        index = _parse_instant(bundle["timestamp"]) + (delta or timedelta(0))
    scenario = str((bundle.get("identifier") or {}).get("value") or "synthea")
    return DemoPatient(
        file=name,
        patient_id=str(patient["id"]),
        name=full,
        scenario=_SCENARIOS.get(scenario, "Synthea record (trimmed)"),
        scales=scales,
        index_time=index.replace(tzinfo=None) if index else None,
        synthetic_source="hand-built" if hand_built else "synthea",
    )


_SCENARIOS = {
    "sepsis-ward": "Sepsis on a medical ward (pneumonia)",
    "af-anticoagulation": "Atrial fibrillation before anticoagulation",
    "copd-exacerbation": "COPD exacerbation with hypercapnia (SpO2 scale 2)",
    "chest-pain": "Acute chest pain in the emergency department",
    "upper-gi-bleed": "Upper gastrointestinal bleeding",
    "decompensated-cirrhosis": "Decompensated alcohol-related cirrhosis",
    "postop-vte": "Post-operative patient at VTE risk (hip arthroplasty)",
}


def demo_patients() -> list[DemoPatient]:
    """The bundled demo patients as shipped (hand-built ones at their build-time index time)."""
    return [_describe(name, _read(name), None) for name in _files()]


def load_demo(
    store: RecordStore, *, now: datetime | None = None, shift: bool = True
) -> list[DemoPatient]:
    """Import every demo bundle into ``store`` and say what was loaded.

    Hand-built patients are moved in time (``shift``) so that their index time, the moment the
    scenario is meant to be looked at, is ``now`` (default: the current time), so that the
    lookback windows of the scales find their data. Synthea records keep their own times.
    Loading again replaces the same resources (the store upserts); nothing is duplicated.
    Each bundle is validated and imported in one transaction like any other file.
    """
    import tempfile
    from pathlib import Path

    target = (now or datetime.now(UTC)).replace(microsecond=0)
    target = target.astimezone(UTC) if target.tzinfo else target.replace(tzinfo=UTC)
    loaded: list[DemoPatient] = []
    with tempfile.TemporaryDirectory(prefix="medagent-demo-") as tmp:
        for name in _files():
            bundle = _read(name)
            tags = (bundle.get("meta") or {}).get("tag") or []
            hand_built = any(t.get("system") == "urn:medagent:demo" for t in tags)
            if shift and hand_built and bundle.get("timestamp"):
                bundle = _shift(bundle, target - _parse_instant(bundle["timestamp"]))
            path = Path(tmp) / name
            path.write_text(json.dumps(bundle), encoding="utf-8")
            store.import_file(path)
            loaded.append(_describe(name, bundle, None))
    return loaded

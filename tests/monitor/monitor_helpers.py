"""Helpers of the monitor tests: a settable clock and FHIR Observation builders."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

SYNTHEA = Path(__file__).resolve().parents[3] / "shared" / "data" / "synthea-40.tar.xz"
T0 = datetime(2025, 3, 1, 8, 0)
# The standalone monitor's access token in tests, and the header that carries it.
TOKEN = "monitor-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

LOINC = {
    "heart_rate": ("8867-4", "/min"),
    "respiratory_rate": ("9279-1", "/min"),
    "sbp": ("8480-6", "mm[Hg]"),
    "temperature": ("8310-5", "Cel"),
    "spo2": ("59408-5", "%"),
    "o2_flow": ("3151-8", "L/min"),
    "platelets": ("777-3", "10*3/uL"),
    "creatinine": ("2160-0", "mg/dL"),
}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def observation(
    oid: str,
    signal: str,
    value: float,
    t: datetime,
    *,
    patient: str = "p1",
    unit: str | None = None,
) -> dict[str, Any]:
    """A FHIR Observation of a monitored signal."""
    code, default_unit = LOINC[signal]
    u = unit or default_unit
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": t.isoformat() + "Z",
        "valueQuantity": {
            "value": value,
            "unit": u,
            "system": "http://unitsofmeasure.org",
            "code": u,
        },
    }


def consciousness(oid: str, level: str, t: datetime, *, patient: str = "p1") -> dict[str, Any]:
    """An ACVPU observation."""
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "80288-4"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": t.isoformat() + "Z",
        "valueCodeableConcept": {"coding": [{"code": level}]},
    }


def vitals(
    prefix: str, t: datetime, *, patient: str = "p1", hr: float = 80, rr: float = 16,
    sbp: float = 125, temp: float = 37.0, spo2: float = 97, level: str = "A", o2: float = 0,
) -> dict[str, Any]:  # fmt: skip
    """A Bundle with one full set of NEWS2 observations."""
    entries = [
        observation(f"{prefix}-hr", "heart_rate", hr, t, patient=patient),
        observation(f"{prefix}-rr", "respiratory_rate", rr, t, patient=patient),
        observation(f"{prefix}-sbp", "sbp", sbp, t, patient=patient),
        observation(f"{prefix}-t", "temperature", temp, t, patient=patient),
        observation(f"{prefix}-s", "spo2", spo2, t, patient=patient),
        observation(f"{prefix}-o2", "o2_flow", o2, t, patient=patient),
        consciousness(f"{prefix}-c", level, t, patient=patient),
    ]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in entries],
    }

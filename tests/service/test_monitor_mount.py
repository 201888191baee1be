"""The vital-sign monitor's routers, mounted in the service behind the scope checks."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from service_helpers import Service

from medagent.secure.access import Role

pytest.importorskip("medagent.monitor.api")


def _observation(i: int, code: str, value: float, unit: str) -> dict[str, object]:
    return {
        "resourceType": "Observation",
        "id": f"mon-{i}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": "Patient/demo-sepsis-ward"},
        "effectiveDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org"},
    }


def test_monitor_needs_scopes(client: TestClient, service: Service) -> None:
    assert client.get("/monitor/alerts").status_code == 401
    admin = service.headers(Role.ADMIN, "root")
    assert client.get("/monitor/alerts", headers=admin).status_code == 403
    nurse = service.headers(Role.NURSE, "nurse-1")
    assert client.get("/monitor/alerts", headers=nurse).status_code == 200


def test_clinician_ingests_and_reads(client: TestClient, service: Service) -> None:
    h = service.headers(Role.NURSE, "nurse-2")
    r = client.post("/monitor/fhir", json=_observation(1, "9279-1", 29, "/min"), headers=h)
    assert r.status_code in (200, 422), r.text  # 422: the monitor refused it, with the reason
    profile = client.get("/monitor/patients/demo-sepsis-ward", headers=h)
    assert profile.status_code == 200
    page = client.get("/monitor/dashboard", headers=h)
    assert page.status_code == 200


# Regression: the acknowledging user was taken from the request body, so anyone signed in could
# acknowledge an alert in another person's name; behind the service it is the signed-in user.
def test_alert_is_acknowledged_as_the_signed_in_user(client: TestClient, service: Service) -> None:
    h = service.headers(Role.NURSE, "nurse-3")
    monitor = client.app.state.monitor  # type: ignore[attr-defined]
    for i, (code, value, unit) in enumerate(
        [("8867-4", 140, "/min"), ("9279-1", 30, "/min"), ("59408-5", 88, "%")]
    ):
        client.post("/monitor/fhir", json=_observation(100 + i, code, value, unit), headers=h)
    alerts = monitor.alerts(patient_id="demo-sepsis-ward")
    assert alerts, "three abnormal vital signs raise an alert"
    aid = alerts[0].id
    spoofed = client.post(f"/monitor/alerts/{aid}/ack", json={"user": "dr-other"}, headers=h)
    assert spoofed.status_code == 403
    done = client.post(f"/monitor/alerts/{aid}/ack", json={}, headers=h)
    assert done.status_code == 200 and done.json()["acknowledged_by"] == "nurse-3"

"""The service's SDC $populate endpoints: authorized, FHIR Parameters in and out."""

from __future__ import annotations

from fastapi.testclient import TestClient
from service_helpers import Service

AF = "demo-af-anticoagulation"


def test_populate_by_instance_and_by_parameters(client: TestClient, service: Service) -> None:
    got = client.get(
        "/fhir/Questionnaire/cha2ds2-vasc/$populate",
        params={"subject": f"Patient/{AF}"},
        headers=service.headers(),
    )
    assert got.status_code == 200, got.text
    names = [p["name"] for p in got.json()["parameter"]]
    assert names == ["response", "provenance", "issues"]
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "canonical", "valueCanonical": "http://x/fhir/Questionnaire/has_bled|1.1.0"},
            {"name": "subject", "valueReference": {"reference": f"Patient/{AF}"}},
        ],
    }
    posted = client.post("/fhir/Questionnaire/$populate", json=body, headers=service.headers())
    assert posted.status_code == 200, posted.text
    response = posted.json()["parameter"][0]["resource"]
    assert response["subject"]["reference"] == f"Patient/{AF}"


def test_populate_refuses_without_credentials_and_bad_input(
    client: TestClient, service: Service
) -> None:
    url = "/fhir/Questionnaire/cha2ds2-vasc/$populate"
    assert client.get(url, params={"subject": f"Patient/{AF}"}).status_code == 401
    bad = client.get(url, params={"subject": "Group/1"}, headers=service.headers())
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    missing = client.post(
        "/fhir/Questionnaire/$populate",
        json={"resourceType": "Parameters", "parameter": []},
        headers=service.headers(),
    )
    assert missing.status_code == 422

"""The read-only FHIR REST API over the store: metadata, read, search with paging and _since."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from medagent.record import RecordStore
from medagent.record.fhir_api import create_app


@pytest.fixture
def client(sqlite_store: RecordStore, precious: Path) -> Iterator[TestClient]:
    sqlite_store.import_file(precious)
    with TestClient(create_app(sqlite_store, anonymous=True)) as test_client:
        yield test_client


def _pid(client: TestClient) -> str:
    bundle = client.get("/fhir/Patient").json()
    return str(bundle["entry"][0]["resource"]["id"])


def test_metadata_lists_stored_types(client: TestClient) -> None:
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "CapabilityStatement" and body["fhirVersion"] == "4.0.1"
    types = {r["type"] for r in body["rest"][0]["resource"]}
    assert {"Patient", "Observation", "Condition"} <= types


def test_read_and_not_found(client: TestClient) -> None:
    pid = _pid(client)
    patient = client.get(f"/fhir/Patient/{pid}").json()
    assert patient["id"] == pid and patient["meta"]["versionId"] == "1"
    missing = client.get("/fhir/Patient/nope")
    assert missing.status_code == 404
    assert missing.json()["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/not_a_type/1").status_code == 400


def test_search_by_patient_pages_with_next_links(client: TestClient) -> None:
    pid = _pid(client)
    url: str | None = f"/fhir/Observation?patient={pid}&_count=40"
    seen: list[str] = []
    pages = 0
    while url:
        bundle: dict[str, Any] = client.get(url).json()
        assert bundle["type"] == "searchset" and bundle["total"] == 150
        seen += [e["resource"]["id"] for e in bundle["entry"]]
        url = next((lk["url"] for lk in bundle["link"] if lk["relation"] == "next"), None)
        pages += 1
    assert pages == 4 and len(seen) == len(set(seen)) == 150
    by_subject = client.get(f"/fhir/Condition?subject=Patient/{pid}&_count=0").json()
    assert by_subject["total"] == 21 and by_subject["entry"] == []


def test_search_since(client: TestClient) -> None:
    pid = _pid(client)
    future = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    past = "2000-01-01T00:00:00Z"
    assert client.get(f"/fhir/Observation?patient={pid}&_since={future}").json()["total"] == 0
    assert client.get(f"/fhir/Observation?patient={pid}&_since={past}").json()["total"] == 150
    assert client.get(f"/fhir/Observation?_lastUpdated=ge{past}").json()["total"] == 150
    assert client.get("/fhir/Observation?_since=yesterday").status_code == 400


def test_bearer_token_required_when_validator(sqlite_store: RecordStore) -> None:
    app = create_app(sqlite_store, token_validator=lambda token: token == "good")
    with TestClient(app) as test_client:
        assert test_client.get("/fhir/metadata").status_code == 401
        bad = test_client.get("/fhir/metadata", headers={"Authorization": "Bearer bad"})
        assert bad.status_code == 401
        good = test_client.get("/fhir/metadata", headers={"Authorization": "Bearer good"})
        assert good.status_code == 200


# Regression: without a validator the API used to serve every patient to anyone.
def test_api_without_a_token_validator_must_be_asked_for(sqlite_store: RecordStore) -> None:
    with pytest.raises(ValueError, match="token_validator"):
        create_app(sqlite_store)

"""CDS Hooks 2.0 conformance: discovery, each hook, prefetch and FHIR fetch, feedback, JWTs."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from service_helpers import CdsClientKey, LiveServer, Service, free_port

from medagent.record.audited import audit_context
from medagent.record.fhir_api import create_app as fhir_app
from medagent.service import db
from medagent.service.cds import prefetch_templates
from medagent.service.cds_auth import CdsVerifier

PV = "medagent-patient-view"
FHIR_TOKEN = "fhir-access-token-for-tests"


def url(service: Service, sid: str) -> str:
    return f"{service.settings.base_url}/cds-services/{sid}"


def auth(service: Service, sid: str, **kw: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {service.cds_key.token(url(service, sid), **kw)}"}


def prefetch_of(service: Service, patient_id: str) -> dict[str, Any]:
    """What an EHR would send for the templates, read from the record."""
    store = service.app.state.svc.store
    with audit_context(actor="test-ehr", source="pytest", reason="build a prefetch"):
        out: dict[str, Any] = {"patient": store.get("Patient", patient_id)}
        found_by_key = {
            key: store.search(rtype, patient=patient_id, count=1000)
            for key, rtype in [
                ("conditions", "Condition"),
                ("medications", "MedicationRequest"),
                ("observations", "Observation"),
                ("procedures", "Procedure"),
            ]
        }
    for key, (found, total) in found_by_key.items():
        out[key] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": total,
            "entry": [{"resource": r} for r in found],
        }
    return out


def hook_body(hook: str, patient_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": patient_id, **extra},
    }


def _vital(code: str, value: float, unit: str, i: int) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"v-{i}",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": "Patient/crit-1"},
        "effectiveDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600)),
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org"},
    }


def critical_prefetch() -> dict[str, Any]:
    """A deteriorating patient: NEWS2 is at least 7 whatever the clinician-only items are."""
    vitals = [
        _vital("9279-1", 28, "/min", 1),
        _vital("59408-5", 89, "%", 2),
        _vital("8480-6", 88, "mm[Hg]", 3),
        _vital("8867-4", 135, "/min", 4),
        _vital("8310-5", 39.4, "Cel", 5),
    ]
    empty = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    return {
        "patient": {"resourceType": "Patient", "id": "crit-1", "gender": "female"},
        "conditions": empty,
        "medications": empty,
        "observations": {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": v} for v in vitals],
        },
        "procedures": empty,
    }


def check_cards(cards: list[dict[str, Any]]) -> None:
    for card in cards:
        assert len(card["summary"]) < 140
        assert card["indicator"] in ("info", "warning", "critical")
        assert card["source"]["label"]
        assert card["source"]["url"].startswith(("https://", "http://"))
        assert any(link["type"] == "smart" for link in card["links"])
        uuid.UUID(card["uuid"])


def test_discovery(client: TestClient) -> None:
    services = client.get("/cds-services").json()["services"]
    hooks = {s["hook"] for s in services}
    assert hooks == {"patient-view", "order-select", "order-sign"}
    for s in services:
        assert s["prefetch"] == prefetch_templates()
        assert s["id"] and s["description"]


def test_patient_view_with_prefetch(client: TestClient, service: Service) -> None:
    body = hook_body("patient-view", "demo-af-anticoagulation")
    body["prefetch"] = prefetch_of(service, "demo-af-anticoagulation")
    r = client.post(f"/cds-services/{PV}", json=body, headers=auth(service, PV))
    assert r.status_code == 200, r.text
    cards = r.json()["cards"]
    assert cards
    check_cards(cards)
    assert any("CHA₂DS₂" in c["summary"] for c in cards)
    assert any("filled from the record" in c["summary"] for c in cards)


def test_patient_view_news2_critical(client: TestClient, service: Service) -> None:
    body = hook_body("patient-view", "crit-1")
    body["prefetch"] = critical_prefetch()
    r = client.post(f"/cds-services/{PV}", json=body, headers=auth(service, PV))
    assert r.status_code == 200, r.text
    cards = r.json()["cards"]
    check_cards(cards)
    assert cards[0]["indicator"] == "critical"
    assert cards[0]["summary"].startswith("NEWS2: at least")


@pytest.fixture(scope="module")
def fhir_server(service: Service) -> Iterator[str]:
    app = fhir_app(service.app.state.svc.store, token_validator=lambda t: t == FHIR_TOKEN)
    state = service.app.state.svc
    original = state.settings
    with LiveServer(app, free_port()) as live:
        state.settings = replace(original, cds_fhir_allow=(f"{live.url}/fhir",))
        try:
            yield f"{live.url}/fhir"
        finally:
            state.settings = original


def test_patient_view_without_prefetch_reads_fhir_server(
    client: TestClient, service: Service, fhir_server: str
) -> None:
    body = hook_body("patient-view", "demo-af-anticoagulation")
    body["fhirServer"] = fhir_server
    body["fhirAuthorization"] = {
        "access_token": FHIR_TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "medagent",
    }
    r = client.post(f"/cds-services/{PV}", json=body, headers=auth(service, PV))
    assert r.status_code == 200, r.text
    with_prefetch = hook_body("patient-view", "demo-af-anticoagulation")
    with_prefetch["prefetch"] = prefetch_of(service, "demo-af-anticoagulation")
    same = client.post(f"/cds-services/{PV}", json=with_prefetch, headers=auth(service, PV))
    summaries = [c["summary"] for c in r.json()["cards"]]
    assert summaries == [c["summary"] for c in same.json()["cards"]]
    # A wrong FHIR token: the server refuses, the hook says why (412), never a 5xx.
    body["fhirAuthorization"]["access_token"] = "wrong"
    refused = client.post(f"/cds-services/{PV}", json=body, headers=auth(service, PV))
    assert refused.status_code == 412
    # A fhirServer the service was not configured to read: refused, nothing fetched.
    body["fhirServer"] = "http://127.0.0.1:9/fhir"
    elsewhere = client.post(f"/cds-services/{PV}", json=body, headers=auth(service, PV))
    assert elsewhere.status_code == 412 and "MEDAGENT_CDS_FHIR" in elsewhere.text
    # Neither prefetch nor fhirServer.
    bare = hook_body("patient-view", "demo-af-anticoagulation")
    assert (
        client.post(f"/cds-services/{PV}", json=bare, headers=auth(service, PV)).status_code == 412
    )


def _orders(*codes: str) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "MedicationRequest",
                    "id": f"draft-{code}",
                    "status": "draft",
                    "intent": "order",
                    "subject": {"reference": "Patient/x"},
                    "medicationCodeableConcept": {
                        "coding": [
                            {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code}
                        ]
                    },
                }
            }
            for code in codes
        ],
    }


@pytest.mark.parametrize(
    "sid,hook", [("medagent-order-select", "order-select"), ("medagent-order-sign", "order-sign")]
)
def test_order_hooks_anticoagulant_and_vte(
    client: TestClient, service: Service, sid: str, hook: str
) -> None:
    pid = "demo-af-anticoagulation"
    body = hook_body(hook, pid, draftOrders=_orders("1364430"), selections=["draft-1364430"])
    body["prefetch"] = prefetch_of(service, pid)
    cards = client.post(f"/cds-services/{sid}", json=body, headers=auth(service, sid)).json()
    check_cards(cards["cards"])
    titles = " ".join(c["summary"] for c in cards["cards"])
    assert "HAS-BLED" in titles and "CHA₂DS₂-VASc" in titles and "CHA₂DS₂-VA" in titles
    pid = "demo-postop-vte"
    body = hook_body(hook, pid, draftOrders=_orders("67108"), selections=["draft-67108"])
    body["prefetch"] = prefetch_of(service, pid)
    cards = client.post(f"/cds-services/{sid}", json=body, headers=auth(service, sid)).json()
    titles = " ".join(c["summary"] for c in cards["cards"])
    assert "Caprini" in titles and "Padua" in titles
    # An order that is neither: no cards.
    body = hook_body(hook, pid, draftOrders=_orders("197361"), selections=["draft-197361"])
    body["prefetch"] = prefetch_of(service, pid)
    r = client.post(f"/cds-services/{sid}", json=body, headers=auth(service, sid))
    assert r.json()["cards"] == []


def test_wrong_hook_for_service(client: TestClient, service: Service) -> None:
    body = hook_body("order-sign", "demo-af-anticoagulation")
    body["prefetch"] = prefetch_of(service, "demo-af-anticoagulation")
    r = client.post(f"/cds-services/{PV}", json=body, headers=auth(service, PV))
    assert r.status_code == 400


def test_feedback_is_stored(client: TestClient, service: Service) -> None:
    fb_url = f"/cds-services/{PV}/feedback"
    card = str(uuid.uuid4())
    body = {
        "feedback": [
            {"card": card, "outcome": "accepted", "outcomeTimestamp": "2026-11-22T00:00:00Z"},
            {
                "card": card,
                "outcome": "overridden",
                "outcomeTimestamp": "2026-11-22T00:01:00Z",
                "overrideReason": {"userComment": "already on treatment"},
            },
        ]
    }
    r = client.post(fb_url, json=body, headers=auth(service, PV))
    assert r.status_code == 200, r.text
    stored = db.list_feedback(service.app.state.svc.engine, PV)
    assert [f["outcome"] for f in stored if f["card"] == card] == ["accepted", "overridden"]
    assert client.post(fb_url, json=body).status_code == 401


# --------------------------------------------------------------------------- JWT rejection


def _call(client: TestClient, service: Service, token: str) -> int:
    body = hook_body("patient-view", "crit-1")
    body["prefetch"] = critical_prefetch()
    headers = {"Authorization": f"Bearer {token}"}
    return client.post(f"/cds-services/{PV}", json=body, headers=headers).status_code


def _unsigned(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, key=None, algorithm="none")  # type: ignore[arg-type]


def _claims(service: Service, **kw: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": service.cds_key.issuer,
        "sub": "x",
        "aud": url(service, PV),
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    base.update(kw)
    return base


def test_jwt_rejections(client: TestClient, service: Service) -> None:
    key = service.cds_key
    aud = url(service, PV)
    assert _call(client, service, key.token(aud)) == 200
    cases = {
        "alg none": _unsigned(_claims(service)),
        "HS256 with the public key as secret": jwt.encode(
            _claims(service), "a" * 64, algorithm="HS256", headers={"kid": key.kid}
        ),
        "HS384": jwt.encode(_claims(service), "b" * 64, algorithm="HS384"),
        "wrong audience": key.token("https://other.example.org/cds-services/x"),
        "expired": key.token(aud, iat=int(time.time()) - 4000, exp=int(time.time()) - 3000),
        "no jti": key.token(aud, jti=None),
        "no exp": key.token(aud, exp=None),
        "lives too long": key.token(aud, exp=int(time.time()) + 86400),
        "unknown kid": key.token(aud, headers={"kid": "other"}),
        "jku not allowed": key.token(aud, headers={"jku": "http://127.0.0.1:1/jwks.json"}),
        "ES384 by another key": CdsClientKey(
            ec.generate_private_key(ec.SECP384R1()), key.kid, key.issuer
        ).token(aud),
        "garbage": "not.a.jwt",
    }
    for name, token in cases.items():
        assert _call(client, service, token) == 401, name
    replayed = key.token(aud)
    assert _call(client, service, replayed) == 200
    assert _call(client, service, replayed) == 401, "jti replay"


def test_jwks_by_jku_from_allow_list(client: TestClient, service: Service) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    public.update({"kid": "rsa-1", "alg": "RS384"})
    jwks_app = FastAPI()

    @jwks_app.get("/jwks.json")
    def jwks() -> dict[str, Any]:
        return {"keys": [public]}

    state = service.app.state.svc
    original = state.cds
    with LiveServer(jwks_app, free_port()) as live:
        jku = f"{live.url}/jwks.json"
        state.cds = CdsVerifier(engine=state.engine, jku_allow=[jku])
        try:
            token = jwt.encode(
                _claims(service), rsa_key, algorithm="RS384", headers={"kid": "rsa-1", "jku": jku}
            )
            assert _call(client, service, token) == 200
            rs256 = jwt.encode(
                _claims(service), rsa_key, algorithm="RS256", headers={"kid": "rsa-1", "jku": jku}
            )
            assert _call(client, service, rs256) == 401
        finally:
            state.cds = original

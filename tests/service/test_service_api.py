"""REST API: scales, scoring, population, recommendation, assessments, overrides, imports."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from service_helpers import PASSWORD, Service

from medagent.secure.access import Role

AF = "demo-af-anticoagulation"
SEPSIS = "demo-sepsis-ward"


def test_scales_list_show_and_questionnaire(client: TestClient) -> None:
    listed = client.get("/api/scales").json()
    assert {"phq9", "news2", "has_bled"} <= {s["id"] for s in listed}
    assert next(s for s in listed if s["id"] == "phq9")["patient_answerable"] is True
    assert client.get("/api/scales/news2").json()["id"] == "news2"
    q = client.get("/api/scales/phq9/questionnaire").json()
    assert q["resourceType"] == "Questionnaire"
    missing = client.get("/api/scales/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_score_and_input_errors_list_every_problem(client: TestClient, service: Service) -> None:
    body = {"inputs": {"weight": "150 lb", "height": "65 in"}}
    ok = client.post("/api/scales/bmi/score", json=body, headers=service.headers())
    assert ok.status_code == 200, ok.text
    assert ok.json()["display"].startswith("25.0")
    bad = client.post(
        "/api/scales/bmi/score",
        json={"inputs": {"weight": "-3 kg", "height": "tall"}},
        headers=service.headers(),
    )
    assert bad.status_code == 422
    problem = bad.json()
    assert bad.headers["content-type"] == "application/problem+json"
    assert {e["input"] for e in problem["errors"]} == {"weight", "height"}
    assert "Traceback" not in bad.text


def test_openapi_docs(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "/api/patients/{patient_id}/recommendations" in schema["paths"]
    assert client.get("/docs").status_code == 200


def test_recommendations_and_population_with_provenance(
    client: TestClient, service: Service
) -> None:
    rec = client.get(f"/api/patients/{AF}/recommendations", headers=service.headers()).json()
    assert rec["entries"], rec
    assert all(e["best"]["reasons"] for e in rec["entries"])
    pop = client.get(
        f"/api/patients/{SEPSIS}/scales/news2/population", headers=service.headers()
    ).json()
    filled = {f["id"]: f for f in pop["filled"]}
    assert "respiratory_rate" in filled
    assert filled["respiratory_rate"]["provenance"]["resource_type"] == "Observation"
    assert pop["evaluation"]["result"]["scale"] == "news2"


def test_assessment_override_stored_and_reexplained(client: TestClient, service: Service) -> None:
    h = service.headers(subject="dr-override")
    made = client.post(f"/api/patients/{AF}/scales/has_bled/assessments", json={}, headers=h)
    assert made.status_code == 201, made.text
    over = client.post(
        f"/api/patients/{AF}/scales/has_bled/overrides",
        json={"input": "labile_inr", "value": "true"},
        headers=h,
    )
    assert over.status_code == 201, over.text
    assert over.json()["override"]["user"] == "dr-override"
    rows = client.get(f"/api/patients/{AF}/assessments?scale=has_bled", headers=h).json()
    assert len(rows) >= 2
    latest = client.get(f"/api/patients/{AF}/assessments/{rows[-1]['id']}", headers=h).json()
    assert latest["scale_version"]
    assert latest["overrides"][-1]["input"] == "labile_inr"
    assert latest["reexplained"]["display"] == latest["display"]
    bad = client.post(
        f"/api/patients/{AF}/scales/has_bled/overrides",
        json={"input": "age", "value": "very old"},
        headers=h,
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["input"] == "age"


def test_reexplain_after_library_change(client: TestClient, service: Service) -> None:
    """A stored assessment is recomputed with the definition it was made with, not the live one."""
    import json

    from sqlalchemy import select, update

    from medagent.service.db import assessments

    h = service.headers()
    made = client.post(
        f"/api/patients/{AF}/scales/phq2/assessments",
        json={"answers": {"anhedonia": "several_days", "depressed_mood": "nearly_every_day"}},
        headers=h,
    ).json()
    engine = service.app.state.svc.engine
    # Make the stored definition an older release than the library's (version 0.9.0).
    with engine.begin() as conn:
        stored = conn.execute(
            select(assessments.c.scale_definition).where(assessments.c.id == made["id"])
        ).scalar_one()
        old = {**json.loads(stored), "version": "0.9.0"}
        conn.execute(
            update(assessments)
            .where(assessments.c.id == made["id"])
            .values(scale_definition=json.dumps(old), scale_version="0.9.0")
        )
    again = client.get(f"/api/patients/{AF}/assessments/{made['id']}", headers=h).json()
    assert again["scale_version"] == "0.9.0"
    assert again["reexplained"]["scale_version"] == "0.9.0"
    assert again["reexplained"]["display"] == "4"
    assert again["reexplained"]["explanation"]
    assert again["questionnaire_response"]["resourceType"] == "QuestionnaireResponse"


def test_answers_with_every_problem(client: TestClient, service: Service) -> None:
    bad = client.post(
        f"/api/patients/{AF}/scales/phq2/assessments",
        json={"answers": {"anhedonia": "often", "depressed_mood": "sometimes"}},
        headers=service.headers(),
    )
    assert bad.status_code == 422
    assert {e["input"] for e in bad.json()["errors"]} == {"anhedonia", "depressed_mood"}


def test_import_bundle_and_refusal(client: TestClient, service: Service) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {"resourceType": "Patient", "id": "imported-1", "gender": "male"}}],
    }
    ok = client.post("/api/imports", json=bundle, headers=service.headers())
    assert ok.status_code == 201, ok.text
    assert ok.json()["patients"] == ["imported-1"]
    broken = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {"resourceType": "Patient", "id": "x", "birthDate": "not-a-date"}}],
    }
    refused = client.post("/api/imports", json=broken, headers=service.headers())
    assert refused.status_code == 422
    assert refused.json()["errors"]


def test_password_login_and_rate_limit(client: TestClient) -> None:
    ok = client.post("/auth/token", json={"username": "alice", "password": PASSWORD})
    assert ok.status_code == 200
    token = ok.json()["access_token"]
    listed = client.get("/api/patients", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200
    codes = [
        client.post("/auth/token", json={"username": "mallory", "password": "x"}).status_code
        for _ in range(7)
    ]
    assert codes[0] == 401 and 429 in codes


def test_roles_are_limited(client: TestClient, service: Service) -> None:
    admin = service.headers(Role.ADMIN, "root")
    denied = client.get(f"/api/patients/{AF}/recommendations", headers=admin)
    assert denied.status_code == 403
    assert denied.headers["content-type"] == "application/problem+json"
    entries = list(service.app.state.svc.audit.entries())
    assert any(e.actor == "root" and e.outcome == "denied" for e in entries)


def test_unknown_patient_is_404(client: TestClient, service: Service) -> None:
    r = client.get("/api/patients/nobody/recommendations", headers=service.headers())
    assert r.status_code == 404
    assert json.loads(r.text)["status"] == 404


def test_scale_page_shows_why_a_formula_cannot_compute(
    client: TestClient, service: Service
) -> None:
    """Regression: the MME formula refuses an empty input set; the page says so (was a 422)."""
    r = client.get(
        f"/app/patients/{AF}/scales/morphine_milligram_equivalents", headers=service.headers()
    )
    assert r.status_code == 200
    assert 'id="problems"' in r.text and "opioid" in r.text


def test_note_values_are_offered_with_their_span(client: TestClient, service: Service) -> None:
    page = client.get(f"/app/patients/{AF}/scales/has_bled", headers=service.headers()).text
    assert "<mark>4 units a week</mark>" in page
    assert "DocumentReference/" in page


# A PHQ-9 whose item 9 is positive needs a suicide-risk assessment whatever the total: the alert
# leads the scale page and the CDS card (it was only inside the collapsed explanation).
def test_single_answer_alert_leads_the_scale_page(client: TestClient, service: Service) -> None:
    h = service.headers(subject="dr-phq")
    pid = "phq9-item9-positive"
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {"resourceType": "Patient", "id": pid, "gender": "female"}}],
    }
    assert client.post("/api/imports", json=bundle, headers=h).status_code == 201
    quiet = client.get(f"/app/patients/{pid}/scales/phq9", headers=h).text
    assert 'id="alerts"' not in quiet
    over = client.post(
        f"/api/patients/{pid}/scales/phq9/overrides",
        json={"input": "self_harm_thoughts", "value": "several_days"},
        headers=h,
    )
    assert over.status_code == 201, over.text
    page = client.get(f"/app/patients/{pid}/scales/phq9", headers=h).text
    assert 'id="alerts"' in page and "suicide risk" in page
    assert page.index('id="alerts"') < page.index('id="score"')


def test_single_answer_alert_leads_the_cds_card(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime
    from types import SimpleNamespace

    import medagent.populate as populate_module
    from medagent.scales import evaluate, get_scale
    from medagent.service.cds import scale_card

    result = evaluate(get_scale("phq9"), {"self_harm_thoughts": "several_days"})
    population = SimpleNamespace(
        filled={"self_harm_thoughts": None}, evaluate=lambda: SimpleNamespace(result=result)
    )
    monkeypatch.setattr(populate_module, "populate", lambda *a, **k: population)
    card = scale_card(
        base_url="http://testserver",
        patient_id="p1",
        scale_id="phq9",
        store=None,
        at=datetime(2026, 11, 21, 9, 0),
    )
    assert card is not None
    assert card["indicator"] == "critical"
    assert "suicide risk" in card["summary"] and card["detail"].startswith("Alert:")

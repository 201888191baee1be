"""Patient self-assessment links: signed, expiring, one patient, once, nothing else, limited."""

from __future__ import annotations

import re
import time

import jwt
from fastapi.testclient import TestClient
from service_helpers import Service

from medagent.secure.access import RateLimiter

PATIENT = "demo-copd-exacerbation"


def make_link(client: TestClient, service: Service, scales: list[str], minutes: int = 60) -> str:
    r = client.post(
        f"/api/patients/{PATIENT}/links",
        json={"scales": scales, "minutes": minutes},
        headers=service.headers(),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["url"]).removeprefix(service.settings.base_url)


def test_patient_answers_once_and_clinician_sees_it(client: TestClient, service: Service) -> None:
    path = make_link(client, service, ["phq9", "gad7"])
    page = client.get(path)
    assert page.status_code == 200
    names = set(re.findall(r'name="([a-z0-9_]+\.[a-z0-9_]+)"', page.text))
    assert names and all(n.split(".")[0] in ("phq9", "gad7") for n in names)
    assert "Doreen" not in page.text  # the page shows no patient data
    answers = {n: "several_days" for n in names}
    done = client.post(path, data=answers)
    assert done.status_code == 200, done.text
    assert 'id="thanks"' in done.text
    again = client.post(path, data=answers)
    assert again.status_code == 410
    assert client.get(path).status_code == 410
    rows = client.get(
        f"/api/patients/{PATIENT}/assessments?scale=phq9", headers=service.headers()
    ).json()
    assert rows[-1]["source"] == "patient" and rows[-1]["display"] == "9"
    # item 9 answered "several days": the clinician's list flags the assessment
    assert rows[-1]["alerts"] == ["item9_suicide_risk"]
    full = client.get(
        f"/api/patients/{PATIENT}/assessments/{rows[-1]['id']}", headers=service.headers()
    ).json()
    assert full["questionnaire_response"]["subject"]["reference"] == f"Patient/{PATIENT}"
    page = client.get(f"/app/patients/{PATIENT}", headers=service.headers())
    assert 'data-source="patient"' in page.text
    assert 'class="alert-mark critical"' in page.text


def test_only_patient_answerable_items_are_asked(client: TestClient, service: Service) -> None:
    from medagent.scales import get_scale

    path = make_link(client, service, ["cat_copd", "esas_r"])
    page = client.get(path).text
    for sid in ("cat_copd", "esas_r"):
        for spec in get_scale(sid).inputs:
            asked = f'name="{sid}.{spec.id}"' in page
            assert asked == ("patient" in spec.answerable_by), (sid, spec.id)


def test_expired_tampered_and_foreign_use_refused(client: TestClient, service: Service) -> None:
    secret = service.settings.secret
    now = int(time.time())
    expired = jwt.encode(
        {
            "typ": "selfassess",
            "sub": "patient-link:x",
            "patient": PATIENT,
            "scales": ["phq9"],
            "iat": now - 7200,
            "exp": now - 3600,
            "jti": "expired-link-0001",
        },
        secret,
        algorithm="HS256",
    )
    r = client.get(f"/p/{expired}", headers={"accept": "text/html"})
    assert r.status_code == 401 and "expired" in r.text
    path = make_link(client, service, ["phq9"])
    token = path.removeprefix("/p/")
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert client.get(f"/p/{tampered}").status_code == 401
    # The link token opens nothing else: not the API, not the clinician pages.
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/api/patients/{PATIENT}/assessments", headers=bearer).status_code == 401
    assert client.get(f"/app/patients/{PATIENT}", headers=bearer).status_code == 401
    assert client.get("/api/patients", headers=bearer).status_code == 401
    # A link for a scale with no patient items cannot be made.
    r = client.post(
        f"/api/patients/{PATIENT}/links", json={"scales": ["sofa"]}, headers=service.headers()
    )
    assert r.status_code == 422


def test_invalid_answers_do_not_use_the_link(client: TestClient, service: Service) -> None:
    path = make_link(client, service, ["phq9"])
    bad = client.post(path, data={"phq9.anhedonia": "always"})
    assert bad.status_code == 422
    assert client.get(path).status_code == 200


def test_link_pages_are_rate_limited(client: TestClient, service: Service) -> None:
    state = service.app.state.svc
    original = state.link_limiter
    state.link_limiter = RateLimiter(capacity=3, per_second=0.01)
    try:
        path = make_link(client, service, ["phq9"])
        codes = [client.get(path).status_code for _ in range(5)]
    finally:
        state.link_limiter = original
    assert codes[:3] == [200, 200, 200] and codes[3] == 429

"""The service's audit trail: each request that touches patient data leaves who, what, when,
from where (the client's address) and why; failed sign-ins too; nothing is read unattributed.

Requests go to the live server on 127.0.0.1 (so the address is a real one); each test uses its
own user names, because the session's audit log is shared with the other service tests.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from service_helpers import PASSWORD, Service
from test_cds_hooks import PV, auth, hook_body, prefetch_of

from medagent.record.audited import AuditContextError
from medagent.secure.access import Role
from medagent.secure.audit import AuditEntry, default_audit_path

PATIENT = "demo-sepsis-ward"


def _trail(service: Service, actor: str) -> list[AuditEntry]:
    return service.app.state.svc.audit.search(actor=actor)


def test_a_patient_page_read_is_written_once_with_the_client_address(service: Service) -> None:
    start = datetime.now(UTC).isoformat()
    r = httpx.get(
        f"{service.url}/app/patients/{PATIENT}",
        headers=service.headers(subject="dr-audit-page"),
    )
    assert r.status_code == 200, r.text
    trail = _trail(service, "dr-audit-page")
    assert [(e.action, e.resource, e.source, e.reason) for e in trail] == [
        ("r:Patient", f"Patient/{PATIENT}", "127.0.0.1", "patient page"),  # the decision
        ("read", f"Patient/{PATIENT}", "127.0.0.1", "patient page"),  # the data, once
    ]
    assert trail[0].outcome.startswith("allowed by ")
    assert all(e.ts >= start for e in trail)


def test_an_assessment_writes_the_read_and_the_score(service: Service) -> None:
    r = httpx.post(
        f"{service.url}/api/patients/{PATIENT}/scales/news2/assessments",
        json={},
        headers=service.headers(subject="dr-audit-assess"),
    )
    assert r.status_code == 201, r.text
    trail = _trail(service, "dr-audit-assess")
    assert [(e.action, e.resource, e.source) for e in trail] == [
        ("c:QuestionnaireResponse", f"QuestionnaireResponse/{PATIENT}", "127.0.0.1"),
        ("read", f"Patient/{PATIENT}", "127.0.0.1"),
        ("score", f"Patient/{PATIENT}", "127.0.0.1"),
    ]
    assert {e.reason for e in trail} == {"assess news2"}
    score = trail[-1].detail
    assert score.startswith("news2 v") and f"stored as assessment {r.json()['id']} (api)" in score


def test_overrides_links_and_assessment_reads_are_written(
    client: TestClient, service: Service
) -> None:
    who = service.headers(subject="dr-audit-misc")
    r = client.post(
        f"/api/patients/{PATIENT}/scales/news2/overrides",
        json={"input": "consciousness", "value": "alert"},
        headers=who,
    )
    assert r.status_code == 201, r.text
    r = client.post(f"/api/patients/{PATIENT}/links", json={"scales": ["phq9"]}, headers=who)
    assert r.status_code == 201, r.text
    link_id = r.json()["link_id"]
    assert client.get(f"/api/patients/{PATIENT}/assessments", headers=who).status_code == 200
    actions = [(e.action, e.reason) for e in _trail(service, "dr-audit-misc")]
    assert ("override", "override news2") in actions
    assert ("score", "override news2") in actions  # the re-assessment
    assert ("link", "self-assessment link") in actions
    assert ("read", "list assessments") in actions
    entries = _trail(service, "dr-audit-misc")
    override = next(e for e in entries if e.action == "override")
    assert override.detail == "news2.consciousness entered by user dr-audit-misc"
    link = next(e for e in entries if e.action == "link")
    assert link.detail.startswith(f"self-assessment link {link_id} for phq9")


def test_the_patient_answering_a_link_is_written(client: TestClient, service: Service) -> None:
    r = client.post(
        "/api/patients/demo-copd-exacerbation/links",
        json={"scales": ["gad7"]},
        headers=service.headers(subject="dr-audit-link"),
    )
    path = str(r.json()["url"]).removeprefix(service.settings.base_url)
    page = client.get(path)
    names = set(re.findall(r'name="([a-z0-9_]+\.[a-z0-9_]+)"', page.text))
    assert client.post(path, data={n: "not_at_all" for n in names}).status_code == 200
    subject = f"patient-link:{r.json()['link_id']}"
    got = [(e.action, e.resource, e.reason) for e in _trail(service, subject)]
    assert got == [
        ("open-link", "Patient/demo-copd-exacerbation", "patient self-assessment"),
        ("c:QuestionnaireResponse", "QuestionnaireResponse/demo-copd-exacerbation",
         "patient self-assessment"),
        ("score", "Patient/demo-copd-exacerbation", "patient self-assessment"),
    ]  # fmt: skip


def test_failed_logins_and_bad_tokens_are_written(service: Service) -> None:
    r = httpx.post(
        f"{service.url}/auth/token", json={"username": "mallory-audit", "password": "guess"}
    )
    assert r.status_code == 401
    (failed,) = _trail(service, "mallory-audit")
    assert (failed.action, failed.source, failed.outcome) == ("login", "127.0.0.1", "failed")
    ok = httpx.post(f"{service.url}/auth/token", json={"username": "alice", "password": PASSWORD})
    assert ok.status_code == 200
    assert _trail(service, "alice")[-1].outcome == "success"

    forged = service.session(subject="eve-audit").rsplit(".", 1)[0] + ".forged-signature"
    r = httpx.get(f"{service.url}/api/patients", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
    (bad,) = _trail(service, "eve-audit (unverified)")
    assert (bad.action, bad.source) == ("authenticate", "127.0.0.1")
    assert bad.outcome.startswith("failed: invalid session token")


def test_a_cds_hook_call_writes_what_the_client_sent_and_what_was_read(
    client: TestClient, service: Service
) -> None:
    body = hook_body("patient-view", "demo-af-anticoagulation")
    body["prefetch"] = prefetch_of(service, "demo-af-anticoagulation")
    r = client.post(f"/cds-services/{PV}", json=body, headers=auth(service, PV))
    assert r.status_code == 200, r.text
    trail = _trail(service, f"cds:{service.cds_key.issuer}")[-3:]
    assert [(e.action, e.resource) for e in trail] == [
        ("r:Patient", "Patient/demo-af-anticoagulation"),
        ("write", "Patient/demo-af-anticoagulation"),  # the prefetch, into the scratch store
        ("read", "Patient/demo-af-anticoagulation"),
    ]
    assert {e.reason for e in trail} == {"CDS Hooks patient-view"}
    assert "from cds-prefetch" in trail[1].detail
    bad = client.post(f"/cds-services/{PV}", json=body, headers={"Authorization": "Bearer x.y.z"})
    assert bad.status_code == 401
    failed = service.app.state.svc.audit.search(action="authenticate")[-1]
    assert failed.actor == "cds:(unreadable token)" and failed.outcome.startswith("failed: ")


def test_the_service_store_refuses_reads_without_a_request_context(service: Service) -> None:
    with pytest.raises(AuditContextError):
        service.app.state.svc.store.patients()


def test_a_nurse_denied_is_written_but_reads_nothing(client: TestClient, service: Service) -> None:
    r = client.post(
        "/api/imports",
        json={"resourceType": "Patient", "id": "x"},
        headers=service.headers(Role.NURSE, subject="nurse-audit"),
    )
    assert r.status_code == 403
    assert [(e.action, e.outcome) for e in _trail(service, "nurse-audit")] == [
        ("c:Patient", "denied")
    ]


def test_without_an_audit_path_the_service_keeps_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: with MEDAGENT_AUDIT unset the service wrote its trail to a temporary
    directory, lost when the process ended; it now uses the default log, like the CLI."""
    from medagent.service import Settings, create_app

    monkeypatch.delenv("MEDAGENT_AUDIT", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", monitor=False))
    assert app.state.svc.audit.path == default_audit_path()
    assert default_audit_path().is_relative_to(tmp_path / "data")

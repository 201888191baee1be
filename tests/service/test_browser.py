"""Browser tests: Debian's Chromium driven by Playwright against the live server on 127.0.0.1."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from service_helpers import Service

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "service"
AF = "demo-af-anticoagulation"
COPD = "demo-copd-exacerbation"


def _unavailable() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium; make system-deps as root)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _unavailable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS.parent / ".gitignore").write_text("*\n")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def _offline(context: Any) -> None:
    """Only 127.0.0.1 is reachable; publication links get a stub page instead of the web."""

    def handle(route: Any) -> None:
        if route.request.url.startswith("http://127.0.0.1"):
            route.continue_()
        else:
            route.fulfill(status=200, content_type="text/html", body="<h1>publication</h1>")

    context.route("**/*", handle)


def _signed_in(browser: Any, service: Service, page_path: str) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    _offline(context)
    page = context.new_page()
    token = service.session(subject="dr-browser")
    page.goto(f"{service.url}/auth/session?token={token}&next={page_path}")
    return page


def test_clinician_flow(browser: Any, service: Service) -> None:
    page = _signed_in(browser, service, f"/app/patients/{AF}")
    assert page.locator("#patient-name").inner_text() == "Harold Becker"
    recs = page.locator("#recommendations li.rec")
    assert recs.count() >= 2
    assert page.locator("#recommendations .reasons li").count() >= 2
    page.screenshot(path=str(ARTIFACTS / "clinician-patient.png"), full_page=True)

    page.locator(f'a[href="/app/patients/{AF}/scales/cha2ds2_vasc"]').first.click()
    page.wait_for_url("**/scales/cha2ds2_vasc")
    before = page.locator("#score").inner_text()
    page.locator("#save-assessment").click()
    page.wait_for_load_state()

    # Provenance on demand.
    row = page.locator("#item-hypertension")
    details = row.locator("details.provenance")
    assert not details.locator("dl").is_visible()
    details.locator("summary").click()
    assert details.locator("dl").is_visible()
    assert "Condition/" in details.inner_text()
    page.screenshot(path=str(ARTIFACTS / "clinician-provenance.png"), full_page=True)

    # Override one item: the score changes and the history records who did it.
    with page.expect_navigation():
        row.locator("select").select_option("false")
    after = page.locator("#score").inner_text()
    assert before == "7" and after == "6", (before, after)
    assert "dr-browser" in (page.locator("#item-hypertension").text_content() or "")
    assert page.locator("#history .history-row").count() >= 2
    assert page.locator("#history svg.trend polyline").count() == 1
    page.screenshot(path=str(ARTIFACTS / "clinician-override.png"), full_page=True)

    # One click to the source publication.
    link = page.locator("a.ref-link").first
    href = link.get_attribute("href") or ""
    assert href.startswith(("https://doi.org/", "https://pubmed.ncbi.nlm.nih.gov/"))
    with page.context.expect_page() as popup:
        link.click()
    assert popup.value.url.startswith(href.split("#")[0][:20])

    # A value the note states for an item the record left empty: offered with its span.
    page.goto(f"{service.url}/app/patients/{AF}/scales/has_bled")
    offer = page.locator("#item-drugs details.note-span")
    offer.locator("summary").click()
    assert offer.locator("mark").inner_text() == "aspirin"
    page.screenshot(path=str(ARTIFACTS / "clinician-note-span.png"), full_page=True)
    with page.expect_navigation():
        offer.locator("button.use-note").click()
    assert page.locator("#item-drugs td.value").inner_text() == "Yes"

    # Simplified Chinese.
    page.locator("#lang-switch").click()
    page.wait_for_load_state()
    assert "原始文献" in page.locator("#references h2").inner_text()
    page.screenshot(path=str(ARTIFACTS / "clinician-zh.png"), full_page=True)
    page.context.close()


def test_patient_flow(browser: Any, service: Service) -> None:
    clinician = _signed_in(browser, service, f"/app/patients/{COPD}")
    clinician.locator('input[name="scales"][value="phq9"]').check()
    clinician.locator("#create-link").click()
    clinician.wait_for_load_state()
    url = clinician.locator("#link-url").input_value()
    assert url.startswith(f"{service.url}/p/")

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    _offline(phone)
    patient = phone.new_page()
    patient.goto(url)
    questions = patient.locator(".question")
    assert questions.count() == 9
    for i in range(questions.count()):
        questions.nth(i).locator("input[type=radio]").nth(2).check()  # "more than half the days"
    patient.screenshot(path=str(ARTIFACTS / "patient-form.png"), full_page=True)
    patient.locator("#submit").click()
    patient.wait_for_selector("#thanks")
    patient.screenshot(path=str(ARTIFACTS / "patient-done.png"), full_page=True)

    again = patient.goto(url)
    assert again is not None and again.status == 410
    patient.screenshot(path=str(ARTIFACTS / "patient-link-reused.png"))

    now = int(time.time())
    expired = jwt.encode(
        {
            "typ": "selfassess",
            "sub": "patient-link:old",
            "patient": COPD,
            "scales": ["phq9"],
            "iat": now - 90000,
            "exp": now - 3600,
            "jti": "old-link-000000001",
        },
        service.settings.secret,
        algorithm="HS256",
    )
    refused = patient.goto(f"{service.url}/p/{expired}")
    assert refused is not None and refused.status == 401
    assert "expired" in patient.locator("#problem").inner_text()
    patient.screenshot(path=str(ARTIFACTS / "patient-link-expired.png"))
    phone.close()

    clinician.goto(f"{service.url}/app/patients/{COPD}")
    row = clinician.locator('tr.assessment[data-source="patient"][data-scale="phq9"]').first
    assert row.locator("td.value").inner_text() == "18"
    clinician.screenshot(path=str(ARTIFACTS / "clinician-sees-patient-result.png"), full_page=True)
    clinician.context.close()

"""The ward dashboard in a real browser (Debian's Chromium driven by Playwright): rows appear and
change live over server-sent events. Skipped without them, a failure under CI=true."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from monitor_helpers import T0, TOKEN, vitals

from medagent.monitor.api import create_app
from medagent.monitor.core import Monitor

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def browser() -> Iterator[Any]:
    reason = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "the Python package playwright is not installed"
    if reason is None and not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture
def served(monitor: Monitor) -> Iterator[str]:
    config = uvicorn.Config(
        create_app(monitor, token=TOKEN, background=False),
        host="127.0.0.1",
        port=0,
        log_level="error",
        timeout_graceful_shutdown=1,  # the page's event stream stays open
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.02)
    yield f"http://127.0.0.1:{srv.servers[0].sockets[0].getsockname()[1]}"
    srv.should_exit = True
    thread.join(10)


def test_dashboard_updates_live(browser: Any, served: str, monitor: Monitor) -> None:
    monitor.set_placement("p1", ward="W9", bed="1")
    page = browser.new_page()
    page.goto(f"{served}/monitor/login?token={TOKEN}")  # sets the cookie, opens the wards
    page.goto(f"{served}/monitor/dashboard/W9")
    page.wait_for_function("document.getElementById('status').textContent === 'live'")
    monitor.ingest_fhir(vitals("a", T0))
    page.wait_for_function("document.querySelector('#p-p1').textContent.includes('NEWS2 0')")
    monitor.ingest_fhir(vitals("b", T0 + timedelta(hours=1), hr=135, rr=26, spo2=91))
    page.wait_for_function("document.querySelector('#p-p1').className === 'emergency'")
    row = page.inner_text("#p-p1")
    assert "NEWS2 9" in row and "↑" in row
    assert "alert open" in page.inner_text("#status")
    page.close()

"""Alerts: one per patient and rule (no storm), acknowledgement, escalation after the declared
time, explanations and sources, CDS Hooks cards, live delivery over server-sent events."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import uvicorn
from monitor_helpers import AUTH, T0, TOKEN, Clock, observation, vitals

from medagent.monitor.alerts import SUMMARY_LIMIT, card
from medagent.monitor.api import create_app
from medagent.monitor.core import Monitor


def deteriorate(monitor: Monitor, clock: Clock, steps: int = 10, *, patient: str = "p1") -> None:
    for i in range(steps):
        t = T0 + timedelta(minutes=10 * i)
        monitor.ingest_fhir(
            vitals(f"{patient}-{i}", t, patient=patient, hr=100 + 5 * i, rr=20 + i, spo2=97 - i)
        )
        clock.advance(minutes=1)


def test_a_deteriorating_patient_gets_one_alert_per_score(monitor: Monitor, clock: Clock) -> None:
    deteriorate(monitor, clock, 12)
    alerts = monitor.alerts(patient_id="p1")
    rules = sorted(a.rule for a in alerts)
    assert rules == sorted(set(rules))  # one live alert per rule
    news2 = next(a for a in alerts if a.rule == "news2")
    assert news2.severity == "emergency" and news2.count > 1
    assert news2.summary.startswith("NEWS2 ") and "Emergency response" in news2.summary
    assert "Total" in news2.detail  # the engine's explanation
    assert news2.source_url == "https://doi.org/10.7861/clinmedicine.19-3-260"
    assert "NEWS2" in news2.source_label or "National Early Warning" in news2.source_label


def test_acknowledged_alert_resolves_when_the_condition_passes(
    monitor: Monitor, clock: Clock
) -> None:
    monitor.ingest_fhir(vitals("a", T0, hr=135, rr=26, spo2=95))
    alert = next(a for a in monitor.alerts(patient_id="p1") if a.rule == "news2")
    acked = monitor.acknowledge(alert.id, user="dr.who")
    assert acked.status == "acknowledged" and acked.acknowledged_by == "dr.who"
    monitor.ingest_fhir(vitals("b", T0 + timedelta(minutes=30), hr=140, rr=27, spo2=95))
    assert next(a for a in monitor.alerts(patient_id="p1") if a.rule == "news2").id == alert.id
    monitor.ingest_fhir(vitals("c", T0 + timedelta(hours=1)))
    assert all(a.rule != "news2" for a in monitor.alerts(patient_id="p1"))
    # a new deterioration opens a new alert
    monitor.ingest_fhir(vitals("d", T0 + timedelta(hours=2), hr=140, rr=27))
    again = next(a for a in monitor.alerts(patient_id="p1") if a.rule == "news2")
    assert again.id != alert.id


def test_unacknowledged_alert_escalates_after_declared_time(monitor: Monitor, clock: Clock) -> None:
    monitor.ingest_fhir(vitals("a", T0, hr=135, rr=26, spo2=95))  # emergency: escalate after 5 min
    clock.advance(minutes=4)
    assert monitor.escalate_due() == []
    clock.advance(minutes=1)
    escalated = monitor.escalate_due()
    assert [a.rule for a in escalated] == ["news2"]
    assert monitor.escalate_due() == []  # once


def test_worse_rule_updates_the_same_alert(monitor: Monitor) -> None:
    monitor.ingest_fhir(vitals("a", T0, level="C"))  # single parameter 3
    first = next(a for a in monitor.alerts(patient_id="p1") if a.rule == "news2")
    assert "ward-based review" in first.summary
    monitor.ingest_fhir(vitals("b", T0 + timedelta(minutes=5), level="C", hr=115))
    second = next(a for a in monitor.alerts(patient_id="p1") if a.rule == "news2")
    assert second.id == first.id and "Urgent response" in second.summary


def test_cds_hooks_card(monitor: Monitor, client_monitor: None = None) -> None:
    monitor.ingest_fhir(vitals("a", T0, hr=135, rr=26, spo2=95))
    alert = next(a for a in monitor.alerts(patient_id="p1") if a.rule == "news2")
    alert.summary = "x" * 300
    c = card(alert)
    assert len(c["summary"]) <= SUMMARY_LIMIT < 140
    assert c["indicator"] == "critical"
    assert c["source"]["label"] and c["source"]["url"].startswith("https://doi.org/")
    assert c["detail"] == alert.detail


@pytest.fixture
def server(monitor: Monitor) -> Iterator[str]:
    app = create_app(monitor, token=TOKEN, background=False)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.02)
    port = srv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def test_alerts_are_delivered_live_over_sse(server: str, monitor: Monitor) -> None:
    monitor.set_placement("p1", ward="W1")
    received: list[dict[str, object]] = []

    def listen() -> None:
        with httpx.stream(
            "GET", f"{server}/monitor/events?ward=W1&limit=50", timeout=10, headers=AUTH
        ) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    received.append(json.loads(line[6:]))
                    if received[-1]["type"] == "patient":
                        break

    listener = threading.Thread(target=listen)
    listener.start()
    time.sleep(0.3)
    httpx.post(f"{server}/monitor/fhir", json=vitals("a", T0, hr=135, rr=26, spo2=95), headers=AUTH)
    listener.join(10)
    kinds = [e["type"] for e in received]
    assert "alert" in kinds and "patient" in kinds
    alert = next(e for e in received if e["type"] == "alert")["alert"]
    assert alert["patient_id"] == "p1"  # type: ignore[index]
    # and acknowledged over HTTP
    cards = httpx.get(f"{server}/monitor/cards", params={"patient": "p1"}, headers=AUTH).json()[
        "cards"
    ]
    assert cards and all(len(c["summary"]) < 140 for c in cards)
    aid = monitor.alerts(patient_id="p1")[0].id
    r = httpx.post(f"{server}/monitor/alerts/{aid}/ack", json={"user": "nurse"}, headers=AUTH)
    assert (
        r.status_code == 200 and r.json()["acknowledged_by"] == "nurse (standalone monitor token)"
    )
    assert (
        httpx.post(
            f"{server}/monitor/alerts/99999/ack", json={"user": "x"}, headers=AUTH
        ).status_code
        == 404
    )


def test_dashboard_page_lists_the_ward(server: str, monitor: Monitor) -> None:
    monitor.ingest_fhir(vitals("a", T0, hr=135, rr=26, spo2=95))
    monitor.ingest_fhir(vitals("b", T0, patient="p2"))
    monitor.set_placement("p1", ward="W1", bed="3")
    monitor.set_placement("p2", ward="W1", bed="4")
    monitor.ingest_fhir(vitals("c", T0 + timedelta(hours=1), hr=140, rr=28, spo2=91))
    page = httpx.get(f"{server}/monitor/dashboard/W1", headers=AUTH).text
    assert 'id="p-p1"' in page and 'id="p-p2"' in page
    assert "EventSource" in page and "NEWS2" in page and "↑" in page
    assert page.index('id="p-p1"') < page.index('id="p-p2"')  # the sicker patient first
    rows = httpx.get(f"{server}/monitor/wards/W1", headers=AUTH).json()
    assert rows[0]["patient_id"] == "p1" and rows[0]["alerts"] >= 1 and rows[0]["trend"] == "up"
    assert "W1" in httpx.get(f"{server}/monitor/dashboard", headers=AUTH).text


def test_forecast_crossing_raises_an_alert(monitor: Monitor) -> None:
    for i in range(24):
        t = T0 + timedelta(minutes=10 * i)
        monitor.ingest_fhir(observation(f"h{i}", "heart_rate", 90 + 1.6 * i, t))
    events = monitor.run_forecasts()
    fc = monitor.twin("p1").signals["heart_rate"].forecast
    assert fc is not None and fc.points[-1].lower <= fc.points[-1].mean <= fc.points[-1].upper
    assert fc.points[-1].time - fc.fitted_at <= timedelta(hours=4)
    alert = next(a for a in monitor.alerts(patient_id="p1") if a.rule == "forecast:heart_rate")
    assert alert.summary.startswith("Heart rate projected above 130 /min within 2 h")
    assert events and events[0]["event"] == "opened"

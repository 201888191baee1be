"""Ingest: FHIR POST and WebSocket, HL7 v2 ORU^R01 over MLLP with ACK/NACK, dead letters,
idempotency and durability."""

from __future__ import annotations

from datetime import timedelta

import hl7
import pytest
from fastapi.testclient import TestClient
from monitor_helpers import AUTH, T0, TOKEN, Clock, observation, vitals
from starlette.websockets import WebSocketDisconnect

from medagent.monitor.api import create_app
from medagent.monitor.core import Monitor
from medagent.monitor.mllp import MLLPServer, frame, send
from medagent.record.store import RecordStore


def oru(control: str, obx: list[str], *, msg_type: str = "ORU^R01", pid: str = "p9") -> str:
    segments = [
        f"MSH|^~\\&|MONITOR|ICU|MEDAGENT|HOSP|20250301080000||{msg_type}|{control}|P|2.5",
        f"PID|1||{pid}^^^HOSP^MR||Doe^Jane",
        "PV1|1|I|W3^12^A",
        "OBR|1|||vitals|||20250301080000",
        *obx,
    ]
    return "\r".join(segments) + "\r"


PLAIN_OBX = [  # fields without components: the unit and the code are whole fields
    "OBX|1|NM|8867-4||72|/min|||||F|||20250301080000",
    "OBX|2|CWE|80288-4||V||||||F|||20250301080000",
]

GOOD_OBX = [
    "OBX|1|NM|8867-4^Heart rate^LN||135|/min^^UCUM|||||F|||20250301080000",
    "OBX|2|NM|8310-5^Body temperature^LN||101.3|[degF]^^UCUM|||||F|||20250301080000",
    "OBX|3|NM|9999-9^Unmonitored^LN||5|mg|||||F",
]


@pytest.fixture
def client(monitor: Monitor) -> TestClient:
    return TestClient(create_app(monitor, token=TOKEN, background=False), headers=AUTH)


def test_post_single_and_bundle_are_stored_and_converted(
    client: TestClient, monitor: Monitor
) -> None:
    one = observation("o1", "temperature", 98.6, T0, unit="[degF]")
    r = client.post("/monitor/fhir", json=one)
    assert r.status_code == 200 and r.json()["accepted"] == 1
    assert monitor.twin("p1").signals["temperature"].value == pytest.approx(37.0)
    r = client.post("/monitor/fhir", json=vitals("b1", T0 + timedelta(minutes=1)))
    assert r.json()["accepted"] == 7


def test_same_observation_twice_is_accepted_once(client: TestClient) -> None:
    bundle = vitals("b1", T0)
    assert client.post("/monitor/fhir", json=bundle).json()["accepted"] == 7
    again = client.post("/monitor/fhir", json=bundle).json()
    assert again["accepted"] == 0 and again["duplicates"] == 7


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        # no subject
        ({**observation("x1", "heart_rate", 80, T0), "subject": None}, "Patient reference"),
        # a unit that is not a rate
        (observation("x2", "heart_rate", 80, T0, unit="kg"), "cannot be converted"),
        # no time
        ({**observation("x3", "heart_rate", 80, T0), "effectiveDateTime": None}, "effective"),
        # not an Observation
        ({"resourceType": "Patient", "id": "p"}, "not an Observation"),
    ],
)
def test_malformed_fhir_is_refused_and_dead_lettered(
    client: TestClient, monitor: Monitor, payload: dict[str, object], reason: str
) -> None:
    r = client.post("/monitor/fhir", json=payload)
    assert r.status_code == 422
    assert reason in r.json()["issue"][0]["diagnostics"]
    letters = monitor.dead_letters()
    assert letters and reason in letters[0]["reason"]


def test_websocket_stream_answers_each_message(client: TestClient) -> None:
    with client.websocket_connect("/monitor/fhir/stream", headers=AUTH) as ws:
        ws.send_json(observation("w1", "heart_rate", 88, T0))
        assert ws.receive_json() == {"ok": True, "accepted": 1, "duplicates": 0, "ignored": [],
                                     "scored": 3, "alerts": []}  # fmt: skip
        ws.send_text("{not json")
        assert ws.receive_json()["ok"] is False
        ws.send_json(observation("w2", "heart_rate", 88, T0, unit="kg"))
        answer = ws.receive_json()
        assert answer["ok"] is False and "cannot be converted" in answer["reason"]


def test_hl7_oru_is_acknowledged_and_mapped(monitor: Monitor) -> None:
    ack = hl7.parse(monitor.handle_hl7(oru("C1", GOOD_OBX)))
    assert str(ack.segment("MSA")[1]) == "AA" and str(ack.segment("MSA")[2]) == "C1"
    twin = monitor.twin("p9")
    assert twin.signals["heart_rate"].value == 135
    assert twin.signals["temperature"].value == pytest.approx(38.5)
    assert (twin.ward, twin.bed) == ("W3", "A")


def test_hl7_fields_without_components(monitor: Monitor) -> None:
    # regression: a plain field was indexed as a string ("/min" read as "/", "pz" as "p")
    message = oru("C9", PLAIN_OBX, pid="pz").replace("PV1|1|I|W3^12^A", "PV1|1|I|ICU")
    ack = hl7.parse(monitor.handle_hl7(message))
    assert str(ack.segment("MSA")[1]) == "AA"
    twin = monitor.twin("pz")
    assert twin.signals["heart_rate"].value == 72
    assert twin.signals["consciousness"].value == "voice"
    assert (twin.ward, twin.bed) == ("ICU", None)


@pytest.mark.parametrize(
    ("message", "code", "reason"),
    [
        # wrong message type: application reject
        (oru("C2", GOOD_OBX, msg_type="ADT^A01"), "AR", "unsupported message type"),
        # not HL7 at all
        ("hello", "AR", "MSH"),
        # a value that is not a number: application error
        (
            oru("C3", ["OBX|1|NM|8867-4^HR^LN||fast|/min|||||F|||20250301080000"]),
            "AE",
            "not a number",
        ),
        # no patient id
        (oru("C4", GOOD_OBX, pid=""), "AE", "PID-3"),
        # unit that cannot be converted
        (
            oru("C5", ["OBX|1|NM|8867-4^HR^LN||80|mg|||||F|||20250301080000"]),
            "AE",
            "cannot be converted",
        ),
    ],
)
def test_hl7_nack_carries_the_reason(
    monitor: Monitor, message: str, code: str, reason: str
) -> None:
    ack = hl7.parse(monitor.handle_hl7(message))
    assert str(ack.segment("MSA")[1]) == code
    assert reason in str(ack.segment("MSA")[3])
    assert reason in str(ack.segment("ERR")[8])
    assert str(ack.segment("ERR")[4]) == "E"
    assert reason in monitor.dead_letters()[0]["reason"]
    assert monitor.alerts() == []


def test_mllp_server_frames_and_acks_in_order(
    monitor: Monitor, store: RecordStore, db_path: str
) -> None:
    server = MLLPServer(monitor.handle_hl7).start()
    try:
        replies = send(
            [oru("M1", GOOD_OBX), oru("M2", GOOD_OBX, msg_type="ADT^A01"), oru("M3", GOOD_OBX)],
            port=server.port,
        )
    finally:
        server.stop()
    codes = [
        (str(hl7.parse(r).segment("MSA")[1]), str(hl7.parse(r).segment("MSA")[2])) for r in replies
    ]
    assert codes == [("AA", "M1"), ("AR", "M2"), ("AA", "M3")]
    # accepted means stored: a new monitor on the same database sees it
    fresh = Monitor(RecordStore.open(db_path), clock=Clock(T0))
    fresh.rebuild()
    assert fresh.twin("p9").signals["heart_rate"].value == 135
    assert frame("x") == b"\x0bx\x1c\x0d"


# Regression: an alert id beyond SQLite's 64-bit integers made the acknowledgement route answer
# 500 (OverflowError), found by the service's Schemathesis run; it is now a 422.
def test_acknowledging_an_impossible_alert_id_is_a_client_error(client: TestClient) -> None:
    huge = client.post("/monitor/alerts/99999999999999999999/ack", json={"user": "dr-x"})
    assert huge.status_code == 422
    unknown = client.post("/monitor/alerts/12345/ack", json={"user": "dr-x"})
    assert unknown.status_code == 404


# The standalone monitor (`medagent monitor serve`) served patient data to anyone on the host;
# every route now needs its token.
def test_every_standalone_route_refuses_a_request_without_the_token(monitor: Monitor) -> None:
    from fastapi.routing import APIWebSocketRoute, iter_route_contexts

    app = create_app(monitor, token=TOKEN, background=False)
    anonymous = TestClient(app)
    wrong = TestClient(app, headers={"Authorization": "Bearer not-the-token-0123456789"})
    docs = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/monitor/login"}
    checked = sockets = 0
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        path = getattr(context, "path", "") or getattr(route, "path", "")
        if path in docs:
            continue
        concrete = (
            path.replace("{patient_id}", "p1").replace("{ward}", "W1").replace("{alert_id}", "1")
        )
        if isinstance(route, APIWebSocketRoute):
            for client in (anonymous, wrong):
                with pytest.raises(WebSocketDisconnect), client.websocket_connect(concrete):
                    pass
            sockets += 1
            continue
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            for client in (anonymous, wrong):
                response = client.request(method, concrete, json={})
                assert response.status_code == 401, (method, path, response.status_code)
            checked += 1
    assert checked >= 10 and sockets == 1


def test_sign_in_link_sets_the_cookie_the_dashboard_accepts(monitor: Monitor) -> None:
    anonymous = TestClient(create_app(monitor, token=TOKEN, background=False))
    assert anonymous.get("/monitor/login", params={"token": "wrong"}).status_code == 401
    signed = anonymous.get("/monitor/login", params={"token": TOKEN}, follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == "/monitor/dashboard"
    assert "httponly" in signed.headers["set-cookie"].lower()
    assert anonymous.get("/monitor/dashboard").status_code == 200


def test_short_tokens_are_refused(monitor: Monitor) -> None:
    with pytest.raises(ValueError, match="at least"):
        create_app(monitor, token="short")


def test_standalone_acknowledgement_names_the_person_and_the_token(
    client: TestClient, monitor: Monitor, clock: Clock
) -> None:
    monitor.ingest_fhir(vitals("a", T0, hr=135, rr=26, spo2=91))
    alert = monitor.alerts(patient_id="p1")[0]
    assert client.post(f"/monitor/alerts/{alert.id}/ack", json={}).status_code == 422
    done = client.post(f"/monitor/alerts/{alert.id}/ack", json={"user": "nurse-k"})
    assert done.json()["acknowledged_by"] == "nurse-k (standalone monitor token)"

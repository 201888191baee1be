"""The LLM extractor against a local OpenAI-compatible replay server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from medagent.llm.client import ChatClient
from medagent.notes.llm import extract_llm, merge, schema_for
from medagent.notes.rules import extract_rules
from medagent.scales import get_scale
from medagent.secure.deid import Deidentifier, PatientIdentifiers
from medagent.secure.outbound import OutboundPolicy

NOTE = "A 70-year-old man. BP 150/90 mmHg. He has diabetes."


class _Replay(ThreadingHTTPServer):
    answers: list[str]
    requests: list[dict[str, Any]]


class _Handler(BaseHTTPRequestHandler):
    server: _Replay

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(body)
        content = self.server.answers.pop(0)
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_Replay]:
    srv = _Replay(("127.0.0.1", 0), _Handler)
    srv.answers, srv.requests = [], []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _client(srv: _Replay) -> ChatClient:
    """The replay server plays an on-site model server (declared as such)."""
    port = srv.server_address[1]
    policy = OutboundPolicy.build(onsite=[f"127.0.0.1:{port}"])
    return ChatClient(f"http://127.0.0.1:{port}/v1", "replay", "k", timeout=5, policy=policy)


def _answer(**items: tuple[Any, str | None, str | None]) -> str:
    scale = get_scale("cha2ds2_vasc")
    out = {s.id: {"value": None, "unit": None, "quote": None} for s in scale.inputs}
    for k, (value, unit, quote) in items.items():
        out[k] = {"value": value, "unit": unit, "quote": quote}
    return json.dumps(out)


def test_schema_is_generated_from_inputs() -> None:
    schema = schema_for(get_scale("cha2ds2_vasc"))
    assert schema["properties"]["sex"]["properties"]["value"]["enum"] == ["female", "male", None]
    assert set(schema["required"]) == {s.id for s in get_scale("cha2ds2_vasc").inputs}


def test_quoted_values_are_kept_and_request_is_deterministic(server: _Replay) -> None:
    server.answers.append(
        _answer(age=(70, "a", "70-year-old"), diabetes=(True, None, "He has diabetes"))
    )
    ex = extract_llm(get_scale("cha2ds2_vasc"), NOTE, client=_client(server))
    assert ex.filled["diabetes"].value is True
    assert ex.filled["diabetes"].chosen.span.text == "He has diabetes"
    assert ex.filled["age"].value == (70.0, "a")
    request = server.requests[0]
    assert request["temperature"] == 0
    assert request["response_format"]["type"] == "json_schema"


def test_hallucinated_quote_is_rejected(server: _Replay) -> None:
    server.answers.append(_answer(chf=(True, None, "history of congestive heart failure")))
    ex = extract_llm(get_scale("cha2ds2_vasc"), NOTE, client=_client(server))
    assert "chf" not in ex.filled
    assert any(f.input_id == "chf" and "quote not found" in f.message for f in ex.flags)


def test_number_not_in_quote_is_rejected(server: _Replay) -> None:
    server.answers.append(_answer(age=(75, "a", "70-year-old")))
    ex = extract_llm(get_scale("cha2ds2_vasc"), NOTE, client=_client(server))
    assert "age" not in ex.filled


def test_invalid_json_is_rejected_cleanly(server: _Replay) -> None:
    server.answers.append("Sure! Here is the JSON: {age: 70")
    ex = extract_llm(get_scale("cha2ds2_vasc"), NOTE, client=_client(server))
    assert not ex.filled
    assert ex.flags and "not JSON" in ex.flags[0].message


def test_llm_fills_gaps_and_disagreements_are_flagged(server: _Replay) -> None:
    scale = get_scale("cha2ds2_vasc")
    server.answers.append(
        _answer(sex=("female", None, "A 70-year-old man"), hypertension=(True, None, "BP 150/90"))
    )
    rules = extract_rules(scale, NOTE)
    both = merge(rules, extract_llm(scale, NOTE, client=_client(server)))
    assert both.filled["sex"].value == "male"  # the rules value is kept …
    assert any(f.input_id == "sex" and "disagree" in f.message for f in both.flags)  # … flagged
    assert both.filled["hypertension"].chosen.source == "llm"  # gap filled, with its quote


SECRET = b"notes-llm-test-secret-0123456789"
PATIENT = PatientIdentifiers.from_fhir_patient(
    {
        "resourceType": "Patient",
        "id": "p-7",
        "identifier": [{"value": "8706961"}],
        "name": [{"family": "Stark", "given": ["Precious"]}],
        "birthDate": "1984-02-05",
    }
)
PATIENT_NOTE = (
    "2020-03-10\nPrecious Stark (MRN 8706961), born 1984-02-05, is a 36 year-old woman. "
    "Last menstrual period 2020-01-02. BP 150/90 mmHg. Na 134. She has diabetes."
)


def _user_text(request: dict[str, Any]) -> str:
    return str(request["messages"][-1]["content"])


def test_only_the_deidentified_note_is_sent_and_spans_map_back(server: _Replay) -> None:
    deid = Deidentifier(SECRET)
    sent = deid.deidentify(PATIENT_NOTE, PATIENT).text
    name_quote = sent[sent.index("[NAME") : sent.index("woman") + 5]  # "[NAME-1] (MRN …) … woman"
    server.answers.append(
        _answer(
            age=(36, "a", name_quote),
            hypertension=(True, None, "BP 150/90 mmHg"),
            diabetes=(True, None, "She has diabetes"),
        )
    )
    ex = extract_llm(
        get_scale("cha2ds2_vasc"),
        PATIENT_NOTE,
        client=_client(server),
        patient=PATIENT,
        deidentifier=deid,
    )
    outgoing = json.dumps(server.requests[0])
    for identifier in ("Precious", "Stark", "8706961", "1984-02-05", "2020-03-10", "2020-01-02"):
        assert identifier not in outgoing
    assert "BP 150/90 mmHg" in outgoing and "Na 134" in outgoing  # the clinical numbers stay
    age = ex.filled["age"].chosen
    assert age.span.text.startswith("Precious Stark (MRN 8706961), born 1984-02-05")
    assert PATIENT_NOTE[age.span.start : age.span.end] == age.span.text
    assert age.value == (36.0, "a")
    bp = ex.filled["hypertension"].chosen.span
    assert (bp.start, bp.end) == (PATIENT_NOTE.index("BP 150"), PATIENT_NOTE.index(" mmHg") + 5)
    assert "Precious" in age.original  # the local record of the answer is re-identified


def test_dates_are_shifted_back(server: _Replay) -> None:
    deid = Deidentifier(SECRET)
    sent = deid.deidentify(PATIENT_NOTE, PATIENT)
    shifted = next(k for k, v in sent.reid.dates.items() if v == "2020-01-02")
    scale = get_scale("estimated_due_date")
    answer = {s.id: {"value": None, "unit": None, "quote": None} for s in scale.inputs}
    answer["lmp"] = {"value": shifted, "unit": None, "quote": f"Last menstrual period {shifted}"}
    server.answers.append(json.dumps(answer))
    ex = extract_llm(
        scale, PATIENT_NOTE, client=_client(server), patient=PATIENT, deidentifier=deid
    )
    assert ex.filled["lmp"].value == "2020-01-02"
    assert ex.filled["lmp"].chosen.span.text == "Last menstrual period 2020-01-02"


def test_a_date_in_another_format_is_rejected(server: _Replay) -> None:
    """Regression: any string was taken as a date, so a shifted date could enter the record."""
    scale = get_scale("estimated_due_date")
    answer = {s.id: {"value": None, "unit": None, "quote": None} for s in scale.inputs}
    answer["lmp"] = {"value": "2 Jan 2020", "unit": None, "quote": "Last menstrual period"}
    server.answers.append(json.dumps(answer))
    ex = extract_llm(scale, PATIENT_NOTE, client=_client(server), patient=PATIENT)
    assert "lmp" not in ex.filled
    assert any("not YYYY-MM-DD" in f.message for f in ex.flags)


def test_an_age_only_the_deidentified_text_shows_is_not_taken(server: _Replay) -> None:
    note = "A 94 year-old man with diabetes."
    server.answers.append(_answer(age=(90, "a", "A 90+ year-old man")))
    ex = extract_llm(get_scale("cha2ds2_vasc"), note, client=_client(server))
    assert "94" not in _user_text(server.requests[0])
    assert "age" not in ex.filled
    assert any("de-identified" in f.message for f in ex.flags)


def test_without_the_record_the_pattern_rules_still_apply(server: _Replay) -> None:
    note = "Seen by Dr. Kessler on 03/15/2020; SSN 123-45-6789; phone 617-555-0199. BP 120/80."
    server.answers.append(_answer())
    extract_llm(get_scale("cha2ds2_vasc"), note, client=_client(server))
    text = _user_text(server.requests[0])
    for identifier in ("Kessler", "03/15/2020", "123-45-6789", "617-555-0199"):
        assert identifier not in text
    assert "BP 120/80" in text

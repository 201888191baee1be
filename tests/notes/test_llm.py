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
    return ChatClient(f"http://127.0.0.1:{srv.server_address[1]}/v1", "replay", "k", timeout=5)


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

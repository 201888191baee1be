"""End to end: the LLM extractor → hospital gateway → PQ link → compute gateway → fake LLM.

Everything runs on 127.0.0.1 with the real gateway pair. The fake OpenAI-compatible server
records every request body it receives; the test counts the patients' known identifiers (names,
identifiers, telecoms, address parts, birth dates, every date written in the note) in the notes
before and in what the model received after, and requires zero after.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from medagent.llm.client import ChatClient
from medagent.notes.llm import extract_llm
from medagent.scales import get_scale
from medagent.secure.deid import (
    Deidentifier,
    PatientIdentifiers,
    known_identifier_values,
    leaked,
)
from medagent.secure.gateway import ComputeGateway, HospitalGateway
from medagent.secure.outbound import OutboundPolicyError
from medagent.secure.tls import LinkIdentity, LinkPolicy, generate_link_identity

SECRET = b"gateway-e2e-deid-secret-0123456789"
AGE = re.compile(r"\b(\d{1,2}) year-old\b")
# every date shape the notes use: the original of each must not reach the model
DATES = re.compile(r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{4}\b")


class _FakeLLM(ThreadingHTTPServer):
    bodies: list[bytes]


class _Handler(BaseHTTPRequestHandler):
    """Answers every chat completion from the schema: nulls, plus the age when a note says it."""

    server: _FakeLLM

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.bodies.append(raw)
        body = json.loads(raw)
        note = body["messages"][-1]["content"]
        schema = body["response_format"]["json_schema"]["schema"]
        answer: dict[str, Any] = {
            k: {"value": None, "unit": None, "quote": None} for k in schema["properties"]
        }
        age = AGE.search(note)
        if "age" in answer and age:
            answer["age"] = {"value": int(age.group(1)), "unit": "a", "quote": age.group(0)}
        reply = json.dumps({"choices": [{"message": {"content": json.dumps(answer)}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        return


@dataclass
class Link:
    url: str
    fake: _FakeLLM
    hospital: HospitalGateway
    compute: ComputeGateway


@pytest.fixture
def link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Link]:
    ids: dict[str, LinkIdentity] = {
        n: generate_link_identity(tmp_path, name=n) for n in ("hospital", "compute")
    }
    fake = _FakeLLM(("127.0.0.1", 0), _Handler)
    fake.bodies = []
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    compute = ComputeGateway(
        upstream=("127.0.0.1", fake.server_address[1]),
        policy=LinkPolicy(identity=ids["compute"], peer_pins=frozenset({ids["hospital"].pin})),
        idle_timeout=10,
    )
    compute.start()
    hospital = HospitalGateway(
        remote=compute.address,
        policy=LinkPolicy(identity=ids["hospital"], peer_pins=frozenset({ids["compute"].pin})),
        idle_timeout=10,
    )
    hospital.start()
    url = f"http://127.0.0.1:{hospital.address[1]}"
    monkeypatch.setenv("MEDAGENT_GATEWAY_URL", url)
    monkeypatch.delenv("MEDAGENT_ONSITE_HOSTS", raising=False)
    monkeypatch.delenv("MEDAGENT_OUTBOUND", raising=False)
    monkeypatch.setenv("MEDAGENT_LLM_URL", url + "/v1")
    monkeypatch.setenv("MEDAGENT_LLM_MODEL", "fake")
    try:
        yield Link(url, fake, hospital, compute)
    finally:
        hospital.stop()
        compute.stop()
        fake.shutdown()
        fake.server_close()


def _patients() -> list[tuple[PatientIdentifiers, list[tuple[str, str]]]]:
    """The Synthea patients shipped as demo data (package data, so a clean clone has them)."""
    out = []
    for entry in sorted(resources.files("medagent.demo.patients").iterdir(), key=str):
        if not entry.name.startswith("synthea_"):
            continue
        bundle = json.loads(entry.read_text(encoding="utf-8"))
        found = [e["resource"] for e in bundle["entry"]]
        patient = PatientIdentifiers.from_fhir_patient(
            next(r for r in found if r["resourceType"] == "Patient")
        )
        notes = [
            (r["date"][:10], base64.b64decode(r["content"][0]["attachment"]["data"]).decode())
            for r in found
            if r["resourceType"] == "DocumentReference"
        ]
        notes.append(("2020-01-01", _referral_letter(patient)))
        out.append((patient, notes))
    return out


def _referral_letter(patient: PatientIdentifiers) -> str:
    """Harder than Synthea's notes: every identifier of the record, some in other formats."""
    name = max(patient.names, key=len)
    phone = next(t for t in patient.telecoms if "@" not in t)
    digits = "".join(c for c in phone if c.isdigit())
    born = patient.dates[0]
    us_born = f"{born[5:7]}/{born[8:10]}/{born[:4]}"
    return (
        f"2020-01-01\nReferral for {name} (MRN {patient.identifiers[1]}, SSN "
        f"{patient.identifiers[2]}), DOB {us_born}.\nContact: ({digits[:3]}) {digits[3:6]}-"
        f"{digits[6:]} / {', '.join(t for t in patient.telecoms if '@' in t)}.\n"
        f"Address: {', '.join(patient.addresses)}.\n{name.split()[0].upper()} is a 64 "
        f"year-old with dyspnoea. BP 150/90 mmHg, Na 134, platelets 250000/uL. Driver's license "
        f"{patient.identifiers[-1]}. Seen 03/15/2019 and 2019-04-02."
    )


def _known(patient: PatientIdentifiers, note_date: str, note: str) -> dict[str, str]:
    values = known_identifier_values(patient, (note_date,))
    for written in DATES.findall(note):
        values.setdefault(written, "date")
    return values


def test_nothing_identifying_reaches_the_llm_through_the_gateway(link: Link) -> None:
    client = ChatClient.from_env()  # MEDAGENT_LLM_URL is the hospital gateway
    scale = get_scale("cha2ds2_vasc")
    deid = Deidentifier(SECRET)
    before = after = notes = 0
    by_kind: dict[str, int] = {}
    for patient, patient_notes in _patients():
        reid = deid.new_map(patient)
        for note_date, note in patient_notes:
            known = _known(patient, note_date, note)
            present = leaked(note, known)
            start = len(link.fake.bodies)
            ex = extract_llm(
                scale, note, client=client, patient=patient, deidentifier=deid, reid=reid
            )
            (raw,) = link.fake.bodies[start:]  # exactly one request per note
            received = json.loads(raw)["messages"][-1]["content"]
            # parsed (non-ASCII names are \u-escaped in the raw body) and raw bytes both
            out = leaked(received, present) + leaked(raw.decode(), present)
            notes += 1
            before += len(present)
            after += len(out)
            for value in present:
                by_kind[known[value]] = by_kind.get(known[value], 0) + 1
            assert out == [], (patient.patient_id, out)
            age = AGE.search(note)
            if age:  # the answer's quote maps back to the exact span of the original note
                span = ex.filled["age"].chosen.span
                assert note[span.start : span.end] == span.text == age.group(0)
    print(f"\ngateway e2e: {notes} notes, identifiers before {before}, after {after}, {by_kind}")
    assert notes == 11 and before >= 50 and after == 0
    assert {"name", "identifier", "telecom", "address", "date"} <= set(by_kind)
    # all over the link (a connection counts once both directions closed: wait for the last)
    deadline = time.monotonic() + 10
    while (
        min(link.hospital.forwarded, link.compute.forwarded) < notes and time.monotonic() < deadline
    ):
        time.sleep(0.01)
    assert link.compute.forwarded == notes == link.hospital.forwarded
    assert not link.hospital.refusals and not link.compute.refusals


def test_direct_llm_url_is_refused(link: Link) -> None:
    direct = f"http://127.0.0.1:{link.fake.server_address[1]}/v1"
    with pytest.raises(OutboundPolicyError, match="MEDAGENT_LLM_URL"):
        ChatClient(direct, "fake")
    assert link.fake.bodies == []


def test_extract_command_with_patient_goes_deidentified_through_the_gateway(
    link: Link, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from medagent.cli import app

    bundle = resources.files("medagent.demo.patients").joinpath("synthea_ruben_labadie.json")
    (patient_file := tmp_path / "bundle.json").write_text(bundle.read_text(encoding="utf-8"))
    patient, notes = next(p for p in _patients() if "Labadie" in " ".join(p[0].names))
    letter = notes[-1][1]
    (note_file := tmp_path / "note.txt").write_text(letter, encoding="utf-8")
    args = ["extract", "cha2ds2_vasc", str(note_file), "--extractor", "llm", "--json"]
    result = CliRunner().invoke(app, [*args, "--patient", str(patient_file)])
    assert result.exit_code == 0, result.output
    (raw,) = link.fake.bodies
    received = json.loads(raw)["messages"][-1]["content"]
    assert leaked(received, _known(patient, "2020-01-01", letter)) == []
    age = json.loads(result.output)["extraction"]["filled"]["age"]
    assert age["span"]["text"] == "64 year-old"
    assert letter[age["span"]["start"] : age["span"]["end"]] == "64 year-old"


def test_extract_command_refuses_a_direct_llm_url(
    link: Link, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from medagent.cli import app

    monkeypatch.setenv("MEDAGENT_LLM_URL", f"http://127.0.0.1:{link.fake.server_address[1]}/v1")
    (note_file := tmp_path / "note.txt").write_text("Ruben, 64 year-old.", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["extract", "cha2ds2_vasc", str(note_file), "--extractor", "llm"]
    )
    assert result.exit_code == 1
    assert "MEDAGENT_LLM_URL" in result.output and "MEDAGENT_GATEWAY_URL" in result.output
    assert link.fake.bodies == []

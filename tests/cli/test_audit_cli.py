"""The command line's audit trail: commands on a demo patient, then `audit list|checkpoint|verify`.

Each command that touches patient data writes who (the operating-system user), from where
(`cli@HOSTNAME`), why (the command's purpose) and what, to `$MEDAGENT_AUDIT`.
"""

from __future__ import annotations

import getpass
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from medagent.cli import app
from medagent.demo import load_demo
from medagent.demo.build import INDEX_TIME
from medagent.record import RecordStore

runner = CliRunner(env={"COLUMNS": "200"})
PATIENT = "demo-sepsis-ward"
AT = "2026-03-02T09:00Z"
ME = f"os:{getpass.getuser()}"
HERE = f"cli@{socket.gethostname()}"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with RecordStore.open(url) as store:
        load_demo(store, now=INDEX_TIME)
    audit = tmp_path / "audit.db"
    monkeypatch.setenv("MEDAGENT_AUDIT", str(audit))
    return {"db": url, "audit": audit, "tmp": tmp_path}


def _run(*args: str) -> str:
    out = runner.invoke(app, list(args))
    assert out.exit_code == 0, out.output
    return out.stdout


def _trail(env: dict[str, Any], *filters: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(_run("audit", "list", *filters, "--json"))
    return data


def test_populate_and_assess_leave_a_trail_for_the_patient(env: dict[str, Any]) -> None:
    _run("populate", "news2", PATIENT, "--at", AT, "--db", env["db"])
    _run("assess", PATIENT, "--at", AT, "--db", env["db"], "--json")
    trail = _trail(env, "--patient", PATIENT)
    assert {(e["actor"], e["source"]) for e in trail} == {(ME, HERE)}
    got = [(e["action"], e["reason"]) for e in trail]
    assert got[:2] == [("read", "populate scale news2"), ("score", "populate scale news2")]
    assert got[2] == ("read", "assess: recommend, populate and score")
    scores = [e for e in trail[3:] if e["action"] == "score"]
    assert scores and all(e["reason"] == "assess: recommend, populate and score" for e in scores)
    assert trail[1]["detail"].startswith("news2 v") and "incomplete" in trail[1]["detail"]
    assert all(e["resource"] == f"Patient/{PATIENT}" for e in trail)
    # one read per command, however many queries populate and assess made
    assert [e["action"] for e in trail].count("read") == 2


def test_import_override_recommend_and_list_are_audited(env: dict[str, Any]) -> None:
    bundle = env["tmp"] / "one.json"
    bundle.write_text(
        json.dumps(
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": {"resourceType": "Patient", "id": "p-cli"}}],
            }
        )
    )
    _run("import", str(bundle), "--db", env["db"])
    _run(
        "override",
        "news2",
        PATIENT,
        "consciousness=alert",
        "--user",
        "nurse.lee",
        "--db",
        env["db"],
    )
    _run("recommend", PATIENT, "--db", env["db"], "--json")
    _run("patients", "--db", env["db"], "--json")
    trail = _trail(env)
    got = [(e["action"], e["resource"], e["reason"]) for e in trail]
    assert got == [
        ("write", "Patient/p-cli", f"import {bundle}"),
        ("read", f"Patient/{PATIENT}", "override news2.consciousness"),
        ("override", f"Patient/{PATIENT}", "override news2.consciousness"),
        ("read", f"Patient/{PATIENT}", "recommend scales"),
        ("read", "Patient/*", "list patients"),
    ]
    assert trail[0]["detail"] == f"Patient×1 from {bundle}"
    assert trail[2]["detail"] == "news2.consciousness entered by user nurse.lee"


def test_score_extract_and_seal_are_recorded(env: dict[str, Any]) -> None:
    _run("score", "qsofa", "respiratory_rate=24", "sbp=95", "altered_mentation=false")
    note = env["tmp"] / "note.txt"
    note.write_text("72 year old man, respiratory rate 28, BP 90/60, confused.")
    _run("extract", "qsofa", str(note))
    keys = env["tmp"] / "keys"
    _run("keys", "generate", str(keys), "--name", "hospital")
    _run("keys", "generate", str(keys), "--name", "compute")
    sealed = env["tmp"] / "referral.sealed"
    _run(
        "seal", str(note), "--from", str(keys / "hospital.key.pem"),
        "--to", str(keys / "compute.pub.pem"), "-o", str(sealed),
    )  # fmt: skip
    trail = _trail(env)
    assert [(e["action"], e["resource"]) for e in trail] == [
        ("score", "scale:qsofa"),
        ("score", "note-file"),
        ("export", "sealed-package"),
    ]
    assert trail[0]["detail"].startswith("qsofa v") and "altered_mentation" in trail[0]["detail"]
    assert str(note.resolve()) in trail[1]["detail"]
    assert f"{note}" in trail[2]["detail"] and str(sealed) in trail[2]["detail"]


def test_audit_list_filters_checkpoint_and_verify(env: dict[str, Any]) -> None:
    _run("populate", "news2", PATIENT, "--at", AT, "--db", env["db"])
    _run("populate", "qsofa", "demo-af-anticoagulation", "--at", AT, "--db", env["db"])
    assert [e["reason"] for e in _trail(env, "--patient", "demo-af-anticoagulation")] == [
        "populate scale qsofa"
    ] * 2
    assert len(_trail(env, "--action", "score")) == 2
    assert _trail(env, "--actor", "someone-else") == []
    assert len(_trail(env, "--since", "2000-01-01", "--until", "2999-01-01T00:00Z")) == 4
    assert len(_trail(env, "--limit", "1")) == 1
    text = runner.invoke(app, ["audit", "list", "--patient", PATIENT])
    assert text.exit_code == 0 and f"Patient/{PATIENT}" in text.stdout
    bad = runner.invoke(app, ["audit", "list", "--since", "yesterday"])
    assert bad.exit_code == 2 and "ISO 8601" in bad.output

    keys = env["tmp"] / "keys"
    _run("keys", "generate", str(keys), "--name", "site")
    cp = json.loads(_run("audit", "checkpoint", "--key", str(keys / "site.key.pem"), "--json"))
    assert cp["seq"] == 4
    verified = json.loads(
        _run("audit", "verify", str(env["audit"]), "--public", str(keys / "site.pub.pem"), "--json")
    )
    assert verified == {"ok": True, "entries": 4, "checkpoints": 1, "problems": []}


def test_audit_commands_refuse_a_missing_log(env: dict[str, Any]) -> None:
    out = runner.invoke(app, ["audit", "list"])
    assert out.exit_code == 2 and "no such file" in out.output


def test_a_referral_export_is_written_with_its_package_and_recipient(env: dict[str, Any]) -> None:
    keys = env["tmp"] / "keys"
    _run("keys", "generate", str(keys), "--name", "hospital")
    _run("keys", "generate", str(keys), "--name", "clinic")
    package = env["tmp"] / "referral.sealed"
    _run(
        "export", PATIENT, "--to", str(keys / "clinic.pub.pem"),
        "--from", str(keys / "hospital.key.pem"), "--out", str(package), "--db", env["db"],
    )  # fmt: skip
    trail = _trail(env, "--patient", PATIENT)
    assert [e["action"] for e in trail] == ["read", "export"]
    export = trail[-1]
    assert export["reason"].startswith("referral export to ")
    assert (export["actor"], export["source"]) == (ME, HERE)
    assert f"written to {package}" in export["detail"]
    assert (
        "recipient key " + export["reason"].removeprefix("referral export to ") in export["detail"]
    )

"""`medagent export`: a record sealed to a recipient, then opened again with `medagent open`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from medagent.cli import app
from medagent.record import RecordStore

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "fhir" / "synthea_precious_stark.json"
runner = CliRunner()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str, str]:
    """A record store holding one patient, an audit log, and three identities."""
    monkeypatch.setenv("MEDAGENT_AUDIT", str(tmp_path / "audit.db"))
    db = tmp_path / "record.db"
    out = runner.invoke(app, ["import", str(FIXTURE), "--db", str(db)])
    assert out.exit_code == 0, out.output
    for name in ("hospital", "partner", "stranger"):
        out = runner.invoke(app, ["keys", "generate", str(tmp_path), "--name", name])
        assert out.exit_code == 0, out.output
    store = RecordStore.open(str(db))
    try:
        (summary,) = store.patients()
        total = sum(store.counts(summary.id).values())
    finally:
        store.close()
    return tmp_path, summary.id, str(total)


def _export(d: Path, patient: str, *extra: str) -> Result:
    return runner.invoke(
        app,
        [
            "export",
            patient,
            "--to",
            str(d / "partner.pub.pem"),
            "--from",
            str(d / "hospital.key.pem"),
            "--db",
            str(d / "record.db"),
            *extra,
        ],
    )


def test_export_round_trip_with_open(site: tuple[Path, str, str]) -> None:
    d, patient, total = site
    out = _export(d, patient, "--out", str(d / "referral.sealed"), "--json")
    assert out.exit_code == 0, out.output
    summary = json.loads(out.output)
    assert summary["resources"] == int(total) and summary["patient"] == patient
    package = (d / "referral.sealed").read_bytes()
    assert package.startswith(b"MASEAL")
    assert b"Precious" not in package and b"Stark" not in package  # sealed, not readable
    opened = runner.invoke(
        app,
        [
            "open",
            str(d / "referral.sealed"),
            "--key",
            str(d / "partner.key.pem"),
            "--trust",
            str(d / "hospital.pub.pem"),
            "--replay-db",
            str(d / "replay.sqlite"),
            "-o",
            str(d / "bundle.json"),
        ],
    )
    assert opened.exit_code == 0, opened.output
    bundle = json.loads((d / "bundle.json").read_text(encoding="utf-8"))
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    resources = [e["resource"] for e in bundle["entry"]]
    assert len(resources) == int(total)
    assert resources[0]["resourceType"] == "Patient" and resources[0]["id"] == patient
    assert resources[0]["name"][0]["family"] == "Stark"
    assert {r["resourceType"] for r in resources} >= {"Observation", "Condition", "Encounter"}
    # only the intended recipient can open it
    stranger = runner.invoke(
        app,
        [
            "open",
            str(d / "referral.sealed"),
            "--key",
            str(d / "stranger.key.pem"),
            "--trust",
            str(d / "hospital.pub.pem"),
            "--replay-db",
            str(d / "replay2.sqlite"),
        ],
    )
    assert stranger.exit_code == 1
    # the export is in the audit trail, naming the recipient's key
    with sqlite3.connect(d / "audit.db") as conn:
        reasons = [r for (r,) in conn.execute("SELECT reason FROM audit_entries")]
    assert any(r.startswith("referral export to ") for r in reasons)


def test_export_of_an_unknown_patient_fails_cleanly(site: tuple[Path, str, str]) -> None:
    d, _, _ = site
    out = _export(d, "nobody", "--out", str(d / "x.sealed"))
    assert out.exit_code == 1
    assert not (d / "x.sealed").exists()

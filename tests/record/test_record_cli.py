"""The `import` and `patients` commands (Typer sub-app of the record)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medagent.cli import app

runner = CliRunner()


def test_import_then_patients_json(tmp_path: Path, ruben: Path, precious: Path) -> None:
    db = str(tmp_path / "cli.db")
    result = runner.invoke(app, ["import", str(ruben), str(precious), "--db", db])
    assert result.exit_code == 0, result.output
    assert "of 2 patient(s) from 2 file(s)" in result.output
    listed = runner.invoke(app, ["patients", "--json", "--db", db])
    assert listed.exit_code == 0
    rows = json.loads(listed.output)
    assert [r["name"] for r in rows] == ["Precious Stark", "Ruben Labadie"]
    assert rows[1]["gender"] == "male" and rows[1]["birth_date"] == "1942-05-14"
    table = runner.invoke(app, ["patients", "--db", db])
    assert "Ruben Labadie" in table.output


def test_import_bad_file_exits_1_and_keeps_good_ones(
    tmp_path: Path, ruben: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDAGENT_DB", f"sqlite:///{tmp_path / 'env.db'}")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"resourceType": "Patient", "id": "x", "birthDate": "soon"}))
    result = runner.invoke(app, ["import", str(bad), str(ruben), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["imported"][0]["file"] == str(ruben)
    assert report["failed"][0]["problems"][0].startswith(f"{bad}:Patient.birthDate")
    listed = json.loads(runner.invoke(app, ["patients", "--json"]).output)
    assert [r["name"] for r in listed] == ["Ruben Labadie"]  # the env database was used


def test_import_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["import", str(tmp_path / "nope.json"), "--db", str(tmp_path / "d.db")]
    )
    assert result.exit_code == 2

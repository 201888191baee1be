"""MedCalc-Bench notes mode on a fixture CSV written for the tests, and the notes CLI."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from medagent.cli import app
from medagent.cli.notes import eval_notes
from medagent.eval.medcalc import read_rows
from medagent.eval.medcalc_notes import run_notes

FIXTURE = Path(__file__).parent.parent / "fixtures" / "notes" / "medcalc_fixture.csv"


def test_notes_mode_on_fixture(tmp_path: Path) -> None:
    failures = tmp_path / "failures.jsonl"
    report = run_notes(read_rows(FIXTURE), "rules", failures=failures)
    by_row = {o.row.number: o for o in report.outcomes}
    assert by_row[1].correct_raw  # MAP from a BP fraction
    assert by_row[2].correct_raw  # negations, family history; unlisted findings absent per map
    assert by_row[3].correct_raw
    assert not by_row[4].correct_raw  # nothing to read: incomplete, never assumed
    lines = [json.loads(x) for x in failures.read_text().splitlines()]
    assert [x["row"] for x in lines] == [4]
    assert set(lines[0]["missing"]) == {"sodium", "chloride", "bicarbonate"}
    summary = report.to_dict(mode="notes")
    assert summary["rows"] == 4 and summary["correct"] == 3


def test_extract_command(tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("Patient has a heart rate of 131 bpm and a QT interval of 330 msec.")
    result = CliRunner().invoke(app, ["extract", "qtc_bazett", str(note), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["extraction"]["filled"]["heart_rate"]["span"]["text"] == "heart rate of 131 bpm"
    text = CliRunner().invoke(app, ["extract", "qtc_bazett", str(note)])
    assert "qt_interval = 330" in text.output


def test_dev_half_runs_end_to_end(tmp_path: Path, medcalc_dev: Path) -> None:
    summary = eval_notes(read_rows(medcalc_dev), failures=tmp_path / "f.jsonl")
    assert summary["rows"] == 567
    adjudicated = summary["adjudicated"]
    assert isinstance(adjudicated, dict)
    assert adjudicated["accuracy"] >= 0.75  # the target with the rules alone

"""The `populate` and `override` commands, run through Typer as the CLI registers them."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from medagent.cli.populate import override_command, populate_command
from medagent.demo import load_demo
from medagent.demo.build import INDEX_TIME
from medagent.record import RecordStore

app = typer.Typer()
app.command("populate")(populate_command)
app.command("override")(override_command)
runner = CliRunner(env={"COLUMNS": "200"})
AT = "2026-03-02T09:00Z"


def _db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with RecordStore.open(url) as store:
        load_demo(store, now=INDEX_TIME)
    return url


def test_populate_prints_sources_missing_inputs_and_the_score(tmp_path: Path) -> None:
    db = _db(tmp_path)
    out = runner.invoke(app, ["populate", "news2", "demo-sepsis-ward", "--at", AT, "--db", db])
    assert out.exit_code == 0, out.output
    assert "Observation/demo-sepsis-ward" in out.output
    assert "needs clinical judgement" in out.output
    assert "NEWS2" in out.output and "INCOMPLETE" in out.output


def test_populate_json_and_override_round_trip(tmp_path: Path) -> None:
    db = _db(tmp_path)
    stored = runner.invoke(
        app,
        [
            "override",
            "news2",
            "demo-sepsis-ward",
            "consciousness=new_confusion",
            "--user",
            "nurse.lee",
            "--db",
            db,
            "--json",
        ],
    )
    assert stored.exit_code == 0, stored.output
    assert json.loads(stored.output)["user"] == "nurse.lee"
    out = runner.invoke(app, ["populate", "news2", "demo-sepsis-ward", "--db", db, "--json"])
    data = json.loads(out.output)
    filled = {f["id"]: f for f in data["filled"]}
    assert filled["consciousness"]["provenance"]["entered_by"] == "nurse.lee"
    assert "consciousness" not in {u["id"] for u in data["unfilled"]}
    assert data["evaluation"]["provenance"]["consciousness"]["source"] == "user"


def test_bad_arguments_fail_cleanly(tmp_path: Path) -> None:
    db = _db(tmp_path)
    bad_time = runner.invoke(
        app, ["populate", "news2", "demo-sepsis-ward", "--at", "soon", "--db", db]
    )
    assert bad_time.exit_code == 2
    unknown = runner.invoke(app, ["populate", "news2", "nobody", "--db", db])
    assert unknown.exit_code == 2
    bad_value = runner.invoke(
        app, ["override", "news2", "demo-sepsis-ward", "spo2=300", "--user", "x", "--db", db]
    )
    assert bad_value.exit_code == 2

"""The SDC commands: one Questionnaire as JSON, or the whole library written to a directory."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from medagent.cli.sdc import sdc_app
from medagent.scales import scale_ids

runner = CliRunner()


def test_questionnaire_prints_json() -> None:
    result = runner.invoke(sdc_app, ["questionnaire", "cha2ds2_vasc", "--validate"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["resourceType"] == "Questionnaire"
    assert data["url"].endswith("/Questionnaire/cha2ds2_vasc")


def test_questionnaire_all_writes_every_scale(tmp_path: Path) -> None:
    result = runner.invoke(sdc_app, ["questionnaire", "--all", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.stem for p in tmp_path.glob("*.json")) == sorted(scale_ids())


def test_questionnaire_unknown_scale_fails_cleanly() -> None:
    result = runner.invoke(sdc_app, ["questionnaire", "no_such_scale"])
    assert result.exit_code == 2
    assert "no_such_scale" in result.output


def test_questionnaire_all_needs_out() -> None:
    result = runner.invoke(sdc_app, ["questionnaire", "--all"])
    assert result.exit_code == 2

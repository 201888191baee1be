"""The command line, driven in-process through Typer's runner."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from medagent.cli import app
from medagent.scales import scale_ids

runner = CliRunner()


def test_scales_list_json_has_every_scale() -> None:
    out = runner.invoke(app, ["scales", "list", "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert [r["id"] for r in rows] == scale_ids()
    assert all(r["references"] >= 1 and r["examples"] >= 3 for r in rows)


def test_scales_show_gives_clickable_reference_links() -> None:
    out = runner.invoke(app, ["scales", "show", "cha2ds2_vasc", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["references"][0]["link"] == "https://doi.org/10.1378/chest.09-1584"
    text = runner.invoke(app, ["scales", "show", "cha2ds2_vasc"])
    assert "https://doi.org/10.1378/chest.09-1584" in text.output


def test_scales_show_unknown_scale_fails_clearly() -> None:
    out = runner.invoke(app, ["scales", "show", "nope"])
    assert out.exit_code == 2
    assert "no scale 'nope'" in out.output


def test_scales_verify_passes_on_a_scale() -> None:
    out = runner.invoke(app, ["scales", "verify", "bmi", "cha2ds2_vasc"])
    assert out.exit_code == 0, out.output
    assert "0 failed" in out.output


def test_score_with_units_in_the_value() -> None:
    out = runner.invoke(app, ["score", "bmi", "weight=150lb", "height=65in", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["complete"] is True
    assert data["display"] == "25.0"
    assert data["conversions"][0]["original_unit"] == "[lb_av]"


def test_score_incomplete_lists_missing_and_range() -> None:
    out = runner.invoke(app, ["score", "cha2ds2_vasc", "age=80", "sex=male"])
    assert out.exit_code == 0, out.output
    assert "INCOMPLETE" in out.output
    assert "Still possible: 2 to 8" in out.output


def test_score_bad_input_exits_2_with_every_problem() -> None:
    out = runner.invoke(app, ["score", "cha2ds2_vasc", "age=300", "sex=x"])
    assert out.exit_code == 2
    assert "age:" in out.output and "sex:" in out.output


def test_score_rejects_a_malformed_assignment() -> None:
    out = runner.invoke(app, ["score", "bmi", "weight"])
    assert out.exit_code == 2
    assert "key=value" in out.output

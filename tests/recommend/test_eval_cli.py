"""The evaluation harness (MedCalc-Bench CSV, vignettes) and the CLI commands of the recommender."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from medagent.cli import recommend as cli
from medagent.errors import ScaleDefinitionError
from medagent.eval.recommend import load_vignettes, run_medcalc_csv, run_vignettes

HEADER = [
    "Row Number",
    "Calculator ID",
    "Calculator Name",
    "Category",
    "Output Type",
    "Note ID",
    "Note Type",
    "Patient Note",
    "Question",
    "Relevant Entities",
    "Ground Truth Answer",
    "Lower Limit",
    "Upper Limit",
    "Ground Truth Explanation",
]


def _csv(path: Path) -> Path:
    rows = [
        # the QT interval alone points to the QTc family; Hodges is a member, ranked by entry
        (
            1,
            58,
            "QTc Hodges Calculator",
            "Patient has a heart rate of 76 bpm and a QT interval of 330 msec.",
        ),
        (
            2,
            4,
            "CHA2DS2-VASc Score for Atrial Fibrillation Stroke Risk",
            "A 78-year-old woman with atrial fibrillation, hypertension and a prior stroke.",
        ),
        (
            3,
            13,
            "Estimated Due Date",
            "The patient's last menstrual period was on 03/31/2006. Her cycle length is 24 days.",
        ),
        # nothing in the note points to Wells DVT: the harness must count it as a miss
        (4, 16, "Wells' Criteria for DVT", "A 40-year-old man with a sprained wrist."),
    ]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for number, cid, name, note in rows:
            writer.writerow(
                [
                    number,
                    cid,
                    name,
                    "x",
                    "integer",
                    f"t-{number}",
                    "Synthetic",
                    note,
                    "question not used",
                    "{}",
                    "0",
                    "0",
                    "0",
                    "",
                ]
            )
    return path


def test_medcalc_harness(tmp_path: Path) -> None:
    report = run_medcalc_csv(_csv(tmp_path / "small.csv")).to_dict()
    assert report["overall"]["rows"] == 4
    by_id = {c["calculator_id"]: c for c in report["by_calculator"]}
    assert by_id[58]["top1"] == 1.0  # the family entry contains Hodges
    assert by_id[58]["member_top1"] <= by_id[58]["top1"]  # member ranks are stricter
    assert by_id[4]["top3"] == 1.0
    assert by_id[13]["top3"] == 1.0
    assert by_id[16]["top5"] == 0.0
    assert report["overall"]["top3"] == 0.75


def test_vignettes_load_and_cover_both_languages() -> None:
    vignettes = load_vignettes()
    assert len(vignettes) >= 60
    assert sum(v.lang == "en" for v in vignettes) >= 30
    assert sum(v.lang == "zh" for v in vignettes) >= 30
    assert all(v.source and v.must for v in vignettes)


def test_vignette_loader_rejects_unknown_scales_and_keys() -> None:
    bad = (
        "vignettes:\n"
        "  - {id: a, lang: en, source: s, text: t, must: [no_such_scale]}\n"
        "  - {id: b, lang: fr, source: s, text: t, must: [curb65], colour: red}\n"
    )
    with pytest.raises(ScaleDefinitionError) as info:
        load_vignettes(bad)
    message = str(info.value)
    assert "no_such_scale" in message and "colour" in message and "lang" in message


def test_run_vignettes_on_a_few() -> None:
    few = [v for v in load_vignettes() if v.id in ("en-af-palpitations", "zh-af-palpitations")]
    report = run_vignettes(few).to_dict()
    assert report["overall"]["vignettes"] == 2
    assert report["overall"]["recall"] == 1.0
    assert report["overall"]["precision"] == 1.0


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("recommend")(cli.recommend_command)
    evals = typer.Typer()
    evals.command("recommend")(cli.eval_recommend_command)
    evals.command("vignettes")(cli.eval_vignettes_command)
    app.add_typer(evals, name="eval")
    return app


def test_cli_text_json() -> None:
    result = CliRunner().invoke(
        _app(), ["recommend", "--text", "女性，76岁，心悸，房颤", "--setting", "clinic", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["source"] == "text" and data["sex"] == "female" and data["age"] == 76
    assert any("cha2ds2_vasc" in e["members"] for e in data["entries"])


def test_cli_text_table() -> None:
    result = CliRunner().invoke(
        _app(), ["recommend", "--text", "Heart rate 131 bpm, QT interval 330 msec."]
    )
    assert result.exit_code == 0, result.output
    assert "QTc" in result.output


def test_cli_patient_from_a_store(tmp_path: Path) -> None:
    from medagent.record import RecordStore

    db = tmp_path / "r.db"
    with RecordStore.open(f"sqlite:///{db}") as store:
        store.import_paths([Path(__file__).resolve().parents[1] / "fixtures" / "fhir"])
    result = CliRunner().invoke(
        _app(),
        ["recommend", "552d4ca4-9b30-4982-a4b2-d3aa746358d2", "--db", str(db), "--json"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["source"] == "record"


@pytest.mark.parametrize(
    "args",
    [
        ["recommend"],  # neither a patient nor --text
        ["recommend", "p1", "--text", "x"],  # both
        ["recommend", "--text", "chest pain", "--setting", "moon"],  # unknown setting
        ["recommend", "--text", "chest pain", "--at", "yesterday"],  # bad time
    ],
)
def test_cli_refuses_bad_arguments(args: list[str]) -> None:
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 2


def test_cli_eval_recommend(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        _app(), ["eval", "recommend", str(_csv(tmp_path / "s.csv")), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["overall"]["rows"] == 4

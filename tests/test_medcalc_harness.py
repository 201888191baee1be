"""The MedCalc-Bench harness on a small CSV written for the tests, and on the dev half."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medagent.cli import app
from medagent.eval import medcalc

FIXTURE = Path(__file__).parent / "fixtures" / "medcalc_small.csv"


def test_rows_are_read_with_multiline_notes_and_literal_entities() -> None:
    rows = medcalc.read_rows(FIXTURE)
    assert [r.number for r in rows] == [1, 2, 3, 4, 5]
    assert "\n" in rows[0].note
    assert rows[0].entities["age"] == [78, "years"]


def test_structured_mode_judges_every_row() -> None:
    report = medcalc.run_entities(medcalc.read_rows(FIXTURE)).to_dict(mode="entities")
    assert report["rows"] == 5
    assert report["correct"] == 2  # rows 1 and 3
    by_row = {d["row"]: d for d in report["disagreements"]}
    assert by_row[2]["ours"] == "0"  # the label 1 is wrong on purpose
    assert "entity is not mapped" in by_row[4]["error"]
    assert by_row[5]["error"] == "calculator not mapped"
    assert report["per_calculator"]["4"]["accuracy"] == 0.5


@pytest.mark.parametrize(
    ("calculator", "value", "label", "lower", "upper", "ok"),
    [
        (4, 3.0, "3", "3", "3", True),  # integer calculators: exact after rounding
        (4, 3.4, "3", "3", "3", True),
        (4, 3.6, "3", "3", "3", False),
        (6, 22.0, "22.742", "21.6049", "23.8791", True),  # decimals: within the limits
        (6, 24.0, "22.742", "21.6049", "23.8791", False),
        (13, date(2007, 1, 9), "01/09/2007", "01/09/2007", "01/09/2007", True),  # dates exact
        (69, 99.0, "('14 weeks', '1 days')", "", "", True),  # gestational age as weeks, days
        (69, 100.0, "('14 weeks', '1 days')", "", "", False),
        (6, None, "22.742", "21.6049", "23.8791", False),  # no answer is wrong
    ],
)
def test_judging_follows_the_benchmark_rules(
    calculator: int, value: float | date | None, label: str, lower: str, upper: str, ok: bool
) -> None:
    assert medcalc.judge(calculator, value, label, lower, upper) is ok


def test_cli_json_has_the_documented_keys() -> None:
    out = CliRunner().invoke(app, ["eval", "medcalc", str(FIXTURE), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert {"rows", "correct", "accuracy", "per_calculator"} <= set(data)


def test_boolean_entities_can_map_to_choice_codes() -> None:
    target = medcalc.EntityTarget(input="x", values={"true": "yes_code", "false": "no_code"})
    assert medcalc._targeted(target, True) == "yes_code"
    assert medcalc._targeted(target, False) == "no_code"


def test_every_mapping_targets_real_inputs() -> None:
    from medagent.scales import get_scale

    for mapping in medcalc.calculator_maps().values():
        scale = get_scale(mapping.scale)
        ids = set(scale.input_ids)
        targets: list[str] = []
        for target in mapping.entities.values():
            for t in target if isinstance(target, list) else [target]:
                targets.append(t if isinstance(t, str) else t.input)
        targets += list(mapping.fixed) + list(mapping.absent)
        assert set(targets) <= ids, (mapping.calculator_id, set(targets) - ids)
        if mapping.absent:
            assert mapping.absent_reason
        if mapping.fixed:
            assert mapping.fixed_reason


def test_adjudications_name_their_reason_and_reference() -> None:
    for adj in medcalc.adjudications().values():
        assert adj.calculator_id in medcalc.ADJUDICABLE
        assert adj.reason.strip() and adj.reference.strip()


def test_dev_half_structured_mode(medcalc_dev: Path) -> None:
    """All 55 calculators mapped; 100 % on raw labels wherever no label error is documented,
    and 100 % against the adjudicated labels (each adjudication cites the publication)."""
    rows = medcalc.read_rows(medcalc_dev)
    report = medcalc.run_entities(rows).to_dict(mode="entities")
    assert len(report["per_calculator"]) == 55
    missing = [k for k, v in report["per_calculator"].items() if v["scale"] is None]
    assert missing == []
    assert report["calculators_without_label_errors"]["accuracy"] == 1.0
    assert report["adjudicated"]["accuracy"] == 1.0


def test_two_entities_for_one_boolean_input_combine_by_or() -> None:
    mapping = medcalc.calculator_maps()[17]
    inputs = medcalc.entities_to_inputs(
        mapping,
        {"Cerebrovascular disease history": False, "History of cerebrovascular disease": True},
    )
    assert inputs["cerebrovascular_disease"] is True


def test_unit_spelling_can_be_rewritten_per_entity() -> None:
    target = medcalc.EntityTarget(input="platelets", units={"L": "/L"})
    assert medcalc._targeted(target, [1.19e8, "L"]) == (1.19e8, "/L")


def test_not_computable_adjudication_wants_an_incomplete_result() -> None:
    from medagent.scales import evaluate, get_scale

    row = medcalc.Row(1, 21, "GCS", "severity", "", {}, "10", "10", "10")
    adj = {
        1: medcalc.Adjudication(
            row=1,
            calculator_id=21,
            label="10",
            adjudicated=medcalc.NOT_COMPUTABLE,
            reason="verbal not testable",
            reference="x",
        )
    }
    scale = get_scale("glasgow_coma_scale")
    first = scale.inputs[0]
    partial = evaluate(scale, {first.id: first.options[0].code})
    judged = medcalc._judged(row, None, "", adj, error=None, result=partial)
    assert judged.correct_adjudicated and not judged.correct_raw

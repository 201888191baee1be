"""Item alerts: single answers that call for action whatever the total (PHQ-9 item 9)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from medagent.scales import evaluate, get_scale
from medagent.scales.engine import Result, _plan, interpret
from medagent.scales.loader import scale_from_dict
from medagent.scales.model import Scale
from medagent.scales.verify import run_example

PHQ9 = get_scale("phq9")
ITEM9 = "self_harm_thoughts"
OTHERS = [i.id for i in PHQ9.inputs if i.id != ITEM9]
CODES = [o.code for o in PHQ9.input(ITEM9).options]


def _phq9(item9: object | None, rest: object | None = "not_at_all") -> dict[str, object]:
    inputs: dict[str, object] = {} if rest is None else dict.fromkeys(OTHERS, rest)
    if item9 is not None:
        inputs[ITEM9] = item9
    return inputs


def _ids(result: Result) -> tuple[list[str], list[str]]:
    return [a.id for a in result.alerts], [a.id for a in result.unchecked_alerts]


def _both_paths(scale: Scale, inputs: dict[str, object]) -> Result:
    """Evaluate through ``evaluate`` (fast path when it can) and check the interpreter agrees."""
    result = evaluate(scale, inputs)
    reference = interpret(scale, inputs)
    assert result.alerts == reference.alerts
    assert result.unchecked_alerts == reference.unchecked_alerts
    assert result.explanation == reference.explanation
    return result


@pytest.mark.parametrize(
    ("item9", "fires"),
    [
        ("not_at_all", False),
        ("several_days", True),
        ("more_than_half_the_days", True),
        ("nearly_every_day", True),
        ("1", True),  # alias: the interpreter normalizes it before the test
        (1, True),  # a number for its alias
        ("0", False),
        ("LA6569-3", True),  # LOINC answer code of "several days"
        ("LA6568-5", False),  # LOINC answer code of "not at all"
        ("Nearly every day", True),  # the label
    ],
)
def test_item9_alert_fires_on_any_answer_but_not_at_all(item9: object, fires: bool) -> None:
    result = _both_paths(PHQ9, _phq9(item9))
    assert result.complete
    assert _ids(result) == ((["item9_suicide_risk"], []) if fires else ([], []))


def test_fast_path_gives_the_alert_too() -> None:
    inputs = _phq9("several_days")
    quick = _plan(PHQ9).fast
    assert quick is not None and quick(inputs) is not None  # the fast path takes this one
    result = evaluate(PHQ9, inputs)
    assert result.value == 1 and result.band is not None and result.band.id == "minimal"
    assert _ids(result) == (["item9_suicide_risk"], [])


def test_alert_fires_on_an_incomplete_result() -> None:
    result = _both_paths(PHQ9, {ITEM9: "nearly_every_day"})
    assert not result.complete
    assert (result.minimum, result.maximum) == (3, 27)
    assert _ids(result) == (["item9_suicide_risk"], [])


def test_missing_item9_leaves_the_alert_unchecked_never_clear() -> None:
    result = _both_paths(PHQ9, _phq9(None, "nearly_every_day"))
    assert not result.complete
    assert _ids(result) == ([], ["item9_suicide_risk"])
    text = result.explanation
    assert "ALERT (" not in text
    assert "Alert not yet checked (critical, item9_suicide_risk): needs" in text
    assert f"[{ITEM9}]" in text.splitlines()[1]
    data = result.to_dict()
    assert data["alerts"] == []
    assert data["unchecked_alerts"] == [
        {"id": "item9_suicide_risk", "severity": "critical", "needs": [ITEM9]}
    ]


def test_explanation_puts_the_alert_right_under_the_headline() -> None:
    result = evaluate(PHQ9, _phq9("several_days"))
    lines = result.explanation.splitlines()
    assert lines[0].endswith("1 — Minimal or no depressive symptoms (0–4)")
    assert lines[1].startswith("  ALERT (critical): The PHQ-9 developers' instructions recommend")
    assert lines[2] == (
        "    Because: Thoughts that you would be better off dead or of hurting yourself in some "
        "way [self_harm_thoughts] = Several days"
    )
    assert lines[3].startswith("    Source: Pfizer Inc. Instructions for Patient Health")
    assert lines[3].endswith("https://www.phqscreeners.com/")


def test_no_alert_means_no_alert_lines() -> None:
    result = evaluate(PHQ9, _phq9("not_at_all", "nearly_every_day"))
    assert result.value == 24
    assert "lert" not in result.explanation
    assert result.to_dict()["alerts"] == []


def test_result_to_dict_carries_the_alert_with_its_citation() -> None:
    data = evaluate(PHQ9, _phq9("more_than_half_the_days")).to_dict()
    (alert,) = data["alerts"]
    ref = next(r for r in PHQ9.references if r.key == "phq_instructions")
    assert alert == {
        "id": "item9_suicide_risk",
        "severity": "critical",
        "text": PHQ9.alerts[0].text,
        "citation": ref.citation,
        "link": "https://www.phqscreeners.com/",
        "because": {ITEM9: "more_than_half_the_days"},
    }
    json.dumps(data)


def test_scales_without_alerts_give_none() -> None:
    result = evaluate(get_scale("cha2ds2_vasc"), {"age": 70})
    assert result.alerts == () and result.unchecked_alerts == ()
    assert result.to_dict()["alerts"] == []


@settings(max_examples=60, deadline=None)
@given(
    answers=st.fixed_dictionaries({}, optional={i.id: st.sampled_from(CODES) for i in PHQ9.inputs})
)
def test_item9_alert_depends_on_item9_alone(answers: dict[str, str]) -> None:
    result = _both_paths(PHQ9, dict(answers))
    item9 = answers.get(ITEM9)
    if item9 is None:
        assert _ids(result) == ([], ["item9_suicide_risk"])
    elif item9 == "not_at_all":
        assert _ids(result) == ([], [])
    else:
        assert _ids(result) == (["item9_suicide_risk"], [])


# ------------------------------------------------------------------ conditions, on a small scale


def _demo(minimal_scale: dict[str, Any], *alerts: dict[str, Any]) -> Scale:
    minimal_scale["alerts"] = list(alerts)
    return scale_from_dict(minimal_scale)


def _alert(alert_id: str, *when: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": alert_id,
        "when": list(when),
        "severity": "warning",
        "text": "The source suggests a review.",
        "reference": "ref",
    }


@pytest.mark.parametrize(
    ("inputs", "fired", "unchecked"),
    [
        # every condition holds: it fires
        ({"age": 85, "smoker": True, "grade": "low"}, ["old_smoker", "old"], []),
        # one condition fails on a given input: settled, even with the other one missing
        ({"age": 50}, [], []),
        ({"smoker": False}, [], ["old"]),
        # one condition holds and the other is missing: unchecked, neither fired nor clear
        ({"age": 85}, ["old"], ["old_smoker"]),
        ({"smoker": True}, [], ["old_smoker", "old"]),
        # a quantity with a unit is converted before the test (80 a in months)
        ({"age": "1020 mo", "smoker": "yes", "grade": "High"}, ["old_smoker", "old"], []),
        ({}, [], ["old_smoker", "old"]),
    ],
)
def test_conditions_all_must_hold_and_missing_never_fires(
    minimal_scale: dict[str, Any],
    inputs: dict[str, object],
    fired: list[str],
    unchecked: list[str],
) -> None:
    scale = _demo(
        minimal_scale,
        _alert("old_smoker", {"input": "age", "ge": 80}, {"input": "smoker", "eq": True}),
        _alert("old", {"input": "age", "gt": 79}),
    )
    result = _both_paths(scale, inputs)
    assert _ids(result) == (fired, unchecked)


def test_verify_checks_the_exact_set_of_alerts(minimal_scale: dict[str, Any]) -> None:
    scale = _demo(minimal_scale, _alert("high_grade", {"input": "grade", "eq": "high"}))
    example = scale.examples[2]  # grade high
    assert run_example(scale, example).ok  # no expectation on alerts: not checked
    right = example.model_copy(
        update={"expect": example.expect.model_copy(update={"alerts": ("high_grade",)})}
    )
    assert run_example(scale, right).ok
    wrong = example.model_copy(update={"expect": example.expect.model_copy(update={"alerts": ()})})
    outcome = run_example(scale, wrong)
    assert not outcome.ok
    assert outcome.message == "alerts ['high_grade'], expected []"


# ------------------------------------------------------------------ the command line


def test_cli_score_shows_the_alert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from medagent.cli import app

    monkeypatch.setenv("MEDAGENT_AUDIT", str(tmp_path / "audit.log"))
    runner = CliRunner()
    out = runner.invoke(app, ["score", "phq9", "self_harm_thoughts=1"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[1].startswith("  ALERT (critical):")
    assert "INCOMPLETE" in out.output
    data = json.loads(
        runner.invoke(app, ["score", "phq9", "self_harm_thoughts=1", "--json"]).output
    )
    assert [a["id"] for a in data["alerts"]] == ["item9_suicide_risk"]


def test_cli_show_lists_the_alerts_of_a_scale() -> None:
    from medagent.cli import app

    out = CliRunner().invoke(app, ["scales", "show", "phq9"])
    assert out.exit_code == 0, out.output
    assert "Alerts" in out.output
    assert "item9_suicide_risk" in out.output


def test_explanation_gives_a_quantity_with_its_unit(minimal_scale: dict[str, Any]) -> None:
    scale = _demo(minimal_scale, _alert("old", {"input": "age", "gt": 79}))
    lines = evaluate(scale, {"age": "1020 mo"}).explanation.splitlines()
    assert lines[1] == "  ALERT (warning): The source suggests a review."
    assert lines[2] == "    Because: Age [age] = 85 a"

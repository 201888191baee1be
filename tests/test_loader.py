"""Every validation rule of the scale format, each tested by breaking a valid definition."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from medagent.errors import ScaleDefinitionError
from medagent.scales.loader import parse_scale, scale_from_dict


def test_minimal_scale_is_valid(minimal_scale: dict[str, Any]) -> None:
    scale = scale_from_dict(minimal_scale)
    assert scale.id == "demo_score"
    assert scale.input("smoker").points == 2


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(d: dict[str, Any]) -> None:
        keys = path.split(".")
        target: Any = d
        for k in keys[:-1]:
            target = target[int(k)] if isinstance(target, list) else target[k]
        last = keys[-1]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return apply


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def apply(d: dict[str, Any]) -> None:
        keys = path.split(".")
        target: Any = d
        for k in keys[:-1]:
            target = target[int(k)] if isinstance(target, list) else target[k]
        del target[keys[-1]]

    return apply


BREAKAGES = [
    # (test id, how to break it, text the error must contain)
    ("unknown-top-key", _set("colour", "blue"), "colour"),
    ("unknown-input-key", _set("inputs.1.weight", 3), "weight"),
    ("bad-type", _set("inputs.1.type", "text"), "type"),
    ("quantity-without-unit", _drop("inputs.0.unit"), "needs a UCUM unit"),
    ("quantity-without-range", _drop("inputs.0.range"), "needs an allowed range"),
    ("unknown-unit", _set("inputs.0.unit", "furlongs"), "not a UCUM term"),
    (
        "bracket-gap",
        _set("inputs.0.brackets", [{"lt": 60, "points": 0}, {"ge": 65, "points": 1}]),
        "gap",
    ),
    (
        "bracket-overlap",
        _set("inputs.0.brackets", [{"le": 65, "points": 0}, {"ge": 65, "points": 1}]),
        "overlap",
    ),
    ("band-gap", _set("bands.1.ge", 4), "no interval covers 3"),
    ("band-overlap", _set("bands.1.ge", 2), "covered 2 times"),
    ("band-short", _set("bands.1.le", 5), "no interval covers 6"),
    ("no-doi-or-pmid", _set("references.0.pmid", None), "DOI or a PMID"),
    ("too-few-examples", lambda d: d["examples"].pop(), "at least three worked examples"),
    ("example-unknown-input", _set("examples.0.inputs.height", 3), "'height' is not an input"),
    ("example-unknown-band", _set("examples.0.expect.band", "medium"), "not a band id"),
    ("example-unknown-source", _set("examples.0.source", "nope"), "not a reference key"),
    ("duplicate-input", lambda d: d["inputs"].append(dict(d["inputs"][1])), "duplicate id"),
    ("choice-one-option", lambda d: d["inputs"][2]["options"].pop(), "at least two options"),
    (
        "points-on-choice-partial",
        _set("inputs.2.options.0.points", None),
        "every option has points",
    ),
    (
        "formula-unknown",
        lambda d: d.update(scoring={"method": "formula", "formula": "nope"}),
        "nope",
    ),
    ("no-bands-no-note", _set("bands", []), "bands_note"),
    ("bad-version", _set("version", "one"), "version"),
    ("bad-id", _set("id", "Demo Score"), "id"),
    ("unknown-analyte", _set("inputs.0.analyte", "unobtainium"), "unknown analyte"),
    ("unknown-group", _set("inputs.1.group", "nowhere"), "unknown group"),
    (
        "guidance-unknown-reference",
        _set("bands.1.guidance", [{"text": "X recommends Y.", "reference": "nope"}]),
        "'nope' is not a reference key",
    ),
    (
        "guidance-as-an-order",
        _set("bands.1.guidance", [{"text": "Start anticoagulation.", "reference": "ref"}]),
        "recommends or suggests",
    ),
    ("indications-no-cue", _set("indications", {"age": {"min": 18}}), "at least one cue"),
    (
        "indications-zh-not-chinese",
        _set("indications", {"complaints": {"en": ["chest pain"], "zh": ["chest pain"]}}),
        "no Chinese characters",
    ),
    ("indications-bad-setting", _set("indications", {"settings": ["garden"]}), "settings"),
    (
        "indications-bad-refresh",
        _set("indications", {"settings": ["ed"], "refresh": "12 hours"}),
        "ISO 8601 duration",
    ),
    (
        "trigger-bad-unit",
        _set(
            "indications",
            {"triggers": [{"label": "x", "loinc": ["1-8"], "unit": "furlongs", "gt": 1}]},
        ),
        "not a UCUM term",
    ),
]


def _alert(**changes: Any) -> dict[str, Any]:
    """A valid alert of the minimal scale, with some keys changed."""
    return {
        "id": "grade_high",
        "when": [{"input": "grade", "eq": "high"}],
        "severity": "critical",
        "text": "The source recommends a review whatever the total.",
        "reference": "ref",
        **changes,
    }


ALERT_BREAKAGES = [
    # (test id, alerts, dotted path of the problem, text the problem must contain)
    (
        "unknown-input",
        [_alert(when=[{"input": "height", "gt": 2}])],
        "alerts.0(grade_high).when.0.input",
        "unknown input 'height'",
    ),
    (
        "eq-not-an-option",
        [_alert(when=[{"input": "grade", "eq": "medium"}])],
        "alerts.0(grade_high).when.0.eq",
        "'medium' is not an option of grade",
    ),
    (
        "eq-number-on-a-choice",  # YAML 1 is a number, never the code "1"
        [_alert(when=[{"input": "grade", "eq": 1}])],
        "alerts.0(grade_high).when.0.eq",
        "is not an option of grade",
    ),
    (
        "in-not-an-option",
        [_alert(when=[{"input": "grade", "in": ["high", "severe"]}])],
        "alerts.0(grade_high).when.0.in",
        "'severe' is not an option of grade",
    ),
    (
        "in-on-a-boolean",
        [_alert(when=[{"input": "smoker", "in": ["true"]}])],
        "alerts.0(grade_high).when.0.in",
        "in needs a choice input",
    ),
    (
        "numeric-test-on-a-choice",
        [_alert(when=[{"input": "grade", "ge": 1}])],
        "alerts.0(grade_high).when.0.ge",
        "ge needs a numeric input; grade is choice",
    ),
    (
        "numeric-test-on-a-boolean",
        [_alert(when=[{"input": "smoker", "gt": 0}])],
        "alerts.0(grade_high).when.0.gt",
        "gt needs a numeric input; smoker is boolean",
    ),
    (
        "boolean-eq-not-true-or-false",
        [_alert(when=[{"input": "smoker", "eq": "yes"}])],
        "alerts.0(grade_high).when.0.eq",
        "eq takes true or false",
    ),
    (
        "numeric-eq-not-a-number",
        [_alert(when=[{"input": "age", "eq": "old"}])],
        "alerts.0(grade_high).when.0.eq",
        "eq takes a number",
    ),
    (
        "condition-tests-nothing",
        [_alert(when=[{"input": "grade"}])],
        "alerts.0(grade_high).when.0",
        "needs eq, in, ge, gt, le or lt",
    ),
    ("no-condition", [_alert(when=[])], "alerts.0.when", "at least 1 item"),
    (
        "unknown-reference",
        [_alert(reference="nope")],
        "alerts.0(grade_high).reference",
        "'nope' is not a reference key",
    ),
    ("duplicate-id", [_alert(), _alert()], "alerts.1.id", "duplicate id 'grade_high'"),
    (
        "an-order",
        [_alert(text="Refer today.")],
        "alerts.0(grade_high).text",
        "recommends or suggests",
    ),
    ("bad-severity", [_alert(severity="urgent")], "alerts.0.severity", "warning"),
    ("unknown-key", [_alert(colour="red")], "alerts.0.colour", "Extra inputs"),
]


@pytest.mark.parametrize(
    ("alerts", "path", "message"),
    [b[1:] for b in ALERT_BREAKAGES],
    ids=[b[0] for b in ALERT_BREAKAGES],
)
def test_loader_rejects_alert(
    minimal_scale: dict[str, Any], alerts: list[dict[str, Any]], path: str, message: str
) -> None:
    minimal_scale["alerts"] = alerts
    with pytest.raises(ScaleDefinitionError) as info:
        scale_from_dict(minimal_scale)
    found = [p for p in info.value.problems if p.path == path]
    assert found, [str(p) for p in info.value.problems]
    assert any(message in p.message for p in found), [p.message for p in found]


def test_valid_alerts_load(minimal_scale: dict[str, Any]) -> None:
    minimal_scale["alerts"] = [
        _alert(),
        _alert(
            id="old_smoker",
            severity="warning",
            when=[{"input": "age", "ge": 80}, {"input": "smoker", "eq": True}],
        ),
    ]
    minimal_scale["examples"][2]["expect"]["alerts"] = ["grade_high"]
    scale = scale_from_dict(minimal_scale)
    assert [a.id for a in scale.alerts] == ["grade_high", "old_smoker"]
    assert scale.alerts[1].when[1].eq is True
    assert scale.examples[2].expect.alerts == ("grade_high",)


def test_example_expecting_an_unknown_alert_is_rejected(minimal_scale: dict[str, Any]) -> None:
    minimal_scale["examples"][0]["expect"]["alerts"] = ["nope"]
    with pytest.raises(ScaleDefinitionError) as info:
        scale_from_dict(minimal_scale)
    assert [p.path for p in info.value.problems] == ["examples.0(a).expect.alerts"]
    assert "'nope' is not an alert id" in str(info.value)


def test_item_conditions_are_checked_like_alert_conditions(minimal_scale: dict[str, Any]) -> None:
    # the same rules hold for the conditions of a scoring item (one checker for both)
    minimal_scale["scoring"]["items"] = [
        {
            "id": "older_smoker",
            "label": "Older smoker",
            "source": "smoker",
            "when": [{"input": "grade", "eq": "medium"}],
            "points": 1,
        }
    ]
    with pytest.raises(ScaleDefinitionError) as info:
        scale_from_dict(minimal_scale)
    paths = [p.path for p in info.value.problems]
    assert "scoring.items.0(older_smoker).when.0.eq" in paths


@pytest.mark.parametrize(
    ("breakage", "message"), [b[1:] for b in BREAKAGES], ids=[b[0] for b in BREAKAGES]
)
def test_loader_rejects(
    minimal_scale: dict[str, Any], breakage: Callable[[dict[str, Any]], None], message: str
) -> None:
    breakage(minimal_scale)
    with pytest.raises(ScaleDefinitionError) as info:
        scale_from_dict(minimal_scale)
    assert message in str(info.value)


def test_loader_reports_every_problem_at_once(minimal_scale: dict[str, Any]) -> None:
    minimal_scale["inputs"][0]["unit"] = "furlongs"
    minimal_scale["references"][0]["pmid"] = None
    minimal_scale["examples"].pop()
    with pytest.raises(ScaleDefinitionError) as info:
        scale_from_dict(minimal_scale)
    assert len(info.value.problems) == 3
    assert {p.path for p in info.value.problems} >= {"inputs.0(age).unit", "references", "examples"}


def test_indications_and_guidance_load(minimal_scale: dict[str, Any]) -> None:
    minimal_scale["indications"] = {
        "settings": ["ed", "ward"],
        "complaints": {"en": ["chest pain"], "zh": ["胸痛"]},
        "triggers": [{"label": "troponin high", "loinc": ["6598-7"], "unit": "ug/L", "gt": 0.04}],
        "refresh": "PT12H",
    }
    minimal_scale["bands"][1]["guidance"] = [
        {"text": "The guideline recommends review.", "reference": "ref", "strength": "I"}
    ]
    scale = scale_from_dict(minimal_scale)
    assert scale.indications is not None
    assert scale.indications.complaints.zh == ("胸痛",)
    assert scale.bands[1].guidance[0].strength == "I"


def test_bad_yaml_is_reported() -> None:
    with pytest.raises(ScaleDefinitionError, match="not valid YAML"):
        parse_scale("id: [unclosed", source="broken.yaml")


def test_library_parses_yaml_once_and_reads_json_after(tmp_path: Path) -> None:
    env = {**os.environ, "MEDAGENT_CACHE_DIR": str(tmp_path)}
    code = "from medagent.scales import get_scale; print(get_scale('bmi').version)"
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
        )
        assert out.stdout.strip() == "1.1.0", out.stderr
    (cached,) = (tmp_path / "scales").glob("bmi-*.json")
    # A damaged cache file is ignored and rebuilt, never trusted.
    cached.write_text("[")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert out.stdout.strip() == "1.1.0", out.stderr

"""NLM's FHIRPath engine (npm ``fhirpath``) computes every exported total as our engine does.

The Node project in ``tests/sdc/node`` pins the engine (``package-lock.json``); ``npm ci`` installs
it when ``node_modules`` is missing. Without network access the test skips, except under
``CI=true``, where it fails. Every evaluation runs in one Node process.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from medagent.scales import Result, all_scales, evaluate
from medagent.scales.model import InputDef, InputType, Scale
from medagent.sdc import TOTAL_LINK_ID, questionnaire, questionnaire_response, total_expression

NODE_DIR = Path(__file__).parent / "node"
SEED = 20261122
RANDOM_CASES = 60  # per scale: complete and partial answer sets drawn at thresholds

CALCULATED = [
    s
    for s in all_scales()
    if s.scoring.method == "sum" and total_expression(s).expression is not None
]


def _setup_node() -> str:
    """Install the pinned FHIRPath engine if needed; skip (or fail under CI) when impossible."""
    in_ci = os.environ.get("CI", "").lower() == "true"

    def unavailable(reason: str) -> None:
        if in_ci:
            pytest.fail(reason)
        pytest.skip(reason)

    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        unavailable("node and npm are needed to run NLM's FHIRPath engine")
    assert node is not None and npm is not None
    if not (NODE_DIR / "node_modules" / "fhirpath" / "package.json").exists():
        proc = subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--fetch-retries=1"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode != 0:
            unavailable(f"npm ci could not install fhirpath: {proc.stderr.strip()[-500:]}")
    return node


@dataclass(frozen=True)
class Case:
    id: str
    scale: Scale
    expected: float | None  # the engine's total, None when its result is incomplete
    kind: str  # example | random-complete | random-partial
    weights: dict[str, float]  # answered choice inputs -> the points of the chosen option
    response: dict[str, Any]  # built from the engine's checked inputs, the total left out


def _weights(scale: Scale, values: dict[str, object]) -> dict[str, float]:
    out: dict[str, float] = {}
    for spec in scale.inputs:
        value = values.get(spec.id)
        if spec.type is InputType.CHOICE and value is not None:
            option = spec.option(str(value))
            if option is not None and option.points is not None:
                out[spec.id] = option.points
    return out


def _candidates(scale: Scale, spec: InputDef) -> list[object]:
    """Values worth trying: options, booleans, and numbers at every threshold that involves them."""
    if spec.type is InputType.BOOLEAN:
        return [True, False]
    if spec.type is InputType.CHOICE:
        return [o.code for o in spec.options]
    if spec.type is InputType.DATE or spec.range is None:
        return []
    lo, hi = spec.range
    step = 1.0 if spec.type is InputType.INTEGER else 0.1
    points = {lo, hi, (lo + hi) / 2}
    rules = [spec, *[i for i in scale.scoring.items if i.source == spec.id]]
    for rule in rules:
        for b in rule.brackets:
            points.update(x for x in (b.ge, b.gt, b.le, b.lt) if x is not None)
    for item in scale.scoring.items:
        for cond in item.when:
            if cond.input == spec.id:
                points.update(x for x in (cond.ge, cond.gt, cond.le, cond.lt) if x is not None)
    near = {round(p + d, 6) for p in points for d in (-step, 0.0, step)}
    if spec.type is InputType.INTEGER:
        near = {float(round(p)) for p in near}
    return [p for p in sorted(near) if lo <= p <= hi]


# Partial answers the engine still settles; each once made the expression stay empty.
SETTLED: list[tuple[str, str, dict[str, object]]] = [
    # SpO₂ 75 % scores 3 on either SpO₂ scale, so the missing scale does not matter
    (
        "news2",
        "spo2-scale-missing",
        {
            "respiratory_rate": 11.9,
            "spo2": 75,
            "supplemental_oxygen": True,
            "sbp": 159.9,
            "pulse": 50,
            "consciousness": "voice",
            "temperature": 35.9,
        },
    ),
    # CAT 1 and mMRC 1 both mean "fewer symptoms": the symptom measure used does not matter
    (
        "gold_abe",
        "symptom-tool-missing",
        {"moderate_exacerbations": 24, "cat_score": 1, "mmrc_grade": 1},
    ),
    # a stroke already gives the stroke/TIA/thromboembolism group its 2 points
    (
        "cha2ds2_vasc",
        "group-at-ceiling",
        {
            "age": 50,
            "sex": "male",
            "chf": False,
            "hypertension": False,
            "diabetes": False,
            "stroke": True,
            "vascular_disease": False,
        },
    ),
]


def _cases() -> list[Case]:
    rng = random.Random(SEED)
    cases: list[Case] = []
    by_id = {s.id: s for s in CALCULATED}
    for scale_id, name, inputs in SETTLED:
        scale = by_id[scale_id]
        result = evaluate(scale, inputs)
        assert result.complete and not result.inputs.keys() >= set(scale.input_ids), name
        cases.append(
            Case(f"{scale_id}:{name}", scale, float(result.value), "settled", {}, _response(result))  # type: ignore[arg-type]
        )
    for scale in CALCULATED:
        for example in scale.examples:
            result = evaluate(scale, example.inputs)
            expected = float(result.value) if result.complete else None  # type: ignore[arg-type]
            cases.append(
                Case(
                    f"{scale.id}:{example.id}",
                    scale,
                    expected,
                    "example",
                    _weights(scale, dict(result.inputs)),
                    _response(result),
                )
            )
        pools = {spec.id: _candidates(scale, spec) for spec in scale.inputs}
        for n in range(RANDOM_CASES):
            partial = n % 2 == 1
            values = {
                k: rng.choice(pool)
                for k, pool in pools.items()
                if pool and not (partial and rng.random() < 0.3)
            }
            result = evaluate(scale, values)
            expected = float(result.value) if result.complete else None  # type: ignore[arg-type]
            kind = "random-partial" if partial else "random-complete"
            cases.append(
                Case(f"{scale.id}:{kind}-{n}", scale, expected, kind, {}, _response(result))
            )
    return cases


@pytest.fixture(scope="module")
def fhirpath_run() -> tuple[list[Case], dict[str, Any]]:
    node = _setup_node()
    cases = _cases()
    payload = {
        "questionnaires": {s.id: questionnaire(s) for s in CALCULATED},
        "cases": [
            {
                "id": c.id,
                "questionnaire": c.scale.id,
                "response": c.response,
                "weights": sorted(c.weights),
            }
            for c in cases
        ],
    }
    proc = subprocess.run(
        [node, str(NODE_DIR / "evaluate.js")],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return cases, json.loads(proc.stdout)


def _response(result: Result) -> dict[str, Any]:
    """The response of a result, without its total: FHIRPath must compute that itself."""
    response = questionnaire_response(result, response_id="r")
    response["item"] = [i for i in response["item"] if i["linkId"] != TOTAL_LINK_ID]
    return response


@pytest.mark.parametrize("scale", CALCULATED, ids=lambda s: s.id)
def test_fhirpath_total_matches_engine(
    scale: Scale, fhirpath_run: tuple[list[Case], dict[str, Any]]
) -> None:
    cases, outputs = fhirpath_run
    mine = [c for c in cases if c.scale.id == scale.id]
    assert any(c.kind == "example" and c.expected is not None for c in mine)
    for case in mine:
        out = outputs[case.id]
        assert "error" not in out, (case.id, out.get("error"))
        total = out["total"]
        if case.expected is None:
            assert total == [], f"{case.id}: FHIRPath gave {total}, the engine is incomplete"
        else:
            assert len(total) == 1, f"{case.id}: FHIRPath gave {total}, engine {case.expected}"
            assert total[0] == pytest.approx(case.expected, abs=1e-9), case.id
        for link_id, points in case.weights.items():
            assert out["weights"][link_id] == [pytest.approx(points)], (case.id, link_id)

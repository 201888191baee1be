"""MedCalc-Bench harness: map each row to a scale, compute, and judge with the benchmark's rules.

The CSV is read from a path the user gives (it is never shipped). Each calculator of the benchmark
is mapped to one scale by a file in ``medcalc_maps/``; rows whose labels disagree with the
published method are adjudicated, with the reason, in ``medcalc_adjudications/``.
"""

from __future__ import annotations

import ast
import csv
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from medagent.errors import MedAgentError, Problem, ScaleDefinitionError
from medagent.scales import evaluate, get_scale
from medagent.scales.engine import Result
from medagent.scales.model import parse_date

csv.field_size_limit(sys.maxsize)

# Calculators the benchmark scores by exact match after rounding (see the dataset's README).
INTEGER_CALCULATORS = frozenset(
    {4, 15, 16, 17, 18, 20, 21, 25, 27, 28, 29, 32, 33, 36, 43, 45, 48, 51}
)
# Calculators whose v1.0 labels the benchmark's own current code does not reproduce (the
# dataset README lists them).
KNOWN_LABEL_ERRORS = frozenset({21, 28, 36, 46, 43, 23, 13, 15, 33, 51, 27, 7, 44, 3})
# Calculators whose labels we found wrong although the benchmark's code reproduces them: the
# code has the same bug as the label. Every such row is adjudicated with the arithmetic.
FOUND_LABEL_ERRORS: dict[int, str] = {
    29: "any temperature unit other than the exact string 'degrees celsius' is read as °F",
    32: "category answers are compared case-sensitively and fall back to 1 point",
    17: "of the two cerebrovascular entities only one is read; a documented stroke or TIA in "
    "'History of cerebrovascular disease' never scores",
}
ADJUDICABLE = KNOWN_LABEL_ERRORS | frozenset(FOUND_LABEL_ERRORS)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EntityTarget(_Frozen):
    """Where one benchmark entity (or one part of a list-valued entity) goes."""

    input: str
    part: int | None = None  # index into a list value such as ['PredniSONE PO', 45.8, 'mg']
    unit_part: int | None = None  # index of the unit in that list
    values: dict[str, Any] = {}  # benchmark string -> option code or boolean
    units: dict[str, str] = {}  # benchmark unit spelling -> UCUM, where the spelling misleads


class CalculatorMap(_Frozen):
    """How the entities of one MedCalc-Bench calculator become the inputs of one scale."""

    calculator_id: int
    name: str
    scale: str
    entities: dict[str, str | EntityTarget | list[EntityTarget]]
    fixed: dict[str, Any] = {}
    fixed_reason: str = ""
    absent: dict[str, Any] = {}
    absent_reason: str = ""
    ignore: list[str] = []
    ignore_reason: str = ""
    # Notes mode: inputs the benchmark reads from a note differently from the scale's published
    # definition (input id -> lexicon concept ids), with the reason; only the harness uses it.
    note_concepts: dict[str, list[str]] = {}
    note_concepts_reason: str = ""


class Adjudication(_Frozen):
    """A row whose label disagrees with the published method, with the reason."""

    row: int
    calculator_id: int
    label: str
    adjudicated: str
    reason: str
    reference: str


@cache
def calculator_maps() -> dict[int, CalculatorMap]:
    """Every calculator mapping shipped with medagent, by calculator id."""
    maps: dict[int, CalculatorMap] = {}
    root = resources.files("medagent.eval.medcalc_maps")
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        try:
            m = CalculatorMap.model_validate(yaml.safe_load(entry.read_text(encoding="utf-8")))
        except ValidationError as exc:
            problems = [Problem(".".join(map(str, e["loc"])), e["msg"]) for e in exc.errors()]
            raise ScaleDefinitionError(f"medcalc_maps/{entry.name}", problems) from None
        if m.calculator_id in maps:
            raise ScaleDefinitionError(
                f"medcalc_maps/{entry.name}",
                [Problem("calculator_id", f"{m.calculator_id} is mapped twice")],
            )
        maps[m.calculator_id] = m
    return maps


@cache
def adjudications() -> dict[int, Adjudication]:
    """Adjudicated labels by row number."""
    out: dict[int, Adjudication] = {}
    root = resources.files("medagent.eval.medcalc_adjudications")
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        for item in yaml.safe_load(entry.read_text(encoding="utf-8")) or []:
            adj = Adjudication.model_validate(item)
            if adj.row in out:
                raise ValueError(f"row {adj.row} is adjudicated twice")
            out[adj.row] = adj
    return out


@dataclass(frozen=True, slots=True)
class Row:
    """One benchmark row, as the harness needs it."""

    number: int
    calculator_id: int
    calculator_name: str
    category: str
    note: str
    entities: dict[str, Any]
    label: str
    lower: str
    upper: str


def read_rows(path: Path) -> list[Row]:
    """Read a MedCalc-Bench CSV (notes contain newlines; entities are Python literals)."""
    rows: list[Row] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for raw in csv.DictReader(handle):
            rows.append(
                Row(
                    number=int(raw["Row Number"]),
                    calculator_id=int(raw["Calculator ID"]),
                    calculator_name=raw["Calculator Name"],
                    category=raw["Category"],
                    note=raw["Patient Note"],
                    entities=ast.literal_eval(raw["Relevant Entities"]),
                    label=raw["Ground Truth Answer"],
                    lower=raw["Lower Limit"],
                    upper=raw["Upper Limit"],
                )
            )
    return rows


def entities_to_inputs(mapping: CalculatorMap, entities: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a row's entities into scale inputs, following the calculator's mapping."""
    inputs: dict[str, Any] = {}
    problems: list[Problem] = []
    for key, value in entities.items():
        target = mapping.entities.get(key)
        if target is None:
            if key not in mapping.ignore:
                problems.append(Problem(key, "entity is not mapped"))
            continue
        targets = target if isinstance(target, list) else [target]
        for t in targets:
            name = t if isinstance(t, str) else t.input
            mapped = _plain(value) if isinstance(t, str) else _targeted(t, value)
            if name not in inputs:
                inputs[name] = mapped
            elif isinstance(mapped, bool) and isinstance(inputs[name], bool):
                inputs[name] = inputs[name] or mapped  # two findings for one item: either counts
            elif inputs[name] != mapped:
                problems.append(Problem(key, f"disagrees with another entity on {name}"))
    if problems:
        raise MappingError(f"calculator {mapping.calculator_id}", problems)
    for key, value in mapping.absent.items():
        inputs.setdefault(key, value)
    inputs.update(mapping.fixed)
    return inputs


class MappingError(ScaleDefinitionError):
    """A benchmark row has an entity that its calculator mapping does not cover."""


def _plain(value: Any) -> Any:
    if isinstance(value, list) and len(value) == 2 and isinstance(value[1], str):
        return (value[0], value[1])
    return value


def _targeted(target: EntityTarget, value: Any) -> Any:
    if target.part is not None:
        part = value[target.part]
        if target.unit_part is not None:
            unit = value[target.unit_part]
            return (part, target.units.get(unit, unit))
        value = part
    if target.units and isinstance(value, list) and len(value) == 2:
        return (value[0], target.units.get(value[1], value[1]))
    if isinstance(value, bool) and target.values:
        flag = "true" if value else "false"
        for key, mapped in target.values.items():
            if str(key).casefold() == flag:
                return mapped
        return value
    if isinstance(value, str) and target.values:
        key = value.strip()
        if key in target.values:
            return target.values[key]
        folded = {k.casefold(): v for k, v in target.values.items()}
        return folded.get(key.casefold(), value)
    return _plain(value)


# --------------------------------------------------------------------------- judging


_GA = re.compile(r"\(\s*'(\d+) weeks?',\s*'(\d+) days?'\s*\)")


def judge(
    calculator_id: int, value: float | date | None, label: str, lower: str, upper: str
) -> bool:
    """The benchmark's own rule for whether an answer is right."""
    if value is None:
        return False
    if isinstance(value, date):
        return value == parse_date(label)
    ga = _GA.match(label.strip())
    if ga:
        weeks, days = divmod(round(value), 7)
        return (weeks, days) == (int(ga.group(1)), int(ga.group(2)))
    if calculator_id in INTEGER_CALCULATORS:
        return round(value) == round(float(label))
    return float(lower) <= value <= float(upper)


def adjudicated_limits(calculator_id: int, label: str) -> tuple[str, str]:
    """Limits for an adjudicated label: exact for integers and dates, ±5 % otherwise."""
    if calculator_id in INTEGER_CALCULATORS or _GA.match(label) or "/" in label:
        return label, label
    x = float(label)
    lo, hi = sorted((x * 0.95, x * 1.05))
    return repr(lo), repr(hi)


NOT_COMPUTABLE = "not computable"


@dataclass(slots=True)
class Outcome:
    """What happened on one row."""

    row: Row
    value: float | date | None
    display: str
    correct_raw: bool
    correct_adjudicated: bool
    error: str | None = None
    result: Result | None = None
    adjudication: Adjudication | None = None


@dataclass(slots=True)
class Tally:
    rows: int = 0
    correct: int = 0

    def add(self, ok: bool) -> None:
        self.rows += 1
        self.correct += ok

    @property
    def accuracy(self) -> float:
        return self.correct / self.rows if self.rows else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "correct": self.correct, "accuracy": round(self.accuracy, 4)}


@dataclass(slots=True)
class Report:
    """Accuracy overall, per calculator and per category, against raw and adjudicated labels."""

    outcomes: list[Outcome] = field(default_factory=list)

    def tallies(self, *, adjudicated: bool, subset: Callable[[Row], bool] | None = None) -> Tally:
        tally = Tally()
        for o in self.outcomes:
            if subset is None or subset(o.row):
                tally.add(o.correct_adjudicated if adjudicated else o.correct_raw)
        return tally

    def to_dict(self, *, mode: str) -> dict[str, Any]:
        raw = self.tallies(adjudicated=False)
        adj = self.tallies(adjudicated=True)
        consistent = self.tallies(
            adjudicated=False, subset=lambda r: r.calculator_id not in KNOWN_LABEL_ERRORS
        )
        clean = self.tallies(adjudicated=False, subset=lambda r: r.calculator_id not in ADJUDICABLE)
        per_calc: dict[str, Any] = {}
        per_cat: dict[str, dict[str, Tally]] = {}
        for o in self.outcomes:
            key = str(o.row.calculator_id)
            entry = per_calc.setdefault(
                key,
                {
                    "name": o.row.calculator_name,
                    "category": o.row.category,
                    "scale": calculator_maps()[o.row.calculator_id].scale
                    if o.row.calculator_id in calculator_maps()
                    else None,
                    "raw": Tally(),
                    "adjudicated": Tally(),
                    "label_errors_known": o.row.calculator_id in KNOWN_LABEL_ERRORS,
                    "label_errors_found": o.row.calculator_id in FOUND_LABEL_ERRORS,
                },
            )
            entry["raw"].add(o.correct_raw)
            entry["adjudicated"].add(o.correct_adjudicated)
            cat = per_cat.setdefault(o.row.category, {"raw": Tally(), "adjudicated": Tally()})
            cat["raw"].add(o.correct_raw)
            cat["adjudicated"].add(o.correct_adjudicated)
        for entry in per_calc.values():
            entry["rows"] = entry["raw"].rows
            entry["correct"] = entry["raw"].correct
            entry["accuracy"] = round(entry["raw"].accuracy, 4)
            entry["raw"] = entry["raw"].as_dict()
            entry["adjudicated"] = entry["adjudicated"].as_dict()
        return {
            "mode": mode,
            "rows": raw.rows,
            "correct": raw.correct,
            "accuracy": round(raw.accuracy, 4),
            "adjudicated": adj.as_dict(),
            "self_consistent_calculators": consistent.as_dict(),
            "calculators_without_label_errors": clean.as_dict(),
            "found_label_errors": {str(k): v for k, v in FOUND_LABEL_ERRORS.items()},
            "adjudicated_rows": sum(1 for o in self.outcomes if o.adjudication is not None),
            "not_computable_rows": sum(
                1
                for o in self.outcomes
                if o.adjudication is not None and o.adjudication.adjudicated == NOT_COMPUTABLE
            ),
            "per_calculator": dict(sorted(per_calc.items(), key=lambda kv: int(kv[0]))),
            "per_category": {
                k: {"raw": v["raw"].as_dict(), "adjudicated": v["adjudicated"].as_dict()}
                for k, v in sorted(per_cat.items())
            },
            "disagreements": [
                {
                    "row": o.row.number,
                    "calculator_id": o.row.calculator_id,
                    "calculator": o.row.calculator_name,
                    "label": o.row.label,
                    "ours": o.display,
                    "adjudicated": o.adjudication.adjudicated if o.adjudication else None,
                    "correct_adjudicated": o.correct_adjudicated,
                    "error": o.error,
                    "explanation": o.result.explanation if o.result is not None else None,
                }
                for o in self.outcomes
                if not o.correct_raw or not o.correct_adjudicated
            ],
        }


def run_entities(rows: Iterable[Row]) -> Report:
    """Structured mode: compute from each row's `Relevant Entities`."""
    report = Report()
    maps = calculator_maps()
    adj = adjudications()
    for row in rows:
        mapping = maps.get(row.calculator_id)
        if mapping is None:
            report.outcomes.append(
                Outcome(row, None, "", False, False, error="calculator not mapped")
            )
            continue
        try:
            inputs = entities_to_inputs(mapping, row.entities)
            result = evaluate(get_scale(mapping.scale), inputs)
        except MedAgentError as exc:
            report.outcomes.append(_judged(row, None, "", adj, error=str(exc)))
            continue
        error = None
        if not result.complete:
            error = "incomplete: missing " + ", ".join(m.id for m in result.missing)
        report.outcomes.append(
            _judged(row, result.value, result.display, adj, error=error, result=result)
        )
    return report


def _judged(
    row: Row,
    value: float | date | None,
    display: str,
    adj: Mapping[int, Adjudication],
    *,
    error: str | None,
    result: Result | None = None,
) -> Outcome:
    correct_raw = judge(row.calculator_id, value, row.label, row.lower, row.upper)
    adjudication = adj.get(row.number)
    if adjudication is not None and adjudication.calculator_id == row.calculator_id:
        if adjudication.adjudicated == NOT_COMPUTABLE:
            # The published method cannot give one number from what the row holds: the right
            # answer is an incomplete result (what is missing, and the range still possible).
            correct_adj = result is not None and not result.complete
        else:
            lo, hi = adjudicated_limits(row.calculator_id, adjudication.adjudicated)
            correct_adj = judge(row.calculator_id, value, adjudication.adjudicated, lo, hi)
    else:
        adjudication = None
        correct_adj = correct_raw
    return Outcome(row, value, display, correct_raw, correct_adj, error, result, adjudication)

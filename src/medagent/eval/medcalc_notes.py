"""MedCalc-Bench, notes mode: read each row's Patient Note, extract the scale's inputs, judge."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from medagent.errors import MedAgentError
from medagent.eval.medcalc import (
    CalculatorMap,
    Outcome,
    Report,
    Row,
    _judged,
    adjudications,
    calculator_maps,
)
from medagent.llm.client import ChatClient
from medagent.notes.lexicon import Link, lexicon
from medagent.notes.model import Extraction
from medagent.notes.rules import extract_rules
from medagent.scales import evaluate, get_scale

Extractor = Literal["rules", "llm", "both"]


def _benchmark_links(mapping: CalculatorMap | None) -> dict[str, Link]:
    """The note readings a calculator map declares as the benchmark's own convention."""
    if mapping is None or not mapping.note_concepts:
        return {}
    known = lexicon().concepts
    out: dict[str, Link] = {}
    for input_id, concepts in mapping.note_concepts.items():
        unknown = [c for c in concepts if c not in known]
        if unknown:
            raise MedAgentError(
                f"calculator {mapping.calculator_id}: note_concepts.{input_id} names unknown "
                f"lexicon concepts {unknown}"
            )
        out[input_id] = Link(input_id=input_id, concepts=tuple(concepts), via="binding")
    return out


def extract(
    scale_id: str,
    note: str,
    *,
    extractor: Extractor = "rules",
    client: ChatClient | None = None,
    mapping: CalculatorMap | None = None,
) -> Extraction:
    """Extract one scale's inputs from one note with the chosen extractor (and the benchmark
    conventions of `mapping`, when given, for the rules)."""
    scale = get_scale(scale_id)
    extra = _benchmark_links(mapping)
    if extractor == "rules":
        return extract_rules(scale, note, extra_links=extra)
    from medagent.notes.llm import extract_llm, merge

    if client is None:
        client = ChatClient.from_env()
    llm = extract_llm(scale, note, client=client)
    if extractor == "llm":
        return llm
    return merge(extract_rules(scale, note, extra_links=extra), llm)


def run_notes(
    rows: Iterable[Row],
    extractor: Extractor = "rules",
    *,
    client: ChatClient | None = None,
    failures: Path | None = None,
) -> Report:
    """Notes mode: only the `Patient Note` and the calculator's scale; absent-finding convention
    applied per calculator exactly as the structured mode's mapping declares it."""
    report = Report()
    maps = calculator_maps()
    adj = adjudications()
    lines: list[dict[str, Any]] = []
    for row in rows:
        mapping = maps.get(row.calculator_id)
        if mapping is None:
            report.outcomes.append(
                Outcome(row, None, "", False, False, error="calculator not mapped")
            )
            continue
        extraction: Extraction | None = None
        try:
            extraction = extract(
                mapping.scale, row.note, extractor=extractor, client=client, mapping=mapping
            )
            inputs = extraction.inputs()
            for key, value in mapping.absent.items():
                inputs.setdefault(key, value)
            inputs.update(mapping.fixed)
            result = evaluate(get_scale(mapping.scale), inputs)
        except MedAgentError as exc:
            outcome = _judged(row, None, "", adj, error=str(exc))
        else:
            error = None
            if not result.complete:
                error = "incomplete: missing " + ", ".join(m.id for m in result.missing)
            outcome = _judged(row, result.value, result.display, adj, error=error, result=result)
        report.outcomes.append(outcome)
        if not outcome.correct_adjudicated:
            lines.append(_failure(outcome, extraction))
    if failures is not None:
        failures.parent.mkdir(parents=True, exist_ok=True)
        with failures.open("w", encoding="utf-8") as handle:
            for line in lines:
                handle.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
    return report


def _failure(outcome: Outcome, extraction: Extraction | None) -> dict[str, Any]:
    row = outcome.row
    return {
        "row": row.number,
        "calculator_id": row.calculator_id,
        "calculator": row.calculator_name,
        "label": row.label,
        "adjudicated": outcome.adjudication.adjudicated if outcome.adjudication else None,
        "ours": outcome.display,
        "error": outcome.error,
        "extracted": extraction.to_dict()["filled"] if extraction else {},
        "missing": extraction.missing if extraction else [],
        "flags": extraction.to_dict()["flags"] if extraction else [],
    }

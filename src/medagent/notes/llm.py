"""Optional LLM extractor: schema from the scale's inputs; every quote is checked in the note."""

from __future__ import annotations

import json
import re
from typing import Any

from medagent.llm.client import ChatClient, LLMError
from medagent.notes.model import Candidate, Extraction, Filled, Flag, Span
from medagent.scales.model import InputDef, InputType, Scale

_SYSTEM = (
    "You read a clinical note and report the value of each listed input of a clinical scale. "
    "Report only what the note states about this patient. For every value, `quote` must be an "
    "exact, contiguous copy of the words of the note that state it. Use null for value and quote "
    "when the note does not state it. Do not compute any score. Give quantities in `unit` as "
    "written in the note; dates as YYYY-MM-DD."
)


def _value_schema(spec: InputDef) -> dict[str, Any]:
    if spec.type is InputType.BOOLEAN:
        return {"type": ["boolean", "null"]}
    if spec.type is InputType.CHOICE:
        return {"enum": [*(o.code for o in spec.options), None]}
    if spec.type is InputType.DATE:
        return {"type": ["string", "null"]}
    return {"type": ["number", "null"]}


def schema_for(scale: Scale) -> dict[str, Any]:
    """The JSON schema the LLM must answer with, generated from the scale's inputs."""
    props: dict[str, Any] = {}
    for spec in scale.inputs:
        props[spec.id] = {
            "type": "object",
            "description": spec.label + (f" (unit {spec.unit})" if spec.unit else ""),
            "properties": {
                "value": _value_schema(spec),
                "unit": {"type": ["string", "null"]},
                "quote": {"type": ["string", "null"]},
            },
            "required": ["value", "unit", "quote"],
            "additionalProperties": False,
        }
    return {
        "type": "object",
        "properties": props,
        "required": list(props),
        "additionalProperties": False,
    }


def _find(note: str, quote: str) -> Span | None:
    """Where the quote is in the note: exactly, or up to whitespace and case."""
    i = note.find(quote)
    if i >= 0:
        return Span(i, i + len(quote), quote)
    words = [re.escape(w) for w in quote.split()]
    if not words:
        return None
    m = re.search(r"\s+".join(words), note, re.IGNORECASE)
    return Span(m.start(), m.end(), m.group(0)) if m else None


def _check(spec: InputDef, value: Any, unit: Any, quote: str) -> tuple[Any, str | None]:
    """The value for the engine, or why it is refused."""
    if spec.type is InputType.BOOLEAN:
        return (value, None) if isinstance(value, bool) else (None, "not a boolean")
    if spec.type is InputType.CHOICE:
        ok = isinstance(value, str) and spec.option(value) is not None
        return (value, None) if ok else (None, f"{value!r} is not an option")
    if spec.type is InputType.DATE:
        return (value, None) if isinstance(value, str) else (None, "not a date")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, "not a number"
    digits = re.sub(r"[^\d]", "", quote)
    lead = re.sub(r"[^\d]", "", f"{value:g}").lstrip("0")[:2]
    if lead and lead not in digits:
        return None, f"the value {value:g} is not in the quoted text"
    if isinstance(unit, str) and unit.strip():
        return (float(value), unit.strip()), None
    return value, None


def extract_llm(scale: Scale, note: str, *, client: ChatClient) -> Extraction:
    """Ask the LLM for every input; keep only values whose quote is found in the note."""
    out = Extraction(scale_id=scale.id)
    messages = [
        {"role": "system", "content": _SYSTEM},
        {
            "role": "user",
            "content": f"Scale: {scale.title}\nInputs:\n"
            + "\n".join(f"- {s.id}: {s.label}" for s in scale.inputs)
            + f"\n\nNote:\n{note}",
        },
    ]
    try:
        answer = client.chat_json(messages, schema=schema_for(scale), name=scale.id)
    except LLMError as exc:
        out.flags.append(Flag("*", f"LLM answer rejected: {exc}"))
        out.missing = [s.id for s in scale.inputs]
        return out
    for spec in scale.inputs:
        item = answer.get(spec.id)
        if not isinstance(item, dict) or item.get("value") is None:
            out.missing.append(spec.id)
            continue
        quote = item.get("quote")
        span = _find(note, quote) if isinstance(quote, str) and quote.strip() else None
        if span is None:
            out.flags.append(
                Flag(spec.id, f"LLM value rejected: quote not found in the note: {quote!r}")
            )
            out.missing.append(spec.id)
            continue
        value, why = _check(spec, item["value"], item.get("unit"), span.text)
        if why is not None:
            out.flags.append(Flag(spec.id, f"LLM value rejected: {why}"))
            out.missing.append(spec.id)
            continue
        cand = Candidate(spec.id, value, span, "llm", source="llm", original=json.dumps(item))
        out.filled[spec.id] = Filled(spec.id, cand, "quoted by the LLM")
    return out


def _same(a: Any, b: Any) -> bool:
    def norm(x: Any) -> Any:
        if isinstance(x, tuple):
            return (round(float(x[0]), 6), x[1])
        if isinstance(x, int | float) and not isinstance(x, bool):
            return round(float(x), 6)
        return x

    return bool(norm(a) == norm(b))


def merge(rules: Extraction, llm: Extraction) -> Extraction:
    """Rules first; the LLM only fills gaps; every disagreement is flagged, never resolved."""
    out = Extraction(scale_id=rules.scale_id, flags=[*rules.flags, *llm.flags])
    for input_id, filled in rules.filled.items():
        out.filled[input_id] = filled
        other = llm.filled.get(input_id)
        if other is not None and not _same(filled.value, other.value):
            out.flags.append(
                Flag(
                    input_id,
                    "rules and LLM disagree; the rules value is shown, the clinician decides",
                    (filled.chosen, other.chosen),
                )
            )
    for input_id, filled in llm.filled.items():
        out.filled.setdefault(input_id, filled)
    out.missing = [m for m in rules.missing if m not in out.filled]
    return out

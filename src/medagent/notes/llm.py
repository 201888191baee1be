"""Optional LLM extractor: schema from the scale's inputs; every quote is checked in the note.

The note is de-identified (:mod:`medagent.secure.deid`) before it is put into the request: the
patient's known identifiers when the caller has the record, plus the pattern rules, with every
date shifted by the patient's offset. The re-identification map stays in this process. The
LLM's quotes are found in the de-identified text and mapped back to the exact span of the
original note; dates it reports are shifted back.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from typing import Any

from medagent.llm.client import ChatClient, LLMError
from medagent.notes.model import Candidate, Extraction, Filled, Flag, Span
from medagent.scales.model import InputDef, InputType, Scale
from medagent.secure.deid import (
    Deidentified,
    Deidentifier,
    PatientIdentifiers,
    ReidMap,
    reidentify,
    site_deidentifier,
)

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

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


def _original_date(value: str, quoted: str, sent: Deidentified) -> str | None:
    """The original date for a date the LLM read from the de-identified text, or None."""
    if not _ISO_DATE.fullmatch(value):
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    if any(shifted in quoted for shifted in sent.reid.dates):
        # the quote holds a shifted date: every date of this patient moved by the same offset
        day += timedelta(days=sent.reid.shift_days)
    return day.isoformat()


def extract_llm(
    scale: Scale,
    note: str,
    *,
    client: ChatClient,
    patient: PatientIdentifiers | None = None,
    deidentifier: Deidentifier | None = None,
    reid: ReidMap | None = None,
) -> Extraction:
    """Ask the LLM for every input; keep only values whose quote is found in the note.

    Only the de-identified note leaves: pass ``patient`` (its known identifiers) when the record
    is at hand; ``reid`` to keep surrogates consistent across one patient's notes.
    """
    out = Extraction(scale_id=scale.id)
    who = patient if patient is not None else PatientIdentifiers(patient_id="")
    sent = (deidentifier or site_deidentifier()).deidentify(note, who, reid)
    messages = [
        {"role": "system", "content": _SYSTEM},
        {
            "role": "user",
            "content": f"Scale: {scale.title}\nInputs:\n"
            + "\n".join(f"- {s.id}: {s.label}" for s in scale.inputs)
            + f"\n\nNote:\n{sent.text}",
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
        found = _find(sent.text, quote) if isinstance(quote, str) and quote.strip() else None
        if found is None:
            shown = reidentify(quote, sent.reid) if isinstance(quote, str) else quote
            out.flags.append(
                Flag(spec.id, f"LLM value rejected: quote not found in the note: {shown!r}")
            )
            out.missing.append(spec.id)
            continue
        start, end = sent.original_span(found.start, found.end)
        span = Span(start, end, note[start:end])
        raw = item["value"]
        if spec.type is InputType.DATE and isinstance(raw, str):
            original = _original_date(raw, found.text, sent)
            if original is None:
                out.flags.append(Flag(spec.id, f"LLM value rejected: {raw!r} is not YYYY-MM-DD"))
                out.missing.append(spec.id)
                continue
            raw = original
        # numbers are checked against the original words, so a value that only the
        # de-identified text shows (an age over 89 written as "90+") is not taken
        value, why = _check(spec, raw, item.get("unit"), span.text)
        if why is not None:
            if _check(spec, raw, item.get("unit"), found.text)[1] is None:
                why = (
                    "the quoted value was de-identified (an age over 89?); read it from the record"
                )
            out.flags.append(Flag(spec.id, f"LLM value rejected: {why}"))
            out.missing.append(spec.id)
            continue
        kept = {**item, "value": raw, "quote": span.text}
        cand = Candidate(spec.id, value, span, "llm", source="llm", original=json.dumps(kept))
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

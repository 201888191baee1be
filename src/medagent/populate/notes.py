"""Clinical notes as a record source: values a note states, offered below structured data."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from medagent.errors import MedAgentError, UnitError
from medagent.populate.model import NOTE_SPAN, FilledInput, Population, Provenance
from medagent.units import convert, normalize_unit

if TYPE_CHECKING:
    from medagent.record import RecordStore


def with_note_suggestions(population: Population, *, store: RecordStore) -> Population:
    """Add what the patient's latest note (up to the population's time) states for the inputs
    the structured record left unfilled, each with its note span.

    Structured data always wins: an input the record filled gets no suggestion. A suggestion is
    never part of ``population.inputs``; a clinician confirms it, which records an override.
    """
    from medagent.notes.rules import extract_rules

    if not population.unfilled:
        return population
    notes = [n for n in store.notes(population.patient_id, until=population.at) if n.text.strip()]
    if not notes:
        return population
    note = notes[-1]
    try:
        extraction = extract_rules(population.scale, note.text)
    except MedAgentError:
        return population
    found: dict[str, FilledInput] = {}
    for input_id, read in extraction.filled.items():
        if input_id not in population.unfilled:
            continue
        spec = population.scale.input(input_id)
        span = read.chosen.span
        value = read.value
        conversion = None
        if isinstance(value, tuple) and len(value) == 2:
            number, unit = float(value[0]), str(value[1])
            value = number
            if spec.unit is not None and normalize_unit(unit) != spec.unit:
                try:
                    value = convert(number, unit, spec.unit, spec.analyte)
                except UnitError:
                    continue
                conversion = f"{number:g} {unit} = {value:.6g} {spec.unit}"
        found[input_id] = FilledInput(
            id=input_id,
            label=spec.label,
            value=value,
            unit=spec.unit,
            provenance=Provenance(
                source=NOTE_SPAN,
                rule=f"read from the note: {read.rule}",
                resource_type="DocumentReference",
                resource_id=note.resource_id,
                effective=note.date,
                original_value=read.chosen.original or span.text,
                conversion=conversion,
                span_start=span.start,
                span_end=span.end,
                quote=span.text,
                candidates=1 + len(read.alternatives),
            ),
        )
    return replace(population, suggestions=found) if found else population
